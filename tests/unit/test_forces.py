"""vaepipe.energy.forces, the C++ core's gradient of the sampler's energy: against the analytic pair force, against
central finite differences of vaepipe.energy.potential_energy for every boundary and dimension, and its
conservation laws; bad input gets a ValueError."""

import numpy as np
import pytest

from vaepipe.energy import forces, potential_energy


def _lj_force(r):
    """-dU/dr of U = 4 (r^-12 - r^-6): positive is repulsive."""
    return 24.0 * (2.0 * r ** -13 - r ** -7)


@pytest.mark.parametrize("r", [0.95, 2 ** (1 / 6), 1.5, 2.4])
def test_pair_force_is_the_analytic_one(r):
    centre = np.array([2.5, 2.5, 2.5])
    direction = np.array([1.0, 2.0, -0.5]) / np.linalg.norm([1.0, 2.0, -0.5])
    x = np.stack([centre - 0.5 * r * direction, centre + 0.5 * r * direction])
    f = forces(x, 5.0)
    # particle 1 is pushed along +direction when the pair repels
    np.testing.assert_allclose(f[1], _lj_force(r) * direction, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(f[0], -f[1], rtol=0, atol=0)
    if r == 2 ** (1 / 6):
        assert np.abs(f).max() < 1e-12  # the minimum of the pair potential


def _finite_differences(x, h=1e-6, **kwargs):
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += h
        minus[idx] -= h
        grad[idx] = (potential_energy(plus, **kwargs) - potential_energy(minus, **kwargs)) / (2 * h)
    return -grad


def _liquid(n, box, dim, seed, margin=0.5):
    """Random positions with every pair at least 0.9 sigma apart, kept `margin` away from the walls (0.5: no
    pair closer than 1 sigma through a periodic boundary either)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        p = rng.uniform(margin, box - margin, dim)
        if all(np.linalg.norm(p - q) >= 0.9 for q in out):
            out.append(p)
    return np.array(out)


CASES = [
    # (boundary, dim, gamma, cutoff)
    ("reflect", 3, 0.0, None),
    ("reflect", 3, 0.7, None),
    ("reflect", 2, 0.3, None),
    ("reflect", 3, 0.4, 2.0),
    ("periodic", 3, 0.0, 2.5),
    ("periodic", 2, 0.0, 2.5),
    ("slab", 3, 0.5, 2.5),
    ("slab", 2, 1.0, 2.5),
]


@pytest.mark.parametrize("boundary,dim,gamma,cutoff", CASES)
def test_forces_are_minus_the_gradient_of_the_energy(boundary, dim, gamma, cutoff):
    box = 5.0
    kwargs = dict(box_length=box, gamma=gamma, boundary=boundary, cutoff=cutoff)
    for seed in range(100):  # the truncated potential jumps at rc: every pair clear of it by 1e-3 sigma
        x = _liquid(20 if dim == 3 else 12, box, dim, seed=seed)
        if cutoff is None:
            break
        d = np.abs(x[:, None] - x[None])
        if boundary in ("periodic", "slab"):
            axes = slice(None) if boundary == "periodic" else slice(0, dim - 1)
            d[..., axes] = np.minimum(d[..., axes], box - d[..., axes])
        r = np.sqrt((d ** 2).sum(-1))[np.triu_indices(len(x), 1)]
        if np.abs(r - cutoff).min() > 1e-3:
            break
    else:
        pytest.fail("no test configuration without a pair at the cutoff")
    f = forces(x, **kwargs)
    assert f.shape == x.shape
    np.testing.assert_allclose(f, _finite_differences(x, **kwargs), rtol=1e-5, atol=1e-5)


def test_periodic_forces_act_through_the_minimum_image():
    # two particles near opposite faces are 1.1 sigma apart through the boundary, not 3.9
    x = np.array([[0.2, 2.5, 2.5], [4.1, 2.5, 2.5]])
    f = forces(x, 5.0, boundary="periodic", cutoff=2.5)
    expected = _lj_force(1.1)  # repulsive: particle 0 is pushed towards +x, away from its image at -0.9
    np.testing.assert_allclose(f[0], [expected, 0.0, 0.0], rtol=1e-12)
    np.testing.assert_allclose(f[1], [-expected, 0.0, 0.0], rtol=1e-12)
    # slab: x wraps, the height does not
    z = np.array([[2.5, 2.5, 0.2], [2.5, 2.5, 4.1]])
    assert np.abs(forces(z, 5.0, boundary="slab", cutoff=2.5)).max() == 0.0


def test_pair_forces_cancel_and_gravity_pulls_down():
    x = _liquid(30, 5.0, 3, seed=3)
    f = forces(x, 5.0, gamma=0.8)
    total = f.sum(axis=0)
    np.testing.assert_allclose(total, [0.0, 0.0, -4.0 * 0.8 * 30], atol=1e-9)
    # gravity alone: every particle feels -4 gamma along the height, in 2D too
    lone = forces(np.array([[1.0, 3.0]]), 5.0, gamma=0.25)
    np.testing.assert_array_equal(lone, [[0.0, -1.0]])


def test_batches_give_the_forces_of_each_configuration():
    batch = np.stack([_liquid(10, 5.0, 3, seed=s) for s in range(4)])
    f = forces(batch, 5.0, gamma=0.2)
    assert f.shape == (4, 10, 3)
    for s in range(4):
        np.testing.assert_array_equal(f[s], forces(batch[s], 5.0, gamma=0.2))
    assert forces(np.empty((0, 10, 3)), 5.0).shape == (0, 10, 3)


@pytest.mark.parametrize("positions,match", [
    (np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]), "same place"),
    (np.array([[1.0, 1.0, 5.5], [2.0, 2.0, 2.0]]), "inside the box"),
    (np.array([[1.0, np.nan, 1.0], [2.0, 2.0, 2.0]]), "finite"),
    (np.zeros((2, 4)), "dim 2 or 3"),
])
def test_bad_positions_are_a_value_error(positions, match):
    with pytest.raises(ValueError, match=match):
        forces(positions, 5.0)


def test_gravity_on_a_periodic_box_is_refused_like_the_energy():
    with pytest.raises(ValueError):
        forces(np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]), 5.0, gamma=0.5, boundary="periodic", cutoff=2.0)
