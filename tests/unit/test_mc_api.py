"""The sampler's Python API: argument checks, determinism, bookkeeping, state, and the C++ dispatch."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from vaepipe import _build, _compiled
from vaepipe.energy import potential_energy
from vaepipe.mc import Sampler, simd_level

SEED_SYSTEM = dict(n_particles=30, box_length=5.0, temperature=1.0, gamma=0.1, dim=3, boundary="reflect")
BULK = dict(n_particles=500, box_length=(500 / 0.776) ** (1 / 3), temperature=0.85, boundary="periodic",
            cutoff=3.0, tail_correction=True, step_size=0.15)


# --- bad input -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(n_particles=0), r"n_particles=0 .*positive integer"),
    (dict(n_particles=-3), r"n_particles=-3"),
    (dict(n_particles=2.5), r"n_particles=2.5"),
    (dict(box_length=0.0), r"box_length=0.0 .*positive finite"),
    (dict(box_length=-1.0), r"box_length=-1.0"),
    (dict(box_length=float("inf")), r"box_length=inf"),
    (dict(temperature=0.0), r"temperature=0.0 .*positive finite"),
    (dict(temperature=float("nan")), r"temperature=nan"),
    (dict(gamma=float("nan")), r"gamma=nan .*finite"),
    (dict(gamma=float("inf")), r"gamma=inf"),
    (dict(dim=4), r"dim=4 .*2 or 3"),
    (dict(boundary="box"), r"boundary='box' .*reflect"),
    (dict(boundary="periodic", cutoff=2.0), r"gamma=0.1 .*periodic.*use boundary='reflect'"),
    (dict(boundary="periodic", gamma=0.0), r"cutoff=None .*box_length/2"),
    (dict(boundary="periodic", gamma=0.0, cutoff=3.0), r"cutoff=3.0 .*box_length/2 = 2.5"),
    (dict(boundary="slab"), r"cutoff=None .*boundary='slab'"),
    (dict(boundary="slab", cutoff=2.0, tail_correction=True), r"tail_correction=True .*periodic"),
    (dict(cutoff=-1.0), r"cutoff=-1.0"),
    (dict(tail_correction=True, cutoff=2.0), r"tail_correction=True .*periodic"),
    (dict(step_size=0.0), r"step_size=0.0"),
    (dict(step_size=3.0), r"step_size=3.0 .*box_length/2"),
    (dict(seed=-1), r"seed=-1"),
    (dict(n_particles=400), r"n_particles=400 cannot be placed.*At most 216"),
    (dict(positions=np.zeros((29, 3))), r"shape \(30, 3\)"),
    (dict(positions=np.full((30, 3), 6.0)), r"inside the box"),
    (dict(positions=np.full((30, 3), np.nan)), r"finite"),
    (dict(neighbor_list="maybe"), r"neighbor_list='maybe'"),
    (dict(neighbor_list="on"), r"neighbor_list='on' .*without a cutoff"),
    (dict(pair_cache="no"), r"pair_cache='no' .*True or False"),
    (dict(dim=3.0), r"dim=3.0 .*2 or 3"),
    (dict(boundary=np.array("reflect")), r"boundary=array\('reflect'"),
    (dict(n_particles=2**31), r"n_particles=2147483648 .*at most"),
    (dict(positions=np.array([[1.0, 1.0, 1.0]] * 2 + [[3.0, 3.0, 3.0]] * 28)),
     r"particles 0 and 1 are 0 sigma apart.*not finite"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Sampler(**{**SEED_SYSTEM, **kwargs})


def test_bad_run_arguments_and_setters():
    s = Sampler(**SEED_SYSTEM, seed=1)
    with pytest.raises(ValueError, match="sweeps=-1"):
        s.run(-1)
    with pytest.raises(ValueError, match="every=0"):
        s.run_trace(10, every=0)
    with pytest.raises(ValueError, match="interval=0"):
        s.sample(3, interval=0)
    with pytest.raises(ValueError, match="step_size=-0.1"):
        s.step_size = -0.1
    with pytest.raises(ValueError, match=r"inside the box \[0, box_length=5\]"):
        s.positions = np.full((30, 3), -0.5)
    with pytest.raises(ValueError, match="target_acceptance"):
        s.tune_step_size(10, target_acceptance=1.5)
    with pytest.raises(ValueError, match="get_state"):
        s.set_state({"positions": s.positions})


def test_failed_placement_and_bad_positions_leave_the_sampler_unchanged():
    # 60 particles on a 4^3 lattice of spacing 0.75 in a 3-sigma box: valid, but too dense to place anew.
    grid = (np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3)[:60] + 0.5) * 0.75
    s = Sampler(n_particles=60, box_length=3.0, temperature=1.0, positions=grid, seed=1)
    before = s.positions, s.energy
    stream = s.get_state()["rng_state"]
    with pytest.raises(ValueError, match="cannot be placed"):
        s.randomize()
    assert np.array_equal(s.get_state()["rng_state"], stream)
    with pytest.raises(ValueError, match="particles 0 and 1 .*not finite"):
        s.positions = np.vstack([grid[:1], grid[:1], grid[2:]])
    assert np.array_equal(s.positions, before[0]) and s.energy == before[1] == s.recompute_energy()


def test_escaping_a_near_overlap_keeps_the_bookkeeping_exact():
    p = np.array([[2.0, 2.0, 2.0], [2.3, 2.0, 2.0], [4.0, 4.0, 4.0]])  # U ~ 4 * 0.3^-12 = 7.5e6
    s = Sampler(n_particles=3, box_length=5.0, temperature=1.0, positions=p, seed=2)
    s.run(200)
    assert s.energy == pytest.approx(s.recompute_energy(), rel=1e-10, abs=1e-10)


def test_potential_energy_of_an_empty_batch():
    assert potential_energy(np.empty((0, 5, 3)), 5.0).shape == (0,)


def test_potential_energy_bad_input():
    with pytest.raises(ValueError, match=r"shape \(N, dim\) or \(S, N, dim\)"):
        potential_energy(np.zeros(3), 5.0)
    with pytest.raises(ValueError, match="inside the box"):
        potential_energy([[1.0, 1.0, 1.0], [1.0, 1.0, 7.0]], 5.0)
    with pytest.raises(ValueError, match="gamma=0.5 .*periodic"):
        potential_energy([[1.0, 1.0, 1.0], [2.0, 1.0, 1.0]], 5.0, gamma=0.5, boundary="periodic", cutoff=2.0)


# --- placement -----------------------------------------------------------------------------------------------

def _min_distance(p):
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    return d[np.triu_indices(len(p), 1)].min()


@pytest.mark.parametrize("dim", [2, 3])
def test_random_placement_has_no_overlaps(dim):
    # 30 disks of diameter 0.9 in a 5 x 5 square would be past random insertion's jamming limit: use 8 x 8.
    box_length = 5.0 if dim == 3 else 8.0
    s = Sampler(**{**SEED_SYSTEM, "dim": dim, "box_length": box_length}, seed=3)
    p = s.positions
    assert p.shape == (30, dim)
    assert p.min() >= 0.0 and p.max() <= box_length
    assert len(np.unique(p.round(9))) > 30  # not the lattice
    assert _min_distance(p) >= 0.9
    assert np.isfinite(s.energy)


def test_dense_system_falls_back_to_lattice():
    # rho = 1.2 is past the jamming density of random insertion at 0.9 sigma (about 1.0), but a 6^3 lattice of
    # spacing 5/6 fits, filled from the floor up.
    s = Sampler(n_particles=150, box_length=5.0, temperature=1.0, seed=0)
    p = s.positions
    assert _min_distance(p) == pytest.approx(5 / 6)
    assert np.allclose(np.unique(p.round(9)), (np.arange(6) + 0.5) * 5 / 6)
    assert p[:, 2].max() == pytest.approx(4.5 * 5 / 6)  # 150 = 4 full layers of 36 + 6: the top layer stays empty


# --- determinism ---------------------------------------------------------------------------------------------

def _trajectory(seed, **overrides):
    s = Sampler(**{**SEED_SYSTEM, **overrides}, seed=seed)
    trace = s.run_trace(200, every=10)
    positions, energies = s.sample(5, interval=20)
    return trace, positions, energies


def test_same_seed_gives_bitwise_identical_runs():
    a, b = _trajectory(7), _trajectory(7)
    for x, y in zip(a, b):
        assert x.tobytes() == y.tobytes()


def test_seed_sequence_and_int_seeds():
    a = _trajectory(np.random.SeedSequence(7))
    b = _trajectory(7)
    assert a[1].tobytes() == b[1].tobytes()  # SeedSequence(7) is what an int 7 means
    c = _trajectory(np.random.SeedSequence(7).spawn(1)[0])
    assert not np.array_equal(a[1], c[1])


def test_chunked_runs_equal_one_long_run(monkeypatch):
    s1 = Sampler(**SEED_SYSTEM, seed=11)
    s1.run(500)
    monkeypatch.setattr("vaepipe.mc._MOVES_PER_CHUNK", 30 * 7)  # 7-sweep chunks
    s2 = Sampler(**SEED_SYSTEM, seed=11)
    s2.run(500, progress=True)
    assert s1.positions.tobytes() == s2.positions.tobytes()
    assert s1.energy == s2.energy


def test_every_simd_variant_gives_the_same_trajectory():
    """The kernels compiled for SSE2, AVX2 and AVX-512 accumulate in the same fixed lanes and order."""
    levels = ["sse2", "avx2", "avx512"]
    available = levels[: levels.index(simd_level()) + 1]
    if len(available) < 2:
        pytest.skip("this CPU offers only SSE2: there is no second kernel to compare with")
    code = ("import numpy as np; from vaepipe.mc import Sampler, simd_level;"
            "s = Sampler(n_particles=30, box_length=5.0, temperature=1.0, gamma=0.1, seed=5); s.run(2000);"
            "b = Sampler(n_particles=300, box_length=7.5, temperature=1.2, boundary='periodic', cutoff=3.0, seed=5);"
            "b.run(50); print(simd_level(), s.positions.tobytes().hex(), b.positions.tobytes().hex(), "
            "s.energy.hex(), b.energy.hex())")
    outputs = {}
    for level in available:
        env = dict(os.environ, VAEPIPE_SIMD=level)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        reported, *values = out.stdout.split()
        assert reported == level
        outputs[level] = values
    first = outputs[available[0]]
    for level in available[1:]:
        assert outputs[level] == first, f"{level} differs from {available[0]}"


def test_asking_for_missing_instructions_is_a_python_error():
    code = "import vaepipe.mc as m; m.simd_level()"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, VAEPIPE_SIMD="avx9000"),
                         capture_output=True, text=True)
    assert out.returncode == 1  # an exception, not a crash (a signal gives a negative code)
    assert "ValueError: VAEPIPE_SIMD='avx9000' is not one of sse2, avx2, avx512" in out.stderr


# --- energy bookkeeping --------------------------------------------------------------------------------------

@pytest.mark.parametrize("system", [
    SEED_SYSTEM,
    {**SEED_SYSTEM, "dim": 2, "box_length": 8.0},
    {**SEED_SYSTEM, "cutoff": 2.5, "gamma": 1.0},
    BULK,
], ids=["seed", "2d", "cutoff", "bulk-neighbor-list"])
def test_incremental_energy_matches_recompute_after_long_runs(system):
    s = Sampler(**system, seed=2)
    sweeps = 20_000 if system["n_particles"] <= 30 else 300
    s.run(sweeps)
    assert s.accepted > 0.1 * s.attempted
    assert s.energy == pytest.approx(s.recompute_energy(), rel=1e-10, abs=1e-10)
    assert s.recompute_energy() == pytest.approx(
        potential_energy(s.positions, s.box_length, s.gamma, s.boundary, s.cutoff, s.tail_correction), rel=1e-14)


def test_slab_is_periodic_horizontally_and_walled_in_height():
    lj = lambda r: 4 * (r**-12 - r**-6)  # noqa: E731
    slab = dict(box_length=5.0, boundary="slab", cutoff=2.5)
    across_x = np.array([[0.2, 2.0, 2.0], [4.8, 2.0, 2.0]])  # 0.4 sigma apart through the side
    across_z = np.array([[2.0, 2.0, 0.2], [2.0, 2.0, 4.8]])  # 4.6 sigma apart: floor and ceiling do not meet
    assert potential_energy(across_x, **slab) == pytest.approx(lj(0.4), rel=1e-12)
    assert potential_energy(across_z, gamma=0.5, **slab) == pytest.approx(4 * 0.5 * 5.0, rel=1e-12)
    assert potential_energy(across_z, boundary="periodic", box_length=5.0, cutoff=2.5) == pytest.approx(lj(0.4))
    flat = np.array([[0.2, 2.0], [4.8, 2.0]])
    assert potential_energy(flat, **slab) == pytest.approx(lj(0.4), rel=1e-12)  # 2D: x wraps, y is the height
    assert potential_energy(flat[:, ::-1], **slab) == 0.0


def test_slab_with_gravity_runs_with_and_without_the_neighbor_list():
    film = dict(n_particles=400, box_length=10.0, temperature=1.0, gamma=0.5, boundary="slab", cutoff=2.5,
                step_size=0.15)
    on = Sampler(**film, seed=4, neighbor_list="on")
    off = Sampler(**film, seed=4, neighbor_list="off")
    start = on.positions[:, 2].mean()
    for s in (on, off):
        s.run(40)
    assert on.neighbor_refreshes > 1  # particles left their skin and had their rows refreshed
    assert np.array_equal(on.positions, off.positions)
    assert on.energy == pytest.approx(on.recompute_energy(), rel=1e-10)
    assert on.positions[:, 2].mean() < start - 0.05  # sinking, and not leaking through floor or ceiling
    assert 0.0 <= on.positions.min() and on.positions.max() <= 10.0


def test_neighbor_list_and_all_pairs_agree():
    on = Sampler(**BULK, seed=4, neighbor_list="on")
    off = Sampler(**BULK, seed=4, neighbor_list="off")
    assert on.uses_neighbor_list and not off.uses_neighbor_list
    on.run(60)
    off.run(60)
    assert on.neighbor_refreshes > 1  # the list really was updated during the run
    # Same random numbers and (up to the last bit of dU) the same decisions, hence the same configuration.
    assert np.array_equal(on.positions, off.positions)
    assert on.energy == pytest.approx(off.energy, rel=1e-12)


@pytest.mark.parametrize("system", [SEED_SYSTEM, {**SEED_SYSTEM, "dim": 2, "box_length": 8.0, "cutoff": 3.0}],
                         ids=["3d", "2d-cutoff"])
def test_pair_cache_gives_the_same_trajectory_bit_for_bit(system):
    cached = Sampler(**system, seed=8)
    plain = Sampler(**system, seed=8, pair_cache=False)
    assert cached.uses_pair_cache and not plain.uses_pair_cache
    for s in (cached, plain):
        s.run(3000)
    assert cached.positions.tobytes() == plain.positions.tobytes()
    assert cached.energy == plain.energy


def test_auto_neighbor_list_steps_aside_for_a_dilute_gas():
    """A step as large as the skin would send most trials past it; "auto" then moves over all pairs."""
    gas = dict(BULK, box_length=(500 / 0.005) ** (1 / 3), step_size=10.0)
    auto = Sampler(**gas, seed=6)
    off = Sampler(**gas, seed=6, neighbor_list="off")
    assert auto.uses_neighbor_list
    auto.run(20)
    off.run(20)
    assert auto.neighbor_rebuilds == 0
    assert auto.positions.tobytes() == off.positions.tobytes()
    auto.step_size = 0.2  # a liquid-like step: the list is back, built afresh
    auto.run(2)
    assert auto.neighbor_rebuilds >= 1


def test_sample_energies_are_the_energies_of_the_samples():
    s = Sampler(**SEED_SYSTEM, seed=9)
    positions, energies = s.sample(10, interval=5)
    assert positions.shape == (10, 30, 3) and energies.shape == (10,)
    assert np.array_equal(energies, potential_energy(positions, 5.0, gamma=0.1))
    assert not np.array_equal(positions[0], positions[1])


def test_run_trace_records_every_interval():
    s = Sampler(**SEED_SYSTEM, seed=9)
    trace = s.run_trace(95, every=10)
    assert trace.shape == (9,)
    assert s.attempted == 95 * 30
    s2 = Sampler(**SEED_SYSTEM, seed=9)
    s2.run(90)
    assert trace[-1] == s2.energy


# --- state and tuning ----------------------------------------------------------------------------------------

FILM = dict(n_particles=400, box_length=10.0, temperature=1.0, gamma=0.5, boundary="slab", cutoff=2.5,
            step_size=0.15, neighbor_list="on")


@pytest.mark.parametrize("system", [SEED_SYSTEM, BULK, {**BULK, "neighbor_list": "off"}, FILM],
                         ids=["all-pairs-cache", "neighbor-list-tail", "all-pairs-periodic", "slab-neighbor-list"])
def test_get_state_set_state_resumes_bit_for_bit(system):
    whole = Sampler(**system, seed=21)
    whole.run(40)
    first = Sampler(**system, seed=21)
    first.run(23)
    state = first.get_state()
    resumed = Sampler(**system, seed=999).set_state(state)
    resumed.run(17)
    assert resumed.positions.tobytes() == whole.positions.tobytes()
    assert (resumed.attempted, resumed.accepted) == (whole.attempted, whole.accepted)
    assert resumed.energy == whole.energy  # exactly: bookkeeping, tail correction and neighbour list restored


def test_set_state_checks_everything_before_changing_anything():
    s = Sampler(**SEED_SYSTEM, seed=3)
    good = s.get_state()
    s.run(10)
    before = s.get_state()
    for bad, match in [({"rng_state": [0, 0, 0, 0]}, "not all zero"), ({"rng_state": [1, 2, 3]}, "rng_state"),
                       ({"attempted": -1}, "attempted"), ({"step_size": 0.0}, "step_size")]:
        with pytest.raises(ValueError, match=match):
            s.set_state({**good, **bad})
        assert s.positions.tobytes() == before["positions"].tobytes()
        assert s.energy == before["energy"]


def test_tune_step_size_reaches_target_acceptance():
    s = Sampler(**SEED_SYSTEM, seed=1, step_size=2.0)
    s.tune_step_size(2000, target_acceptance=0.4)
    assert s.attempted == 0  # counters reset after tuning
    tuned = s.step_size
    s.run(2000)
    assert s.step_size == tuned  # frozen
    assert s.acceptance_rate == pytest.approx(0.4, abs=0.07)


# --- the build -----------------------------------------------------------------------------------------------

def test_extension_was_built_from_these_sources():
    assert _compiled.core().source_digest == _build.source_digest()


def test_source_digest_sees_a_changed_cpp_file(tmp_path):
    shutil.copytree(_build.REPO_ROOT / "cpp", tmp_path / "cpp")
    shutil.copy(_build.REPO_ROOT / "CMakeLists.txt", tmp_path / "CMakeLists.txt")
    assert _build.source_digest(tmp_path) == _build.source_digest()
    with open(tmp_path / "cpp" / "core" / "Sampler.cc", "a") as f:
        f.write("// edited\n")
    assert _build.source_digest(tmp_path) != _build.source_digest()


def test_simd_level_and_compile_flags():
    assert simd_level() in ("sse2", "avx2", "avx512")
    flags = _compiled.core().compile_flags
    for flag in ("-O3", "-fno-trapping-math", "-fopenmp-simd", "-ffp-contract=off"):
        assert flag in flags


# --- neighbour list: automatic skin, per-particle refreshes, kernel choice per case (issue 14) ----------------

DENSE = {k: v for k, v in BULK.items() if k != "step_size"}  # N = 500, rho = 0.776, T = 0.85, rc = 3


def test_automatic_skin_follows_the_step_and_an_explicit_one_stays():
    s = Sampler(**DENSE, seed=1, step_size=0.1)
    assert s.neighbor_skin == pytest.approx(8 * 0.1)
    s.step_size = 0.13
    assert s.neighbor_skin == pytest.approx(8 * 0.13)
    s.step_size = 1.0
    assert s.neighbor_skin == 1.5  # clipped to [0.3, 1.5]
    s.step_size = 0.01
    assert s.neighbor_skin == 0.3
    fixed = Sampler(**DENSE, seed=1, step_size=0.1, neighbor_skin=0.7)
    fixed.step_size = 0.2
    assert fixed.neighbor_skin == 0.7
    for bad in (0.0, -1.0, float("nan"), "wide"):
        with pytest.raises(ValueError, match="neighbor_skin"):
            Sampler(**DENSE, seed=1, neighbor_skin=bad)


def test_auto_takes_the_neighbor_list_on_a_dense_liquid_without_being_told():
    """Built with the default step (0.2, skin 1.5) and tuned: the skin shrinks with the step, the list stays."""
    n = 1000
    dense = dict(DENSE, n_particles=n, box_length=(n / 0.776) ** (1 / 3))
    s = Sampler(**dense, seed=2)
    assert s.uses_neighbor_list and s.neighbor_skin == 1.5
    s.tune_step_size(40)
    assert s.step_size < 0.16 and s.neighbor_skin < 1.3 and s.uses_neighbor_list and not s.uses_pair_cache
    s.run(1)  # builds the list for the final skin (tuning rebuilt it at every step change)
    builds = s.neighbor_rebuilds
    s.run(10)
    assert s.neighbor_refreshes > 0 and s.neighbor_rebuilds == builds  # refreshed particle by particle
    assert 150 < s.mean_neighbors < 250
    assert s.energy == pytest.approx(s.recompute_energy(), rel=1e-10)


def test_auto_keeps_the_pair_cache_where_it_is_faster_than_the_list():
    """N = 500: 210 listed neighbours cost more than the 500 new pair energies of the cache (0.9x measured)."""
    s = Sampler(**DENSE, seed=2, step_size=0.13)
    assert not s.uses_neighbor_list and s.uses_pair_cache
    assert Sampler(**DENSE, seed=2, step_size=0.13, pair_cache=False).uses_neighbor_list  # against plain all pairs
    s.run(3)
    s.step_size = 0.05  # skin 0.4: about 130 neighbours, and now the list pays
    assert s.uses_neighbor_list and not s.uses_pair_cache
    s.run(3)
    s.step_size = 0.13  # back to the pair cache, refilled from the configuration the list left
    assert not s.uses_neighbor_list and s.uses_pair_cache
    s.run(3)
    assert s.energy == pytest.approx(s.recompute_energy(), rel=1e-10)
    twin = Sampler(**DENSE, seed=2, step_size=0.13, neighbor_list="off")
    twin.run(3)
    twin.step_size = 0.05
    twin.run(3)
    twin.step_size = 0.13
    twin.run(3)
    assert np.array_equal(s.positions, twin.positions)  # same decisions whichever path priced them


@pytest.mark.parametrize("system", [
    dict(n_particles=1500, box_length=(1500 / 0.8) ** (1 / 3), temperature=0.9, boundary="periodic", cutoff=2.5),
    dict(n_particles=900, box_length=15.0, temperature=1.0, gamma=0.3, boundary="slab", cutoff=2.5),
    dict(n_particles=700, box_length=14.0, temperature=1.0, gamma=0.3, boundary="reflect", cutoff=2.5),
    dict(n_particles=600, box_length=30.0, temperature=0.8, dim=2, boundary="periodic", cutoff=2.5),
], ids=["bulk-reach-2", "slab", "reflect", "2d"])
def test_refreshed_neighbor_list_agrees_with_all_pairs(system):
    """Boxes large enough for several cells per side: the cell queries and the refreshes miss no pair."""
    on = Sampler(**system, seed=12, step_size=0.12, neighbor_list="on")
    off = Sampler(**system, seed=12, step_size=0.12, neighbor_list="off")
    for s in (on, off):
        s.run(30)
    assert on.neighbor_refreshes > 50
    assert np.array_equal(on.positions, off.positions)
    assert on.energy == pytest.approx(off.energy, rel=1e-10)


def test_resume_after_many_refreshes_is_bit_for_bit():
    """The list is a function of its reference positions: restoring them restores it, whatever came before."""
    system = dict(BULK, step_size=0.13, neighbor_list="on")
    whole = Sampler(**system, seed=31)
    whole.run(60)
    first = Sampler(**system, seed=31)
    first.run(35)
    assert first.neighbor_refreshes > 30
    resumed = Sampler(**system, seed=0).set_state(first.get_state())
    resumed.run(25)
    assert resumed.positions.tobytes() == whole.positions.tobytes()
    assert resumed.energy == whole.energy


def test_kernel_choice_per_case_is_bit_identical():
    """On an AVX-512 CPU a seed-sized system runs the AVX2 kernel, a dense liquid the AVX-512 one; forcing
    either level gives the same trajectory."""
    if simd_level() != "avx512":
        pytest.skip("the per-case choice only differs on an AVX-512 CPU")
    assert Sampler(**SEED_SYSTEM, seed=5).kernel == "avx2"
    assert Sampler(**DENSE, seed=5, step_size=0.13).kernel == "avx512"  # 500 pairs a call (pair cache)
    code = ("from vaepipe.mc import Sampler;"
            "s = Sampler(n_particles=30, box_length=5.0, temperature=1.0, gamma=0.1, seed=5); s.run(2000);"
            "print(s.kernel, s.positions.tobytes().hex(), s.energy.hex())")
    outputs = {}
    for level in (None, "avx2", "avx512"):
        env = dict(os.environ)
        env.pop("VAEPIPE_SIMD", None)
        if level:
            env["VAEPIPE_SIMD"] = level
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        kernel, *values = out.stdout.split()
        assert kernel == (level or "avx2")
        outputs[level] = values
    assert outputs[None] == outputs["avx2"] == outputs["avx512"]
