"""Sampling stages (vaepipe.sampling), derived seeds (vaepipe.seeds) and their figures (vaepipe.plots)."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from vaepipe import io, profiles, preliminary, sampling
from vaepipe.seeds import chain_seeds, derive_seed, seed_provenance

SYSTEM = {"n_particles": 8, "box_length": 4.0, "dim": 3, "boundary": "reflect", "cutoff": None,
          "tail_correction": False}
STATE = {"gamma": 0.5, "temperature": 1.0}
PRELIMINARY = {"tune_sweeps": 200, "target_acceptance": 0.4, "initial_step_size": 0.2, "sweeps": 5000,
               "decorrelation_threshold": 0.1, "observables": ["energy", "mean_height"]}
SAMPLING = {"mode": "continuous", "chains": 3, "samples_per_chain": 15, "equilibration_factor": 2.0,
            "min_equilibration_sweeps": 50, "density_bins": 10}


def _preliminary(seed=derive_seed(7, "preliminary", "gamma0.5_T1"), **changes):
    return preliminary.run_preliminary(SYSTEM, STATE, {**PRELIMINARY, **changes}, seed, state="gamma0.5_T1",
                                    progress=False)


def _sampling(summary, threads=1, seed=derive_seed(7, "sample", "gamma0.5_T1"), **changes):
    return sampling.run_sampling(SYSTEM, STATE, {**SAMPLING, **changes}, summary, seed, threads=threads,
                                 state="gamma0.5_T1", progress=False)


@pytest.fixture(scope="module")
def prelim():
    return _preliminary()


# --------------------------------------------------------------------------- seeds


def test_derived_seeds_do_not_depend_on_the_process():
    # Python's hash() of a string changes with PYTHONHASHSEED; the derived seeds must not.
    code = ("from vaepipe.seeds import derive_seed;"
            "print(list(derive_seed(3, 'sample', 'gamma0.5_T1', chain=2).generate_state(4)))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": h}).stdout for h in ("1", "2")}
    assert len(outputs) == 1
    assert outputs.pop().strip() == str(list(derive_seed(3, "sample", "gamma0.5_T1", chain=2).generate_state(4)))


def test_derived_seeds_differ_by_every_ingredient():
    base = derive_seed(3, "sample", "gamma0.5_T1")
    others = [derive_seed(4, "sample", "gamma0.5_T1"), derive_seed(3, "preliminary", "gamma0.5_T1"),
              derive_seed(3, "sample", "gamma1_T1"), derive_seed(3, "sample", "gamma0.5_T1", chain=0),
              derive_seed(3, "sampl", "egamma0.5_T1")]
    states = {tuple(s.generate_state(4)) for s in [base, *others]}
    assert len(states) == 6
    assert base.generate_state(4).tolist() == derive_seed(3, "sample", "gamma0.5_T1").generate_state(4).tolist()


def test_chain_seeds_are_numpy_spawned_children():
    parent = derive_seed(3, "sample", "gamma0.5_T1")
    mine = chain_seeds(parent, 4)
    spawned = derive_seed(3, "sample", "gamma0.5_T1").spawn(4)
    for a, b, i in zip(mine, spawned, range(4)):
        assert a.generate_state(4).tolist() == b.generate_state(4).tolist()
        direct = derive_seed(3, "sample", "gamma0.5_T1", chain=i)
        assert a.generate_state(4).tolist() == direct.generate_state(4).tolist()
    assert chain_seeds(parent, 4)[3].generate_state(2).tolist() == mine[3].generate_state(2).tolist()  # stateless
    assert seed_provenance(mine[2]) == {"entropy": list(parent.entropy), "spawn_key": [2]}


@pytest.mark.parametrize("args", [(-1, "sample"), (1.5, "sample"), (True, "sample"), (1, ""), (1, "sample", 3)])
def test_derive_seed_rejects_bad_input(args):
    with pytest.raises(ValueError):
        derive_seed(*args)


# --------------------------------------------------------------------------- preliminary run


def test_preliminary_is_deterministic_and_seed_dependent(prelim):
    again = _preliminary()
    assert again.summary == prelim.summary
    for name in prelim.traces:
        assert np.array_equal(again.traces[name], prelim.traces[name])
        assert np.array_equal(again.autocorrelations[name], prelim.autocorrelations[name])
    other = _preliminary(seed=derive_seed(8, "preliminary", "gamma0.5_T1"))
    assert not np.array_equal(other.traces["energy"], prelim.traces["energy"])


def test_preliminary_summary(prelim, tmp_path):
    s = prelim.summary
    assert set(io.PRELIMINARY_KEYS) - {"file_format", "vaepipe_version", "provenance"} <= set(s)
    assert all(prelim.traces[name].shape == (PRELIMINARY["sweeps"],) for name in preliminary.OBSERVABLES)
    obs = s["observables"]
    assert s["equilibration_sweeps"] == max(obs[n]["equilibration_sweeps"] for n in PRELIMINARY["observables"])
    assert s["decorrelation_sweeps"] == max(obs[n]["decorrelation_sweeps"] for n in PRELIMINARY["observables"])
    assert s["decorrelation_sweeps"] >= 1
    assert s["statistical_inefficiency"] >= 1 and s["tau_int"] == pytest.approx((s["statistical_inefficiency"] - 1) / 2)
    assert s["n_eff"] <= PRELIMINARY["sweeps"] - s["equilibration_sweeps"]
    assert 0 < s["step_size"] <= SYSTEM["box_length"] / 2 and s["step_size"] != PRELIMINARY["initial_step_size"]
    assert 0.25 < s["acceptance_rate"] < 0.55  # tuned towards 0.4
    # the reported decorrelation lag is where the plotted autocorrelation first drops below the threshold
    for name in PRELIMINARY["observables"]:
        acf = prelim.autocorrelations[name]
        lag = obs[name]["decorrelation_sweeps"]
        assert acf[0] == pytest.approx(1.0)
        assert acf[lag] < 0.1 and np.all(acf[1:lag] >= 0.1)
    tail = prelim.traces["energy"][s["equilibration_sweeps"]:]
    assert s["energy_mean"] == pytest.approx(tail.mean())
    io.write_preliminary(tmp_path / "p.json", {**s, "provenance": {}})  # the summary satisfies the file contract


@pytest.mark.filterwarnings("ignore:block_average:RuntimeWarning")
def test_preliminary_short_trace_names_the_key():
    with pytest.raises(ValueError, match="config key preliminary.sweeps.*fix: raise preliminary.sweeps"):
        preliminary.run_preliminary({**SYSTEM, "n_particles": 30, "box_length": 5.0}, {"gamma": 0.0, "temperature": 1.0},
                                 {**PRELIMINARY, "sweeps": 300}, derive_seed(1, "preliminary", "x"), progress=False)


def test_preliminary_of_one_free_particle_copes_with_constant_energy():
    # one particle without gravity: the energy is always 0, only the height moves
    result = preliminary.run_preliminary({**SYSTEM, "n_particles": 1}, {"gamma": 0.0, "temperature": 1.0},
                                      {**PRELIMINARY, "sweeps": 3000}, derive_seed(1, "preliminary", "x"),
                                      progress=False)
    energy = result.summary["observables"]["energy"]
    assert np.all(result.traces["energy"] == 0.0)
    assert energy["decorrelation_sweeps"] == 1 and energy["sem"] == 0.0
    height = result.summary["observables"]["mean_height"]
    assert result.summary["decorrelation_sweeps"] == height["decorrelation_sweeps"]


def test_analyze_trace_recovers_ar1_correlation():
    # AR(1) with coefficient phi: acf(k) = phi**k, below 0.1 first at k = 11 for phi = 0.8; tau_int = phi/(1-phi)
    phi, n = 0.8, 200_000
    rng = np.random.default_rng(5)
    noise = rng.normal(size=n)
    x = np.empty(n)
    x[0] = noise[0] / math.sqrt(1 - phi**2)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    stats = preliminary.analyze_trace(x, 0, 0.1)
    assert stats["decorrelation_sweeps"] in (10, 11, 12)
    assert stats["tau_int"] == pytest.approx(phi / (1 - phi), rel=0.1)
    assert stats["sem"] == pytest.approx(math.sqrt((1 + phi) / (1 - phi) / (1 - phi**2) / n), rel=0.2)
    with pytest.raises(ValueError, match="config key preliminary.sweeps"):
        preliminary.analyze_trace(x[:10], 0, 0.1)


# --------------------------------------------------------------------------- sampling run


def test_sampling_is_bitwise_independent_of_thread_count(prelim):
    one = _sampling(prelim.summary, threads=1)
    three = _sampling(prelim.summary, threads=3)
    assert one.positions.shape == (45, 8, 3)
    assert np.array_equal(one.positions, three.positions)
    assert np.array_equal(one.energy, three.energy)
    assert one.attrs == three.attrs


def test_chains_are_independent_and_labelled(prelim):
    result = _sampling(prelim.summary)
    assert result.chain.tolist() == [0] * 15 + [1] * 15 + [2] * 15
    firsts = [result.positions[result.chain == c][0] for c in range(3)]
    assert not np.array_equal(firsts[0], firsts[1]) and not np.array_equal(firsts[1], firsts[2])
    assert np.all((result.positions >= 0) & (result.positions <= SYSTEM["box_length"]))
    assert 0.2 < result.attrs["acceptance_rate"] < 0.6
    other = _sampling(prelim.summary, seed=derive_seed(8, "sample", "gamma0.5_T1"))
    assert not np.array_equal(other.positions, result.positions)


@pytest.mark.parametrize("mode", ["continuous", "restart"])
def test_energies_are_the_potential_energy_of_the_stored_configurations(prelim, mode):
    from vaepipe.energy import potential_energy

    result = _sampling(prelim.summary, mode=mode, samples_per_chain=4)
    expected = potential_energy(result.positions, SYSTEM["box_length"], gamma=STATE["gamma"])
    assert np.array_equal(result.energy, expected)  # both recomputed by the same C++ code, bit for bit


def test_burn_in_and_decorrelation_interval_are_respected(prelim):
    # Replaying chain 1 by hand: random start, burn-in, then one configuration every decorrelation time.
    s = prelim.summary
    result = _sampling(s)
    burn_in = sampling.burn_in_sweeps(s["equilibration_sweeps"], 2.0, 50)
    assert result.attrs["burn_in_sweeps"] == burn_in
    assert result.attrs["decorrelation_sweeps"] == s["decorrelation_sweeps"]
    seed = chain_seeds(derive_seed(7, "sample", "gamma0.5_T1"), 3)[1]
    sampler = sampling.make_sampler(SYSTEM, STATE, seed, s["step_size"])
    sampler.run(burn_in)
    positions, energy = sampler.sample(15, s["decorrelation_sweeps"])
    assert np.array_equal(result.positions[result.chain == 1], positions)
    assert np.array_equal(result.energy[result.chain == 1], energy)


def test_burn_in_formula():
    assert sampling.burn_in_sweeps(300, 2.0, 100) == 600
    assert sampling.burn_in_sweeps(301, 1.5, 100) == 452
    assert sampling.burn_in_sweeps(10, 2.0, 100) == 100
    assert sampling.burn_in_sweeps(0, 2.0, 0) == 0


def test_restart_mode_rerandomizes_before_every_sample(prelim):
    s = prelim.summary
    result = _sampling(s, mode="restart", samples_per_chain=4)
    assert result.positions.shape == (12, 8, 3) and result.attrs["sampling_mode"] == "restart"
    burn_in = result.attrs["burn_in_sweeps"]
    sampler = sampling.make_sampler(SYSTEM, STATE, chain_seeds(derive_seed(7, "sample", "gamma0.5_T1"), 3)[2],
                                    s["step_size"])
    expected = []
    for i in range(4):
        if i:
            sampler.randomize()
        expected.append(sampler.run(burn_in).positions)
    assert np.array_equal(result.positions[result.chain == 2], np.array(expected))
    assert not np.array_equal(result.positions, _sampling(s, samples_per_chain=4).positions)
    three = _sampling(s, threads=3, mode="restart", samples_per_chain=4)
    assert np.array_equal(three.positions, result.positions)


def test_sampling_refuses_a_preliminary_of_another_state(prelim):
    with pytest.raises(ValueError, match="gamma"):
        _sampling({**prelim.summary, "gamma": 1.0})


def test_one_particle_follows_the_barometric_law():
    # A single particle is an ideal gas: <z> = l - L/(exp(L/l) - 1) with l = T/(4 gamma) (no one here wrote it).
    system = {**SYSTEM, "n_particles": 1, "box_length": 5.0}
    state = {"gamma": 0.5, "temperature": 1.0}
    pre = preliminary.run_preliminary(system, state, {**PRELIMINARY, "sweeps": 20000},
                                   derive_seed(11, "preliminary", "ideal"), progress=False)
    result = sampling.run_sampling(system, state, {**SAMPLING, "chains": 4, "samples_per_chain": 1000},
                                   pre.summary, derive_seed(11, "sample", "ideal"), threads=2, progress=False)
    z = result.positions[:, 0, -1]
    expected = profiles.ideal_gas_mean_height(0.5, 1.0, 5.0)
    assert expected == pytest.approx(0.5 - 5.0 / math.expm1(10.0))
    # samples are one decorrelation time apart, so treat them as independent; 5 standard errors
    assert abs(z.mean() - expected) < 5 * z.std() / math.sqrt(z.size)
    assert np.allclose(result.energy, 4 * 0.5 * z)


# --------------------------------------------------------------------------- density profile and figures


def test_density_profile_counts_every_particle():
    rng = np.random.default_rng(0)
    positions = rng.uniform(0, 4.0, size=(50, 8, 3))
    edges, rho = profiles.density_profile(positions, 4.0, bins=16)
    assert edges[0] == 0 and edges[-1] == 4.0 and rho.shape == (16,)
    assert np.sum(rho * np.diff(edges)) * 4.0**2 == pytest.approx(8)
    edges2, rho2 = profiles.density_profile(positions[0], 4.0, bins=16)
    assert np.sum(rho2 * np.diff(edges2)) * 16 == pytest.approx(8)


@pytest.mark.parametrize("gamma, dim", [(0.0, 3), (0.25, 3), (1.0, 2), (50.0, 3)])
def test_barometric_density_is_normalised(gamma, dim):
    z = np.linspace(0, 5.0, 200_001)
    rho = profiles.barometric_density(z, gamma, 1.0, 5.0, 30, dim)
    assert np.trapezoid(rho, z) * 5.0 ** (dim - 1) == pytest.approx(30, rel=1e-4)
    mean_z = np.trapezoid(rho * z, z) / np.trapezoid(rho, z)
    assert mean_z == pytest.approx(profiles.ideal_gas_mean_height(gamma, 1.0, 5.0), rel=1e-4)


def test_figures_render(prelim, tmp_path):
    from vaepipe import plots

    io.save_figure(plots.preliminary_figure(prelim), tmp_path / "p.png")
    result = _sampling(prelim.summary)
    io.save_figure(plots.density_figure(result.positions, result.attrs, bins=10), tmp_path / "d.png")
    for name in ("p.png", "d.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / name).stat().st_size > 10_000
