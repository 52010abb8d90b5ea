"""vaepipe.structure: matched RMSD and its pruned nearest-neighbour search against brute force, the ideal-gas g(r)
against the known line-picking constants, validity, and the tilted-layers anomaly."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import wasserstein_distance

from vaepipe import reconstruct
from vaepipe import structure as S

L = 5.0


def _uniform(rng, *shape):
    return rng.uniform(0.0, L, size=shape)


def _brute_nearest(queries, references, exclude_self=False):
    costs = np.array([[S.matched_rmsd(a, b) for b in references] for a in queries])
    if exclude_self:
        np.fill_diagonal(costs, np.inf)
    return costs.min(axis=1), costs.argmin(axis=1)


@pytest.mark.parametrize("dim", [2, 3])
def test_matched_rmsd_of_a_permutation_is_zero_and_of_a_shift_is_the_shift(dim):
    rng = np.random.default_rng(1)
    a = _uniform(rng, 4, 12, dim)
    order = np.stack([rng.permutation(12) for _ in range(4)])
    permuted = np.take_along_axis(a, order[..., None], axis=1)
    rmsd, perm = S.matched_rmsd(a, permuted, return_permutation=True)
    assert np.all(np.abs(rmsd) <= 1e-12)
    assert np.array_equal(np.take_along_axis(permuted, perm[..., None], axis=1), a)
    delta = -0.37
    shifted = a.copy()
    shifted[..., 0] += delta
    assert S.matched_rmsd(a, shifted) == pytest.approx(np.full(4, abs(delta)), abs=1e-12)
    assert isinstance(S.matched_rmsd(a[0], shifted[0]), float)


def test_matched_rmsd_is_at_most_the_rmsd_in_the_given_order():
    rng = np.random.default_rng(2)
    a, b = _uniform(rng, 50, 15, 3), _uniform(rng, 50, 15, 3)
    in_order = np.sqrt(np.mean(np.sum((a - b) ** 2, axis=-1), axis=-1))
    matched = S.matched_rmsd(a, b)
    assert np.all(matched <= in_order + 1e-12) and np.all(matched < in_order)


@pytest.mark.parametrize("dim", [2, 3])
def test_nearest_rmsd_equals_brute_force(dim):
    rng = np.random.default_rng(3 + dim)
    queries, references = _uniform(rng, 20, 10, dim), _uniform(rng, 50, 10, dim)
    # ties go to the lowest index, as argmin's: a reference repeated later, and a query equal to a reference
    references[31] = references[7]
    queries[5] = references[31][rng.permutation(10)]
    rmsd, index = S.nearest_rmsd(queries, references)
    brute_rmsd, brute_index = _brute_nearest(queries, references)
    assert np.array_equal(index, brute_index) and np.array_equal(rmsd, brute_rmsd)
    assert index[5] == 7 and rmsd[5] == 0.0
    rmsd, index = S.nearest_rmsd(references, references, exclude_self=True)
    brute_rmsd, brute_index = _brute_nearest(references, references, exclude_self=True)
    assert np.array_equal(index, brute_index) and np.array_equal(rmsd, brute_rmsd)
    assert index[7] == 31 and index[31] == 7


@pytest.mark.parametrize("dim, n", [(2, 6), (3, 10), (3, 30)])
def test_the_lower_bounds_never_exceed_the_exact_matched_cost(dim, n):
    rng = np.random.default_rng(4)
    a, b = _uniform(rng, 40, n, dim), _uniform(rng, 60, n, dim)
    b[:10] = a[:10] + rng.normal(0.0, 0.05, size=(10, n, dim))  # near pairs, where the bounds are tight
    exact = n * np.array([[S.matched_rmsd(x, y) for y in b] for x in a]) ** 2
    axis = S.axis_lower_bound(a, b)
    assert np.all(axis <= exact * (1 + 1e-12) + 1e-12)
    pruning = S.matched_lower_bound(a, b)  # what nearest_rmsd prunes with: the reduction bound too
    assert np.all(pruning <= exact) and np.all(pruning >= axis - 1e-9)
    assert np.median(pruning / exact) > np.median(axis / exact) + 0.1
    # a positional difference the sorted axes cannot see: swap two particles' heights
    c = a[:1].copy()
    c[0, 0, -1], c[0, 1, -1] = a[0, 1, -1], a[0, 0, -1]
    assert S.axis_lower_bound(a[:1], c)[0, 0] == 0.0 and S.matched_lower_bound(a[:1], c)[0, 0] > 0


def test_random_pair_rmsd_is_positive_and_seeded():
    x = _uniform(np.random.default_rng(5), 30, 8, 3)
    first = S.random_pair_rmsd(x, 100, np.random.default_rng(7))
    assert first.shape == (100,) and np.all(first > 0)
    assert np.array_equal(first, S.random_pair_rmsd(x, 100, np.random.default_rng(7)))
    with pytest.raises(ValueError, match="at least 2 configurations"):
        S.random_pair_rmsd(x[:1], 5, np.random.default_rng(7))


def test_w1_against_scipy_for_a_known_shift():
    a = np.random.default_rng(6).normal(size=1000)
    assert S.distribution_w1(a, a + 0.3) == pytest.approx(0.3, abs=1e-12)
    assert S.distribution_w1(a, a + 0.3) == wasserstein_distance(a, a + 0.3)
    assert S.distribution_w1(np.append(a, [np.nan, np.inf]), a + 0.3) == pytest.approx(0.3, abs=1e-12)
    with pytest.raises(ValueError, match="none finite"):
        S.distribution_w1([np.nan, np.inf], a)


def test_pair_distance_and_density_profile_w1():
    x = _uniform(np.random.default_rng(8), 20, 6, 3) * 0.8
    raised = x + np.array([0.1, 0.0, 0.2])  # a translation: the same pair distances, heights up by 0.2
    assert S.pair_distance_w1(x, raised) == pytest.approx(0.0, abs=1e-12)
    assert S.density_profile_w1(x, raised) == pytest.approx(0.2, abs=1e-12)
    assert S.pair_distances(x).shape == (20 * 15,) and S.heights(x).shape == (120,)


@pytest.mark.parametrize("dim, mean", [
    (2, (2 + np.sqrt(2) + 5 * np.log(1 + np.sqrt(2))) / 15),  # square line picking, MathWorld
    (3, (4 + 17 * np.sqrt(2) - 6 * np.sqrt(3) + 21 * np.log(1 + np.sqrt(2)) + 42 * np.log(2 + np.sqrt(3))
         - 7 * np.pi) / 105),  # Robbins' constant (cube line picking), 0.66170...
])
def test_ideal_distance_density_has_the_known_moments(dim, mean):
    kinks = [0.0, *np.sqrt(np.arange(1, dim + 1))]

    def moment(k):
        return sum(quad(lambda r: r ** k * S.ideal_distance_density(r, 1.0, dim), lo, hi, epsabs=1e-14)[0]
                   for lo, hi in zip(kinks[:-1], kinks[1:]))

    assert moment(0) == pytest.approx(1.0, abs=1e-12)
    assert moment(1) == pytest.approx(mean, abs=1e-12)
    assert moment(2) == pytest.approx(dim / 6, abs=1e-12)  # E|X - Y|^2 = dim * 2 Var(U(0, 1))
    assert S.ideal_distance_density(3.0, 2.0, dim) == pytest.approx(S.ideal_distance_density(1.5, 1.0, dim) / 2)


@pytest.mark.parametrize("dim", [2, 3])
def test_uniform_points_have_g_of_r_one(dim):
    x = _uniform(np.random.default_rng(9), 4000, 30, dim)
    r, g = S.radial_distribution(x, L, bins=12, r_max=3.0)
    assert r == pytest.approx(np.arange(12) * 0.25 + 0.125)
    window = r > 0.5
    assert np.all(np.abs(g[window] - 1) < 0.04), g


def test_valid_fraction_on_hand_made_cases():
    base = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [4.0, 4.0, 4.0]])
    close, apart, outside = base.copy(), base.copy(), base.copy()
    close[1, 0] += 0.79
    apart[1, 0] += 0.81
    outside[1, 0] += 0.81
    outside[2, 2] = L + 1e-6
    batch = np.stack([close, apart, outside])
    assert S.is_valid(batch, L).tolist() == [False, True, False]
    assert S.valid_fraction(batch, L) == pytest.approx(1 / 3)
    assert S.is_valid(apart, L) is True
    on_wall = apart.copy()
    on_wall[2, 2] = L + 1e-10  # within the tolerance
    assert S.is_valid(on_wall, L)
    assert not S.is_valid(np.where(apart == 4.0, np.nan, apart), L)
    assert S.min_pair_distance(batch) == pytest.approx([0.79, 0.81, 0.81])
    assert S.min_pair_distance is reconstruct.min_pair_distance


@pytest.mark.parametrize("dim, axis", [(3, 0), (3, 1), (2, 0)])
def test_tilt_keeps_pair_distances_and_sum_z_and_the_max_angle_keeps_the_box(dim, axis):
    rng = np.random.default_rng(10)
    x = rng.uniform(0.5, 4.5, size=(25, 20, dim))
    x[..., -1] = rng.uniform(0.2, 1.8, size=(25, 20))  # a layer on the floor, as under gravity
    angle = rng.uniform(-1.0, 1.0, size=25)
    turned = S.tilt(x, L, angle, axis=axis)
    assert np.abs(reconstruct.pairwise_distances(turned) - reconstruct.pairwise_distances(x)).max() < 1e-12
    assert np.abs(turned[..., -1].sum(axis=1) - x[..., -1].sum(axis=1)).max() < 1e-12
    kept = [k for k in range(dim - 1) if k != (1 - axis if dim == 3 else 0)]
    assert np.array_equal(turned[..., kept], x[..., kept])  # the rotation axis' coordinate does not move
    for limit in (np.pi / 2, -np.pi / 2):
        theta = S.max_tilt_angle(x, L, limit, axis=axis)
        assert np.all(np.sign(theta) == np.sign(limit)) and np.all(np.abs(theta) <= np.pi / 2)
        # every angle on the way stays inside, and a little more leaves the box
        for fraction in np.linspace(0.0, 1.0, 41):
            assert np.all(S.is_valid(S.tilt(x, L, fraction * theta, axis=axis), L, min_distance=1e-6))
        stopped = np.abs(theta) < np.pi / 2
        beyond = S.tilt(x[stopped], L, theta[stopped] + np.sign(limit) * 1e-6, axis=axis)
        assert stopped.any() and not np.any(S.is_valid(beyond, L, min_distance=1e-6))
    assert S.max_tilt_angle(x[0], L, 1e-3, axis=axis) == 1e-3


def test_bad_input_names_the_argument():
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=r"^a=.* is invalid: expected shape \(S, N, dim\)"):
        S.matched_rmsd(x, x)
    with pytest.raises(ValueError, match="the shape of a"):
        S.matched_rmsd(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        S.matched_rmsd(np.full((3, 3), np.nan), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="exclude_self"):
        S.nearest_rmsd(np.zeros((2, 3, 3)), np.zeros((3, 3, 3)), exclude_self=True)
    with pytest.raises(ValueError, match="r_max"):
        S.radial_distribution(np.zeros((2, 3, 3)) + 1, L, 10, r_max=9.0)
    with pytest.raises(ValueError, match="axis"):
        S.tilt(np.ones((3, 2)), L, 0.1, axis=1)
