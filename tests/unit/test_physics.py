"""Physics of the Metropolis sampler, checked against things no one in this project wrote.

- Analytic energies: the LJ pair formula, additivity, gravity, cutoff, minimum image, tail correction.
- Ideal gas under gravity between reflecting walls (one particle, so exact): the height follows the truncated
  exponential rho(z) ~ exp(-4 gamma z / T) on [0, L], and the other coordinates are uniform.
- Bulk LJ fluid against the NIST SRSW NVT Monte Carlo table (tests/data/lj_nist_srsw_nvt.csv).
- The seed system against tests/unit/reference_mc.py, a plain NumPy Metropolis sampler of the same model.

Statistical tests use fixed seeds, so each is deterministic; their thresholds (p > 1e-3 for KS, |z| < 4) make a
false alarm from a correct sampler rare across seeds. Run with ``pytest -s`` to see the measured numbers.
"""

import importlib.util
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vaepipe.decorrelation import block_average, detect_equilibration, statistical_inefficiency
from vaepipe.energy import potential_energy
from vaepipe.mc import Sampler

DATA = Path(__file__).resolve().parents[1] / "data"


def _load_reference():
    # Loaded by path so the oracle is found under any pytest import mode.
    path = Path(__file__).with_name("reference_mc.py")
    spec = importlib.util.spec_from_file_location("reference_mc", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("reference_mc", module)
    spec.loader.exec_module(module)
    return module


reference_mc = _load_reference()


def lj(r):
    """The textbook pair energy, written out here so that it shares no code with anything under test."""
    return 4.0 * ((1.0 / r) ** 12 - (1.0 / r) ** 6)


def sampler_energy(positions, box_length, **kwargs):
    """Energy of a given configuration as the sampler sees it: its bookkeeping and its from-scratch sum."""
    positions = np.asarray(positions, dtype=float)
    s = Sampler(n_particles=len(positions), box_length=box_length, temperature=1.0, dim=positions.shape[1],
                positions=positions, **kwargs)
    return s.energy, s.recompute_energy()


def assert_energy(positions, box_length, expected, rel=1e-12, abs_tol=1e-14, **kwargs):
    """potential_energy, Sampler.energy and Sampler.recompute_energy all give `expected`."""
    got = [potential_energy(positions, box_length, **kwargs), *sampler_energy(positions, box_length, **kwargs)]
    assert got == [pytest.approx(expected, rel=rel, abs=abs_tol)] * 3


def mean_and_sem(x):
    """block_average, but a series too short for its correlation time is an error here, not a warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return block_average(x)


def z_score(mean, sem, expected, expected_sem=0.0):
    return (mean - expected) / math.hypot(sem, expected_sem)


# --- analytic energies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [3, 2])
def test_pair_at_minimum_is_minus_one(dim):
    """Catches a wrong LJ prefactor, exponent or sign (the minimum must be exactly -eps at 2^(1/6) sigma)."""
    a = np.full(dim, 1.0)
    b = a.copy()
    b[0] += 2.0 ** (1.0 / 6.0)
    assert_energy([a, b], 5.0, -1.0)


DIRECTION = np.array([1.0, 2.0, 2.0]) / 3.0  # unit vector: every coordinate contributes to r


@pytest.mark.parametrize("r", [0.85, 0.95, 1.0, 1.05, 2.0 ** (1.0 / 6.0), 1.25, 1.5, 2.0, 2.5, 3.0, 4.5])
def test_pair_energy_table(r):
    """Catches wrong powers, a shifted potential, or a coordinate left out of r (the pair lies on a diagonal)."""
    start = np.array([1.0, 1.0, 1.0])
    assert_energy([start, start + r * DIRECTION], 10.0, lj(r))


def test_three_particles_are_pairwise_additive():
    """Catches a pair loop that skips or double counts pairs."""
    p = np.array([[1.0, 1.0, 1.0], [2.1, 1.3, 0.9], [1.4, 2.2, 1.6]])
    r = lambda i, j: np.linalg.norm(p[i] - p[j])  # noqa: E731
    assert_energy(p, 5.0, lj(r(0, 1)) + lj(r(0, 2)) + lj(r(1, 2)))


@pytest.mark.parametrize("dim", [3, 2])
def test_gravity_is_four_gamma_times_height(dim):
    """Catches a flipped gravity sign (the seed's slip), a missing factor 4, or gravity on the wrong axis."""
    rng = np.random.default_rng(1)
    p = rng.uniform(0.0, 20.0, size=(6, dim))
    lj_only = potential_energy(p, 20.0)
    gamma = 0.37
    # z is the last coordinate; positive gamma raises the energy of high particles (the fluid sinks).
    assert_energy(p, 20.0, lj_only + 4.0 * gamma * p[:, -1].sum(), gamma=gamma)
    single = np.zeros((1, dim))
    single[0, -1] = 3.0
    single[0, 0] = 1.0
    assert_energy(single, 5.0, 4.0 * gamma * 3.0, gamma=gamma)


@pytest.mark.parametrize("boundary", ["reflect", "periodic"])
def test_cutoff_truncates_without_shift(boundary):
    """Catches a cutoff that is ignored, inclusive of pairs beyond rc, or shifted."""
    start = np.array([3.0, 3.0, 3.0])
    outside = [start, start + 2.6 * DIRECTION]
    inside = [start, start + 2.4 * DIRECTION]
    assert_energy(outside, 10.0, 0.0, boundary=boundary, cutoff=2.5)
    assert_energy(inside, 10.0, lj(2.4), boundary=boundary, cutoff=2.5)  # plain LJ, not lj(r) - lj(rc)


def test_walls_are_not_periodic_and_periodic_uses_minimum_image():
    """Catches periodic images in the closed box (walls treated as periodic) and a missing minimum image."""
    p = np.array([[0.5, 2.0, 2.0], [9.4, 2.0, 2.0]])
    assert_energy(p, 10.0, lj(8.9), boundary="reflect")
    assert_energy(p, 10.0, lj(1.1), boundary="periodic", cutoff=3.0)
    # Across the floor and ceiling as well: the walls close the box in z.
    q = np.array([[2.0, 2.0, 0.3], [2.0, 2.0, 9.5]])
    assert_energy(q, 10.0, lj(9.2) + 4.0 * 0.1 * 9.8, gamma=0.1)
    assert_energy(q, 10.0, lj(0.8), boundary="periodic", cutoff=3.0)


@pytest.mark.parametrize("dim", [3, 2])
def test_tail_correction(dim):
    """Catches a missing, mis-signed or wrong-density tail correction, in 3D and 2D."""
    box_length, cutoff = 10.0, 3.0
    # Four particles at least 5 sigma apart (minimum image), so every pair is beyond the cutoff.
    corners = {3: [[2.5, 2.5, 2.5], [7.5, 7.5, 2.5], [7.5, 2.5, 7.5], [2.5, 7.5, 7.5]],
               2: [[2.5, 2.5], [7.5, 2.5], [2.5, 7.5], [7.5, 7.5]]}[dim]
    n = len(corners)
    rho = n / box_length**dim
    if dim == 3:
        per_particle = 8.0 / 3.0 * math.pi * rho * (cutoff**-9 / 3.0 - cutoff**-3)
    else:
        per_particle = math.pi * rho * (0.4 * cutoff**-10 - cutoff**-4)
    kwargs = dict(boundary="periodic", cutoff=cutoff)
    assert_energy(corners, box_length, 0.0, **kwargs)
    assert_energy(corners, box_length, n * per_particle, tail_correction=True, **kwargs)
    # With pairs inside the cutoff the correction simply adds.
    close = np.array(corners)
    close[1] = close[0] + 1.3 * np.eye(dim)[0]
    assert_energy(close, box_length, lj(1.3) + n * per_particle, tail_correction=True, **kwargs)


@pytest.mark.parametrize(
    "kwargs", [dict(), dict(gamma=0.2), dict(gamma=0.2, cutoff=2.5), dict(boundary="periodic", cutoff=3.0),
               dict(boundary="periodic", cutoff=2.0, tail_correction=True)],
    ids=["plain", "gravity", "gravity-cutoff", "periodic", "periodic-tail"])
@pytest.mark.parametrize("dim", [3, 2])
def test_batch_matches_loop_and_reference(dim, kwargs):
    """Catches batch indexing errors (stride, dim) and any disagreement with the oracle's explicit pair sum."""
    box_length = 6.0
    batch = np.stack([reference_mc.random_positions(12, box_length, dim, seed=k) for k in range(5)])
    batch[0, 0] = 0.0  # on the walls: allowed, and the periodic image of the far wall
    batch[0, 1, -1] = box_length
    energies = potential_energy(batch, box_length, **kwargs)
    assert energies.shape == (5,)
    loop = [potential_energy(p, box_length, **kwargs) for p in batch]
    oracle = [reference_mc.potential_energy(p, box_length, **kwargs) for p in batch]
    assert energies.tolist() == pytest.approx(loop, rel=1e-12, abs=1e-12)
    assert energies.tolist() == pytest.approx(oracle, rel=1e-10, abs=1e-10)


def test_bookkeeping_matches_recomputed_energy():
    """Catches incremental energy updates that drift from the true energy (e.g. dU added on rejection)."""
    s = Sampler(n_particles=30, box_length=5.0, temperature=1.0, gamma=0.1, seed=3, step_size=0.3).run(2000)
    assert s.energy == pytest.approx(s.recompute_energy(), rel=1e-9, abs=1e-9)
    assert s.energy == pytest.approx(reference_mc.potential_energy(s.positions, 5.0, gamma=0.1), rel=1e-9)


# --- ideal gas under gravity between reflecting walls ------------------------------------------------------


def height_cdf(z, box_length, decay_length):
    """CDF of rho(z) ~ exp(-z / l) truncated to [0, L]."""
    return -np.expm1(-z / decay_length) / -np.expm1(-box_length / decay_length)


def mean_height(box_length, decay_length):
    return decay_length - box_length / math.expm1(box_length / decay_length)


IDEAL_GAS_CASES = [
    # dim, gamma, temperature, step_size; l = T / (4 gamma) against L = 5
    pytest.param(3, 0.1, 1.0, 1.0, id="3d-l2.5"),
    pytest.param(3, 0.5, 2.0, 1.0, id="3d-l1-T2"),  # exp(-dU*T) instead of exp(-dU/T) would give l = 0.25
    pytest.param(3, 1.0, 1.0, 0.6, id="3d-l0.25-floor"),  # lives on the floor: most moves cross it
    pytest.param(3, 0.01, 1.0, 2.5, id="3d-l25-both-walls"),  # nearly flat: both walls, steps up to L/2
    pytest.param(2, 0.1, 1.0, 1.0, id="2d-l2.5"),
    pytest.param(2, 0.25, 0.5, 2.0, id="2d-l0.5"),
]
# The slab boundary: periodic horizontally, mirrored walls in height (a cutoff <= L/2 is required; one particle
# never feels it). Catches a height axis that wraps, or horizontal axes that mirror or drift.
IDEAL_GAS_CASES += [
    pytest.param(3, 0.25, 1.0, 1.5, id="3d-slab-l1", marks=pytest.mark.slab),
    pytest.param(2, 0.1, 1.0, 2.0, id="2d-slab-l2.5", marks=pytest.mark.slab),
]


@pytest.mark.statistical
@pytest.mark.parametrize("dim, gamma, temperature, step_size", IDEAL_GAS_CASES)
def test_ideal_gas_under_gravity(dim, gamma, temperature, step_size, request):
    """One particle between reflecting walls: rho(z) ~ exp(-4 gamma z / T) on [0, L], x and y uniform.

    Catches an inverted acceptance rule or a flipped gravity sign (rho rises with z), exp(-dU*T) for
    exp(-dU/T) (T = 2, 0.5 cases), a wrong gravity factor, and walls that break detailed balance: clamping
    to the wall, mirroring one wall but wrapping the other, or a biased proposal (KS on every coordinate).
    Periodic wrapping of one particle happens to sample the same density; the energy and seed-system tests
    catch periodic walls.
    """
    box_length, num_samples = 5.0, 20_000
    decay_length = temperature / (4.0 * gamma)
    slab = request.node.get_closest_marker("slab") is not None
    boundary = dict(boundary="slab", cutoff=2.5) if slab else {}
    s = Sampler(n_particles=1, box_length=box_length, temperature=temperature, gamma=gamma, dim=dim,
                seed=11, step_size=step_size, **boundary)
    s.run(1_000)
    # Thin by a measured interval: several correlation times of the slowest coordinate (the horizontal ones,
    # which only diffuse, can be much slower than the height). One sweep is one move here.
    trace, _ = s.sample(100_000, 1)
    g = max(statistical_inefficiency(trace[:, 0, k]) for k in range(dim))
    interval = math.ceil(5.0 * g)
    positions, _ = s.sample(num_samples, interval)
    z = positions[:, 0, -1]
    p_height = stats.kstest(z, lambda x: height_cdf(x, box_length, decay_length)).pvalue
    # The horizontal coordinates feel no force: uniform on [0, L] unless the walls or the proposal are biased.
    p_flat = [stats.kstest(positions[:, 0, k], stats.uniform(0.0, box_length).cdf).pvalue for k in range(dim - 1)]
    mean, sem = mean_and_sem(z)
    expected = mean_height(box_length, decay_length)
    zs = z_score(mean, sem, expected)
    print(f"\nideal gas dim={dim} gamma={gamma} T={temperature} step={step_size}: g={g:.1f} interval={interval} "
          f"KS p(z)={p_height:.3g} p(x..)={[f'{p:.3g}' for p in p_flat]} <z>={mean:.4f}+-{sem:.4f} "
          f"expected {expected:.4f} z-score {zs:+.2f} acceptance {s.acceptance_rate:.2f}")
    assert p_height > 1e-3
    assert min(p_flat) > 1e-3
    assert abs(zs) < 4.0


def test_reference_oracle_ideal_gas():
    """The oracle itself passes the ideal-gas check (many independent one-particle chains, last state of each)."""
    box_length, gamma, temperature = 5.0, 0.2, 1.0
    start = np.full((4000, 1, 3), 0.5 * box_length)
    ref = reference_mc.ReferenceSampler(start, box_length, temperature, gamma, step_size=1.5, seed=5).run(150)
    z = ref.positions[:, 0, -1]
    decay_length = temperature / (4.0 * gamma)
    assert stats.kstest(z, lambda x: height_cdf(x, box_length, decay_length)).pvalue > 1e-3
    assert stats.kstest(ref.positions[:, 0, 0], stats.uniform(0.0, box_length).cdf).pvalue > 1e-3
    assert abs(z_score(z.mean(), z.std(ddof=1) / math.sqrt(z.size), mean_height(box_length, decay_length))) < 4.0
    assert ref.energy == pytest.approx(ref.recompute_energy(), abs=1e-9)


# --- bulk LJ fluid against NIST SRSW ------------------------------------------------------------------------

NIST = pd.read_csv(DATA / "lj_nist_srsw_nvt.csv", comment="#")
NIST_N, NIST_CUTOFF = 500, 3.0
# sweeps (of 500 moves): step tuning, then equilibration, then the production trace
NIST_SWEEPS = {"tune": 200, "equilibrate": 800, "production": 6_000}


def nist_neighbor_list(density):
    # The dilute gases tune their step to L/2, and then nearly every accepted move leaves the Verlet skin and
    # forces a list rebuild (about 100x slower than all pairs); the dense liquid exercises the list.
    return "auto" if density > 0.1 else "off"


@pytest.mark.statistical
@pytest.mark.parametrize("row", [pytest.param(row, id=f"T{row.temperature}-rho{row.density}")
                                 for row in NIST.itertuples(index=False)])
def test_bulk_lj_energy_matches_nist(row):
    """Bulk LJ, N = 500, periodic, rc = 3 + tail correction, against NIST SRSW NVT MC.

    Catches errors in the periodic pair sum (minimum image, cutoff, neighbour list missing pairs), in the tail
    correction (0.24 eps per particle at rho = 0.776), and in the acceptance rule's temperature.
    """
    t0 = time.perf_counter()
    box_length = (NIST_N / row.density) ** (1.0 / 3.0)
    s = Sampler(n_particles=NIST_N, box_length=box_length, temperature=row.temperature, boundary="periodic",
                cutoff=NIST_CUTOFF, tail_correction=True, seed=2024, step_size=0.2,
                neighbor_list=nist_neighbor_list(row.density))
    s.tune_step_size(NIST_SWEEPS["tune"], target_acceptance=0.4)
    s.run(NIST_SWEEPS["equilibrate"])
    u = s.run_trace(NIST_SWEEPS["production"]) / NIST_N
    start, _, _ = detect_equilibration(u)  # drop any remaining transient
    mean, sem = mean_and_sem(u[start:])
    zs = z_score(mean, sem, row.energy_per_particle, row.u_std)
    print(f"\nNIST T={row.temperature} rho={row.density}: U/N = {mean:.5f} +- {sem:.5f} (ours), "
          f"{row.energy_per_particle:.5f} +- {row.u_std:.1e} (NIST), z-score {zs:+.2f}; step {s.step_size:.3f}, "
          f"acceptance {s.acceptance_rate:.2f}, transient dropped {start} sweeps, {time.perf_counter() - t0:.1f} s")
    assert abs(s.energy - s.recompute_energy()) < 1e-6 * NIST_N
    assert abs(zs) < 4.0


# --- the seed system against the NumPy oracle ---------------------------------------------------------------

SEED_SYSTEM = dict(box_length=5.0, temperature=1.0, gamma=0.1)
SEED_N, SEED_STEP = 30, 1.0
# A film on a floor: horizontally periodic, walls in height, stronger gravity, truncated at L/2.
SLAB_SYSTEM = dict(box_length=5.0, temperature=1.0, gamma=0.3, boundary="slab", cutoff=2.5)


@pytest.mark.statistical
@pytest.mark.parametrize("system", [SEED_SYSTEM, SLAB_SYSTEM], ids=["reflect", "slab"])
def test_seed_system_matches_numpy_reference(system):
    """The interacting seed system with gravity and walls: C++ against the NumPy oracle, <U/N> and <z>.

    Catches what the ideal gas cannot: periodic walls in the interacting system (U/N about -1.32 instead of
    -0.97 with the oracle made periodic), and any other difference in the full model at this state point.
    """
    t0 = time.perf_counter()
    # C++: one long chain, errors by blocking.
    s = Sampler(n_particles=SEED_N, **system, seed=17, step_size=SEED_STEP).run(5_000)
    u_cpp, z_cpp = [], []
    for _ in range(10):
        positions, energies = s.sample(10_000, 2)
        u_cpp.append(energies / SEED_N)
        z_cpp.append(positions[..., -1].mean(axis=1))
    cpp = {"U/N": mean_and_sem(np.concatenate(u_cpp)), "<z>": mean_and_sem(np.concatenate(z_cpp))}
    t1 = time.perf_counter()

    # NumPy: many short independent chains (replicas), errors from the spread of the per-chain means.
    n_replicas = 64
    start = np.stack([reference_mc.random_positions(SEED_N, system["box_length"], 3, seed=k,
                                                          boundary=system.get("boundary", "reflect"))
                      for k in range(n_replicas)])
    ref = reference_mc.ReferenceSampler(start, **system, step_size=SEED_STEP, seed=23).run(500)
    positions, energies = ref.sample(500, 2)  # (S, R, N, 3), (S, R)
    per_chain = {"U/N": (energies / SEED_N).mean(axis=0), "<z>": positions[..., -1].mean(axis=(0, 2))}
    numpy_ref = {k: (v.mean(), v.std(ddof=1) / math.sqrt(n_replicas)) for k, v in per_chain.items()}
    t2 = time.perf_counter()

    scores = {k: z_score(*cpp[k], *numpy_ref[k]) for k in cpp}
    print(f"\nseed system N={SEED_N}: C++ {t1 - t0:.1f} s, NumPy ({n_replicas} chains) {t2 - t1:.1f} s")
    for k in cpp:
        print(f"  {k}: C++ {cpp[k][0]:.4f} +- {cpp[k][1]:.4f}, NumPy {numpy_ref[k][0]:.4f} +- {numpy_ref[k][1]:.4f}, "
              f"z-score {scores[k]:+.2f}")
    assert all(abs(v) < 4.0 for v in scores.values()), scores
