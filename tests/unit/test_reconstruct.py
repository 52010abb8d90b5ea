"""Gram-matrix reconstruction, alignment, SMACOF, anchored placement and overlap repair (vaepipe.reconstruct)."""

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vaepipe import reconstruct as R
from vaepipe.energy import potential_energy
from vaepipe.features import box_anchors, distance_matrix


def _configs(num=20, n=30, dim=3, box=5.0, seed=0):
    return np.random.default_rng(seed).uniform(0.0, box, (num, n, dim))


def _random_orthogonal(dim, seed, proper=True):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    if proper and np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


@pytest.mark.parametrize("dim", [2, 3])
def test_exact_distance_matrices_come_back_to_rmsd_below_1e8(dim):
    x = _configs(dim=dim)
    info = R.classical_mds(R.pairwise_distances(x), dim, return_info=True)
    _, rmsd = R.align(info.positions, x)
    assert rmsd.shape == (20,)
    assert np.max(rmsd) < 1e-8
    # An exact distance matrix is Euclidean and of rank dim: no negative spectrum, nothing beyond dim.
    assert np.max(info.negative_fraction) < 1e-10
    assert np.max(info.residual_fraction) < 1e-10


def test_mds_of_the_normalised_features_undoes_the_scaling():
    x = _configs(num=5)
    matrices, order = distance_matrix(x, 5.0)
    sorted_x = np.take_along_axis(x, order[..., None], axis=1)
    positions = R.classical_mds(matrices.astype(np.float64) * 5.0 * math.sqrt(3), 3)
    _, rmsd = R.align(positions, sorted_x)
    assert np.max(rmsd) < 1e-5  # float32 features: about 1e-7 relative


def test_batched_mds_equals_one_at_a_time():
    x = _configs(num=6)
    d = R.pairwise_distances(x)
    batched = R.classical_mds(d, 3)
    for s in range(6):
        single = R.classical_mds(d[s], 3)
        assert single.shape == (30, 3)
        assert R.align(single, batched[s])[1] < 1e-10


def test_non_euclidean_matrices_report_a_negative_spectrum():
    rng = np.random.default_rng(1)
    d = R.pairwise_distances(_configs(num=10))
    noise = np.abs(d + rng.normal(0.0, 1.0, d.shape))
    noise = 0.5 * (noise + np.swapaxes(noise, 1, 2))
    noise[:, np.arange(30), np.arange(30)] = 0.0
    info = R.classical_mds(noise, 3, return_info=True)
    assert np.all(info.negative_fraction > 0.05)
    assert np.all(np.isfinite(info.positions))


def test_mds_rejects_bad_input_with_a_clear_message():
    with pytest.raises(ValueError, match="square"):
        R.classical_mds(np.zeros((3, 5, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        R.classical_mds(-np.ones((5, 5)))
    with pytest.raises(ValueError, match="dim"):
        R.classical_mds(np.zeros((5, 5)), dim=4)
    with pytest.raises(ValueError, match="at least 4 points"):
        R.classical_mds(np.zeros((3, 3)), dim=3)
    with pytest.raises(ValueError, match="finite"):
        R.classical_mds(np.full((2, 5, 5), np.nan))


def test_align_undoes_rotation_translation_and_reflection():
    x = _configs(num=1)[0]
    proper = _random_orthogonal(3, 2)
    moved = x @ proper.T + np.array([3.0, -1.0, 2.0])
    aligned, rmsd = R.align(moved, x, allow_reflection=False)
    assert rmsd < 1e-10 and np.allclose(aligned, x)
    mirrored = moved * np.array([1.0, 1.0, -1.0])
    assert R.align(mirrored, x, allow_reflection=True)[1] < 1e-10
    # A mirror image is no rotation: without reflections it cannot be superposed.
    assert R.align(mirrored, x, allow_reflection=False)[1] > 0.5


def test_kabsch_rotation_agrees_with_scipy():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(12, 3))
    y = x @ Rotation.random(random_state=4).as_matrix().T + rng.normal(0, 0.05, (12, 3))
    rotation, _ = R.kabsch(x, y, allow_reflection=False)
    expected, _ = Rotation.align_vectors(y - y.mean(0), x - x.mean(0))
    # Our row-vector convention: aligned = x @ rotation; scipy's: expected.apply(x) = x @ matrix.T.
    assert np.allclose(rotation, expected.as_matrix().T, atol=1e-10)
    assert np.isclose(np.linalg.det(rotation), 1.0)


def test_align_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape of reference"):
        R.align(np.zeros((4, 3)), np.zeros((5, 3)))


def test_permutation_aware_alignment_recovers_a_shuffled_order():
    x = _configs(num=3)
    rng = np.random.default_rng(5)
    perms = np.array([rng.permutation(30) for _ in range(3)])
    moved = np.stack([x[s][perms[s]] @ _random_orthogonal(3, s, proper=False).T + 1.0 for s in range(3)])
    aligned, rmsd, perm = R.align_permutation(moved, x)
    assert np.max(rmsd) < 1e-10
    for s in range(3):
        assert np.array_equal(perms[s][perm[s]], np.arange(30))
    # Never worse than trusting the given order.
    noisy = x + rng.normal(0, 0.3, x.shape)
    assert np.all(R.align_permutation(noisy, x)[1] <= R.align(noisy, x)[1] + 1e-12)


def test_smacof_lowers_the_stress_of_noisy_matrices_and_keeps_exact_ones():
    x = _configs(num=8)
    d = R.pairwise_distances(x)
    rng = np.random.default_rng(6)
    noisy = np.abs(d + rng.normal(0, 0.3, d.shape))
    noisy = 0.5 * (noisy + np.swapaxes(noisy, 1, 2))
    noisy[:, np.arange(30), np.arange(30)] = 0.0
    start = R.classical_mds(noisy, 3)
    _, stress_start = R.smacof(noisy, start, max_iter=0)
    refined, stress = R.smacof(noisy, start, max_iter=200)
    assert np.all(stress <= stress_start + 1e-12)
    assert np.mean(stress) < 0.95 * np.mean(stress_start)
    exact, exact_stress = R.smacof(d, R.classical_mds(d, 3))
    assert np.max(exact_stress) < 1e-8
    assert np.max(R.align(exact, x)[1]) < 1e-6


@pytest.mark.parametrize("dim", [2, 3])
def test_anchored_reconstruction_places_configurations_absolutely(dim):
    box = 5.0
    x = _configs(num=10, dim=dim)
    anchors = box_anchors(box, dim, "corners")
    full = np.concatenate([x, np.broadcast_to(anchors, (10,) + anchors.shape)], axis=1)
    positions, anchor_rmsd = R.anchored_positions(R.pairwise_distances(full), anchors, dim)
    # No alignment onto the original: the anchors alone fix rotation, mirror image and translation.
    assert np.max(np.abs(positions - x)) < 1e-8
    assert np.max(anchor_rmsd) < 1e-8


def test_anchored_reconstruction_needs_enough_anchors():
    with pytest.raises(ValueError, match="A >= 4"):
        R.anchored_positions(np.zeros((10, 10)), np.zeros((2, 3)), 3)


def test_energy_of_a_reconstruction_equals_the_analytic_lennard_jones_sum():
    # A tetrahedron of side 1.2 sigma (plus gravity) through MDS + anchors and the sampler's own energy.
    side = 1.2
    tetra = np.array([[0, 0, 0], [side, 0, 0], [side / 2, side * math.sqrt(3) / 2, 0],
                      [side / 2, side / (2 * math.sqrt(3)), side * math.sqrt(2 / 3)]]) + 1.5
    anchors = box_anchors(5.0, 3, "corners")
    full = np.concatenate([tetra, anchors])
    positions, _ = R.anchored_positions(R.pairwise_distances(full), anchors, 3)
    gamma = 0.5
    expected = 6 * 4 * (side ** -12 - side ** -6) + 4 * gamma * tetra[:, 2].sum()
    assert potential_energy(positions, 5.0, gamma=gamma) == pytest.approx(expected, rel=1e-10)


def test_overlap_repair_moves_only_overlapping_particles_and_removes_the_overlaps():
    x = _configs(num=5, n=20)
    target = 0.9
    repaired, displacement, steps = R.repair_overlaps(x, 5.0, target, max_steps=500)
    assert np.min(R.min_pair_distance(repaired)) >= target - 1e-6
    assert np.all((repaired >= 0) & (repaired <= 5.0))
    assert 0 < steps < 500
    # One overlapping pair among well separated particles: only those two move, symmetrically, to the target.
    lone = np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0], [4.0, 4.0, 4.0], [1.0, 4.0, 1.0]])
    fixed, moved, _ = R.repair_overlaps(lone, 5.0, target)
    assert np.array_equal(fixed[2:], lone[2:])
    assert np.linalg.norm(fixed[0] - fixed[1]) == pytest.approx(target, abs=1e-6)
    assert fixed[0] + fixed[1] == pytest.approx(lone[0] + lone[1])
    assert moved == pytest.approx(2 * (target - 0.5) / 2 / 4)
    assert displacement.shape == (5,) and np.all(displacement > 0)
    # Nothing to repair: nothing moves.
    same, zero, none = R.repair_overlaps(np.array([[1.0, 1, 1], [3, 3, 3]]), 5.0, 0.9)
    assert np.array_equal(same, [[1.0, 1, 1], [3, 3, 3]]) and zero == 0.0 and none == 0


def test_min_pair_distance():
    x = np.array([[[0.0, 0, 0], [0.5, 0, 0], [3, 3, 3]]])
    assert R.min_pair_distance(x)[0] == pytest.approx(0.5)
    assert R.min_pair_distance(x[0]) == pytest.approx(0.5)
