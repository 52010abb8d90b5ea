"""vaepipe.minimize: quenches to inherent structures and basin hopping, on the C++ energy and forces, against the
Cambridge Cluster Database's LJ cluster minima (../shared/reference, copied into tests/data)."""

import csv
from pathlib import Path

import numpy as np
import pytest

from vaepipe.energy import forces, potential_energy
from vaepipe.mc import Sampler
from vaepipe.minimize import basin_hopping, quench

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "lj_cluster_minima.csv"


def _ccd():
    with open(REFERENCE) as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        return {int(r["n_particles"]): float(r["energy"]) for r in rows}


def _icosahedron(radius=1.09, centre=2.5):
    phi = (1 + 5 ** 0.5) / 2
    vertices = []
    for a in (-1, 1):
        for b in (-phi, phi):
            vertices += [(0, a, b), (a, b, 0), (b, 0, a)]
    v = np.array(vertices, dtype=float)
    v *= radius / np.linalg.norm(v[0])
    return np.vstack([[0.0, 0.0, 0.0], v]) + centre


def _mc_configurations(gamma, count=3, n=30):
    s = Sampler(n_particles=n, box_length=5.0, temperature=1.0, gamma=gamma, seed=7, step_size=0.3)
    s.run(300)
    positions, _ = s.sample(count, interval=50)
    return positions


def test_quench_of_a_distorted_icosahedron_reaches_the_lj13_minimum():
    rng = np.random.default_rng(0)
    x = _icosahedron() + rng.normal(0, 0.05, (13, 3))
    result = quench(x, 5.0)
    assert result.converged and result.max_force < 1e-5
    assert result.energy == pytest.approx(_ccd()[13], abs=1e-5)
    assert result.energy < potential_energy(x, 5.0)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0])
def test_quenched_mc_samples_are_bounded_minima(gamma):
    x = _mc_configurations(gamma)
    result = quench(x, 5.0, gamma=gamma)
    assert result.positions.shape == x.shape and np.all(result.converged)
    assert np.all(result.energy < potential_energy(x, 5.0, gamma=gamma))
    assert np.all((result.positions >= 0) & (result.positions <= 5.0))
    f = forces(result.positions, 5.0, gamma=gamma)
    # Every force component is either tiny or pushes a particle into the wall it rests on (under gravity: the
    # floor holds the bottom layer up with 4 gamma plus what the particles above press).
    q = result.positions
    held = ((q <= 0.0) & (f < 0)) | ((q >= 5.0) & (f > 0))
    assert np.abs(np.where(held, 0.0, f)).max() < 1e-4
    on_floor = q[..., 2] <= 0.0
    if gamma > 0:
        assert on_floor.sum() > 0  # gravity presses some particles onto the floor
    assert np.all(result.evaluations > 1)
    # deterministic
    np.testing.assert_array_equal(quench(x, 5.0, gamma=gamma).positions, result.positions)


def test_periodic_quench_wraps_instead_of_bounding():
    # a pair across the periodic boundary, 1.0 sigma apart through it: relaxes to 2^(1/6) without walls
    x = np.array([[0.1, 2.5, 2.5], [4.6, 2.5, 2.5]])
    result = quench(x, 5.0, boundary="periodic", cutoff=2.5)
    d = np.abs(result.positions[0, 0] - result.positions[1, 0])
    assert min(d, 5.0 - d) == pytest.approx(2 ** (1 / 6), abs=1e-6)
    assert result.energy == pytest.approx(-1.0, abs=1e-9)
    assert np.all((result.positions >= 0) & (result.positions < 5.0))


@pytest.mark.parametrize("n", [7, 13])
def test_basin_hopping_finds_the_cluster_database_minimum(n):
    result = basin_hopping(n, 5.0, seeds=2, steps=60 if n == 7 else 150, seed=1)
    assert result.energy == pytest.approx(_ccd()[n], abs=1e-4)
    assert result.seeds_agreeing >= 1 and len(result.seed_energies) == 2
    assert np.all(result.seed_energies >= _ccd()[n] - 1e-4)  # nothing below the global minimum
    assert result.evaluations > 0
    again = basin_hopping(n, 5.0, seeds=2, steps=60 if n == 7 else 150, seed=1)
    np.testing.assert_array_equal(again.seed_energies, result.seed_energies)


def test_basin_hopping_under_gravity_beats_the_quenched_mc_samples():
    x = _mc_configurations(0.5, count=2, n=13)
    quenched = quench(x, 5.0, gamma=0.5).energy.min()
    best = basin_hopping(13, 5.0, gamma=0.5, seeds=2, steps=60, seed=3)
    assert best.energy <= quenched + 1e-9
    assert np.all((best.positions >= 0) & (best.positions <= 5.0))


@pytest.mark.parametrize("call,match", [
    (lambda: quench(np.zeros((3, 4)), 5.0), "dim 2 or 3"),
    (lambda: quench(np.full((2, 3), 6.0), 5.0), "inside the box"),
    (lambda: quench(np.array([[1.0, 1, 1], [2, 2, 2]]), 5.0, max_iterations=0), "max_iterations"),
    (lambda: quench(np.array([[1.0, 1, 1], [2, 2, 2]]), 5.0, tolerance=-1), "tolerance"),
    (lambda: basin_hopping(1, 5.0), "n_particles"),
    (lambda: basin_hopping(13, 5.0, steps=0), "steps"),
    (lambda: basin_hopping(200, 3.0), "n_particles"),
])
def test_bad_input_is_a_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.statistical
def test_basin_hopping_finds_the_lj30_minimum_the_demo_size():
    """The demo's N = 30 at gamma = 0 in its 5 sigma box: 4 seeds x 1000 hops (about 35 s on 2 cores) reach the
    Cambridge Cluster Database's -128.286571 (measured: 2 of 4 seeds; the others stop at -128.1816)."""
    result = basin_hopping(30, 5.0, seeds=4, steps=1000, seed=1)
    assert result.energy == pytest.approx(_ccd()[30], abs=1e-4)
    assert result.seeds_agreeing >= 1


def test_a_job_runs_with_its_rules_threads_in_blas_and_the_same_results():
    """vaepipe.stages.run caps the BLAS pools at the rule's threads (jobs side by side must not oversubscribe the
    cores); a quench gives the same bits either way."""
    from types import SimpleNamespace

    from threadpoolctl import threadpool_info, threadpool_limits

    from vaepipe.stages import StageResult, run

    seen = {}

    def stage(input, params, wildcards, threads=1):
        seen["blas"] = {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"}
        seen["quench"] = quench(np.random.default_rng(4).uniform(0, 4.0, (8, 3)), 4.0, gamma=0.5)
        return StageResult(outputs={})

    smk = SimpleNamespace(params=SimpleNamespace(items=lambda: []), input=None, wildcards=None, threads=1,
                          output=SimpleNamespace(keys=lambda: []))
    with threadpool_limits(limits=2, user_api="blas"):  # as outside a test session (tests/conftest.py sets 1)
        run(smk, stage)
    assert seen["blas"] == {1}
    # both OpenBLAS libraries, NumPy's and SciPy's own, which L-BFGS-B uses
    assert len([i for i in threadpool_info() if i["user_api"] == "blas"]) == 2
    free = quench(np.random.default_rng(4).uniform(0, 4.0, (8, 3)), 4.0, gamma=0.5)
    np.testing.assert_array_equal(free.positions, seen["quench"].positions)
    assert free.energy == seen["quench"].energy
