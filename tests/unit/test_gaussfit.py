"""Particle positions from voxel grids by fitting Gaussian deposits (vaepipe.gaussfit).

The grids come from vaepipe.features.voxel_grid, the forward model the fit inverts; recovered positions are
compared with the truth after the best one-to-one matching (Hungarian assignment on squared distances)."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from vaepipe import gaussfit
from vaepipe.features import voxel_grid
from vaepipe.gaussfit import fit_gaussian_deposits

BOX, VOXEL, WIDTH = 5.0, 0.3125, 0.5  # sigma: 16 cells per side, the config's voxel representation


def _configs(num, n_particles=30, dim=3, min_distance=1.0, seed=0):
    """(num, N, dim) random configurations in the box, no two particles closer than min_distance (sigma)."""
    rng = np.random.default_rng(seed)
    out = np.empty((num, n_particles, dim))
    for s in range(num):
        placed = 0
        while placed < n_particles:
            trial = rng.uniform(0.0, BOX, dim)
            if np.all(np.sum((out[s, :placed] - trial) ** 2, axis=1) >= min_distance**2):
                out[s, placed] = trial
                placed += 1
    return out


def _matched_rmsd(found, truth, periodic=()):
    """(S,) RMSD after the best assignment of found to true particles, minimum image along periodic axes."""
    out = []
    for a, b in zip(found, truth):
        diff = a[:, None, :] - b[None, :, :]
        for axis in periodic:
            diff[..., axis] -= BOX * np.round(diff[..., axis] / BOX)
        sq = np.sum(diff**2, axis=-1)
        rows, cols = linear_sum_assignment(sq)
        out.append(np.sqrt(sq[rows, cols].mean()))
    return np.array(out)


def _relative_residual(grids, positions, normalize, boundary="reflect"):
    again = voxel_grid(positions, BOX, VOXEL, method="gaussian", width=WIDTH, normalize=normalize, boundary=boundary)
    axes = tuple(range(1, grids.ndim))
    grids = grids.astype(np.float64)
    return np.sum((again - grids) ** 2, axis=axes) / np.sum(grids**2, axis=axes)


@pytest.mark.parametrize("normalize, boundary, dim, n_particles, periodic", [
    ("max", "reflect", 3, 30, ()),
    ("none", "reflect", 3, 30, ()),
    ("max", "slab", 3, 30, (0, 1)),
    ("max", "reflect", 2, 12, ()),
])
def test_exact_grids_give_back_the_configurations(normalize, boundary, dim, n_particles, periodic):
    truth = _configs(6, n_particles, dim, seed=dim)
    grids = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=WIDTH, normalize=normalize, boundary=boundary)
    info = fit_gaussian_deposits(grids, n_particles, BOX, WIDTH, normalize=normalize, boundary=boundary,
                                 return_info=True)
    assert info.positions.shape == truth.shape and info.positions.dtype == np.float64
    assert info.positions.min() >= 0.0 and info.positions.max() <= BOX
    assert np.median(_matched_rmsd(info.positions, truth, periodic)) < 0.02
    rerendered = _relative_residual(grids, info.positions, normalize, boundary)
    assert np.median(rerendered) < 1e-4
    # the reported residual is the re-rendered one (up to float32 rounding of the re-rendered grid)
    np.testing.assert_allclose(info.residual, rerendered, atol=1e-9)
    if normalize == "none":
        assert np.all(info.amplitude == 1.0)
    else:  # a * (unnormalized grid) = grid / its max
        raw = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=WIDTH, normalize="none", boundary=boundary)
        np.testing.assert_allclose(info.amplitude, 1.0 / raw.reshape(6, -1).max(axis=1), rtol=1e-5)


def test_particles_on_walls_and_a_close_pair_are_recovered():
    truth = np.array([[2.0, 2.5, 2.5], [2.9, 2.5, 2.5],  # 0.9 sigma apart: one unresolved blob
                      [0.0, 1.0, 4.0], [4.98, 4.1, 0.03], [1.2, 0.02, 1.0], [3.7, 3.8, 5.0], [0.05, 4.95, 0.05],
                      [1.0, 3.8, 2.0]])
    grid = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=WIDTH)
    found = fit_gaussian_deposits(grid[None], len(truth), BOX, WIDTH)[0]
    sq = np.sum((found[:, None] - truth[None]) ** 2, axis=-1)
    rows, cols = linear_sum_assignment(sq)
    assert np.max(np.sqrt(sq[rows, cols])) < 0.02


def test_a_close_pair_in_a_pixel_grid_is_split():
    truth = np.array([[2.0, 2.3], [2.0 + 0.9 * 0.6, 2.3 + 0.9 * 0.8]])
    grid = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=WIDTH)
    found = fit_gaussian_deposits(grid, 2, BOX, WIDTH)  # one (n, n) grid -> (N, dim)
    assert found.shape == (2, 2)
    assert _matched_rmsd(found[None], truth[None])[0] < 0.02


def test_noisy_grids_still_give_the_configurations():
    truth = _configs(8, seed=11)
    grids = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=WIDTH, normalize="max")
    noisy = grids + np.random.default_rng(12).normal(0.0, 0.02, grids.shape)
    noisy /= noisy.max(axis=(1, 2, 3), keepdims=True)
    rmsd = _matched_rmsd(fit_gaussian_deposits(noisy, 30, BOX, WIDTH), truth)
    assert np.median(rmsd) < 0.1


def test_a_blurred_grid_like_a_decoded_one_gives_a_sensible_answer():
    truth = _configs(8, seed=21)
    blurred = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=0.6, normalize="max")
    rmsd = _matched_rmsd(fit_gaussian_deposits(blurred, 30, BOX, WIDTH), truth)
    assert np.median(rmsd) < 0.2


def test_the_analytic_gradient_matches_finite_differences_at_walls_and_across_periodic_faces():
    rng = np.random.default_rng(3)
    x = np.array([[[0.0, 0.1, 2.5], [4.9, 2.0, 4.97], [2.4, 4.99, 0.3]]])  # on and near the faces
    r = rng.normal(size=(1, 16, 256))
    for periodic in [(False, False, False), (True, True, False), (True, True, True)]:
        model = gaussfit._Model(16, 3, BOX, WIDTH, periodic)
        ws, dws = model.weights(x)
        grad = model.gradient(ws, dws, r)
        numeric = np.empty_like(grad)
        for p, a in np.ndindex(3, 3):
            plus, minus = x.copy(), x.copy()
            plus[0, p, a] += 1e-6
            minus[0, p, a] -= 1e-6
            inner = [np.sum(model.render(model.weights(z, slopes=False)[0]) * r) for z in (plus, minus)]
            numeric[0, p, a] = (inner[0] - inner[1]) / 2e-6
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
        # and the model itself is the featurizer's (normalize="none" grids, in the (S, n, n^2) layout)
        boundary = {(False,) * 3: "reflect", (True, True, False): "slab", (True,) * 3: "periodic"}[periodic]
        grid = voxel_grid(np.clip(x, 0, BOX), BOX, VOXEL, method="gaussian", width=WIDTH, normalize="none",
                          boundary=boundary)
        np.testing.assert_allclose(model.render(ws).reshape(grid.shape), grid, rtol=1e-6, atol=1e-7)


def test_init_and_max_iter():
    truth = _configs(3, seed=5)
    grids = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=WIDTH)
    # started at the truth, nothing is left to do
    info = fit_gaussian_deposits(grids, 30, BOX, WIDTH, init=truth, return_info=True)
    assert np.max(np.abs(info.positions - truth)) < 1e-5 and np.all(info.iterations <= 3)
    # no iterations: the greedy start, N particles inside the box, and not the fitted answer
    start = fit_gaussian_deposits(grids, 30, BOX, WIDTH, max_iter=0, return_info=True)
    assert np.all(start.iterations == 0) and start.positions.shape == (3, 30, 3)
    assert np.all(start.residual > 1e-6)


def test_a_blank_grid_is_left_at_the_start_with_an_infinite_residual():
    for normalize in ("max", "none"):
        info = fit_gaussian_deposits(np.zeros((2, 16, 16, 16)), 3, BOX, WIDTH, normalize=normalize, return_info=True)
        assert np.all(np.isinf(info.residual)) and np.all(info.iterations == 0)
        assert np.all((info.positions >= 0.0) & (info.positions <= BOX))


def test_the_same_input_gives_bitwise_the_same_output():
    truth = _configs(4, seed=7)
    grids = voxel_grid(truth, BOX, VOXEL, method="gaussian", width=0.6)
    first = fit_gaussian_deposits(grids, 30, BOX, WIDTH, return_info=True)
    second = fit_gaussian_deposits(grids.copy(), 30, BOX, WIDTH, return_info=True)
    for name in ("positions", "residual", "amplitude", "iterations"):
        assert np.array_equal(getattr(first, name), getattr(second, name)), name


GOOD = dict(grids=np.ones((2, 16, 16, 16)), n_particles=3, box_length=BOX, width=WIDTH)


@pytest.mark.parametrize("change, name", [
    (dict(grids=np.ones((2, 16, 16, 8))), "grids"),  # not cubic
    (dict(grids=np.ones((2, 3, 16, 16, 16))), "grids"),  # too many axes
    (dict(grids=np.ones(16)), "grids"),
    (dict(grids=np.ones((16, 16, 16))), "grids"),  # one voxel grid or 16 pixel grids: says to pass dim
    (dict(grids=np.full((2, 16, 16, 16), np.nan)), "grids"),
    (dict(grids="grid"), "grids"),
    (dict(n_particles=0), "n_particles"),
    (dict(n_particles=2.5), "n_particles"),
    (dict(width=0.0), "width"),
    (dict(width=-1.0), "width"),
    (dict(width=2.0, boundary="periodic"), "width"),  # wider than L / 4 along a periodic axis
    (dict(box_length=0.0), "box_length"),
    (dict(normalize="sum"), "normalize"),
    (dict(boundary="open"), "boundary"),
    (dict(max_iter=-1), "max_iter"),
    (dict(tol=float("nan")), "tol"),
    (dict(init=np.zeros((2, 4, 3))), "init"),
    (dict(init=np.full((2, 3, 3), 6.0)), "init"),
    (dict(dim=4), "dim"),
])
def test_bad_input_names_the_argument(change, name):
    with pytest.raises(ValueError, match=f"^{name}="):
        fit_gaussian_deposits(**{**GOOD, **change})


def test_a_cubic_three_axis_array_is_read_by_dim():
    truth = np.array([[1.0, 2.0], [3.5, 3.0]])
    stack = np.repeat(voxel_grid(truth, BOX, VOXEL, method="gaussian", width=WIDTH)[None], 16, axis=0)
    assert fit_gaussian_deposits(stack, 2, BOX, WIDTH, dim=2).shape == (16, 2, 2)
    assert fit_gaussian_deposits(stack, 2, BOX, WIDTH, dim=3, max_iter=0).shape == (2, 3)
