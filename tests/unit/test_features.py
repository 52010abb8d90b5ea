"""Featurization (vaepipe.features) and the features file layout (vaepipe.io), against references we did not
write: numpy's histogramdd, scipy's quad, cdist and pdist, and plain Python sorting."""

import copy
import itertools
import json
import math
import re
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.spatial.distance import cdist, pdist, squareform

from vaepipe import config as vconfig
from vaepipe import features as F
from vaepipe import representations as R
from vaepipe import io

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "vaepipe" / "schemas" / "config.schema.yaml"
L = 5.0


def _positions(num=7, n=12, dim=3, box_length=L, seed=0):
    return np.random.default_rng(seed).uniform(0.0, box_length, size=(num, n, dim))


def _samples(num=6, n=9, dim=3, boundary="reflect", seed=1):
    positions = _positions(num, n, dim, seed=seed)
    positions[0, 0] = 0.0  # a particle in the origin corner and one on the far faces
    positions[0, 1] = L
    attrs = {"gamma": 0.5, "temperature": 1.0, "n_particles": n, "box_length": L, "dim": dim,
             "boundary": boundary, "cutoff": None if boundary == "reflect" else 2.5, "seed": 2024,
             "step_size": 0.3, "acceptance_rate": 0.4, "equilibration_sweeps": 100, "decorrelation_sweeps": 10}
    energy = np.random.default_rng(seed).normal(-20.0, 3.0, size=num)
    chain = np.arange(num) % 2
    return io.Samples(positions=positions, energy=energy, chain=chain, attrs=attrs)


# --------------------------------------------------------------------------- num_cells


@pytest.mark.parametrize("box_length, voxel_size, n", [(5.0, 0.3125, 16), (5.0, 0.1, 50), (5.0, 5.0, 1),
                                                       (4.0, 0.25, 16), (3.0, 0.1, 30)])
def test_num_cells_of_tiling_voxel_sizes(box_length, voxel_size, n):
    assert F.num_cells(box_length, voxel_size) == n


def test_num_cells_names_the_nearest_valid_voxel_sizes():
    with pytest.raises(ValueError, match=r"16\.67 cells.*0\.3125 \(16 cells\) or 0\.294117647 \(17 cells\)"):
        F.num_cells(5.0, 0.3)
    # the suggestions pass the check as printed
    for box_length, voxel_size in [(5.0, 0.3), (4.0, 0.3125), (7.3, 0.11), (1.0, 0.0301)]:
        with pytest.raises(ValueError) as info:
            F.num_cells(box_length, voxel_size)
        suggested = re.findall(r"([0-9.e-]+) \((\d+) cells?\)", str(info.value))
        assert len(suggested) == 2
        for size, cells in suggested:
            assert F.num_cells(box_length, float(size)) == int(cells)
    with pytest.raises(ValueError, match=r"use voxel_size 5 \(1 cell\)"):
        F.num_cells(5.0, 7.0)
    for bad in (0.0, -0.1, math.nan, "0.5"):
        with pytest.raises(ValueError, match="voxel_size"):
            F.num_cells(5.0, bad)


# --------------------------------------------------------------------------- count grids


@pytest.mark.parametrize("dim", [3, 2])
def test_count_grid_equals_histogramdd(dim):
    positions = _positions(num=5, n=40, dim=dim)
    positions[0, :3] = L  # coordinates exactly at L belong to the last cell
    positions[1, :3] = 0.0
    positions[2, :2] = np.arange(1, 3)[:, None] * 0.3125  # on inner cell edges
    grids = F.voxel_grid(positions, L, 0.3125, normalize="none")
    assert grids.shape == (5,) + (16,) * dim and grids.dtype == np.float32
    edges = [np.linspace(0.0, L, 17)] * dim
    for s in range(5):
        ref, _ = np.histogramdd(positions[s], bins=edges)
        np.testing.assert_array_equal(grids[s], ref)
    assert grids[0][(-1,) * dim] >= 3 and grids[1][(0,) * dim] >= 3


def test_count_grid_max_normalization_and_single_configuration():
    positions = _positions(num=4, n=30)
    grids = F.voxel_grid(positions, L, 0.3125)  # the seed's: count / max count
    counts = F.voxel_grid(positions, L, 0.3125, normalize="none")
    np.testing.assert_allclose(grids, counts / counts.max(axis=(1, 2, 3), keepdims=True), rtol=1e-7)
    assert grids.max(axis=(1, 2, 3)).tolist() == [1.0] * 4 and grids.min() >= 0.0
    np.testing.assert_array_equal(F.voxel_grid(positions[2], L, 0.3125), grids[2])


def test_last_axis_is_height_with_cell_zero_at_the_floor():
    positions = np.array([[[0.1, 2.6, 4.9]]])  # x in cell 0, y in cell 8, z in the top cell 15
    grid = F.voxel_grid(positions, L, 0.3125, normalize="none")[0]
    assert grid[0, 8, 15] == 1.0 and grid.sum() == 1.0


# --------------------------------------------------------------------------- Gaussian grids


@pytest.mark.parametrize("boundary", ["reflect", "periodic", "slab"])
@pytest.mark.parametrize("dim", [3, 2])
def test_gaussian_deposits_exactly_one_per_particle(boundary, dim):
    positions = _positions(num=6, n=10, dim=dim)
    positions[0, :4] = [[0.0] * dim, [L] * dim, [0.01] * dim, [L - 0.02] * dim]  # at walls and corners
    grids = F.voxel_grid(positions, L, 0.3125, method="gaussian", width=0.7, normalize="none", boundary=boundary)
    np.testing.assert_allclose(grids.sum(axis=tuple(range(1, dim + 1))), 10.0, rtol=1e-6)
    assert grids.min() >= 0.0
    one = F.voxel_grid(positions[0, :1], L, 0.3125, method="gaussian", width=0.7, normalize="none",
                       boundary=boundary)
    assert one.sum() == pytest.approx(1.0, rel=1e-6)


def test_tiny_gaussian_at_a_cell_centre_puts_all_mass_in_that_cell():
    h = 0.3125
    positions = np.array([[3.5 * h, 10.5 * h, 0.5 * h], [15.5 * h, 0.5 * h, 7.5 * h]])
    grid = F.voxel_grid(positions, L, h, method="gaussian", width=1e-3, normalize="none")
    assert grid[3, 10, 0] == pytest.approx(1.0, abs=1e-6) and grid[15, 0, 7] == pytest.approx(1.0, abs=1e-6)
    assert grid.sum() == pytest.approx(2.0, abs=1e-5)
    np.testing.assert_array_equal(grid > 0.5, F.voxel_grid(positions, L, h, normalize="none") > 0.5)


def _cell_mass_quad(x, a, b, width, box_length, periodic):
    """Share of a Gaussian centred at x in [a, b], by numerical integration (truncated to the box at walls)."""
    def pdf(u):
        if periodic:
            return sum(math.exp(-((u - x + k * box_length) ** 2) / (2 * width**2)) for k in range(-4, 5))
        return math.exp(-((u - x) ** 2) / (2 * width**2))

    inside = quad(pdf, a, b, epsabs=1e-14, epsrel=1e-12)[0]
    whole = quad(pdf, 0.0, box_length, epsabs=1e-14, epsrel=1e-12, points=[x])[0]
    return inside / whole


@pytest.mark.parametrize("boundary", ["reflect", "periodic"])
def test_gaussian_cell_value_matches_quad(boundary):
    # 2D, one particle: the pixel value is the product of the two 1D shares, each checked against quad.
    h, width = 0.5, 0.8
    x, y = 0.3, 4.1  # near the walls, where truncation (reflect) or wrapping (periodic) matters
    grid = F.voxel_grid(np.array([[x, y]]), L, h, method="gaussian", width=width, normalize="none",
                        boundary=boundary)
    periodic = boundary == "periodic"
    for i, j in [(0, 8), (1, 9), (9, 0), (4, 4), (0, 0)]:
        ref = (_cell_mass_quad(x, i * h, (i + 1) * h, width, L, periodic)
               * _cell_mass_quad(y, j * h, (j + 1) * h, width, L, periodic))
        assert grid[i, j] == pytest.approx(ref, rel=1e-5, abs=1e-9), (i, j)


def test_periodic_gaussian_wraps_and_reflect_truncates():
    h = 0.3125
    at_origin = np.array([[0.0, 2.5 * h, 2.5 * h]])
    wrapped = F.voxel_grid(at_origin, L, h, method="gaussian", width=0.4, normalize="none", boundary="periodic")
    line = wrapped[:, 2, 2]
    np.testing.assert_allclose(line[:8], line[::-1][:8], rtol=1e-5)  # x = 0 sits between cells 0 and 15
    half_cell = 0.5 * math.erf(h / (0.4 * math.sqrt(2)))  # share of [0, h] in a Gaussian centred at 0
    assert line[-1] / line.sum() == pytest.approx(half_cell, rel=1e-5)  # the wrapped half lands in cell 15
    walled = F.voxel_grid(at_origin, L, h, method="gaussian", width=0.4, normalize="none", boundary="reflect")
    assert walled[-1, 2, 2] < 1e-12 and walled.sum() == pytest.approx(1.0, rel=1e-6)
    assert walled[0, 2, 2] / walled[:, 2, 2].sum() == pytest.approx(2 * half_cell, rel=1e-5)  # truncated, doubled
    # slab: wraps along x, walls along z
    corner = np.array([[0.0, 2.5 * h, 0.0]])
    slab = F.voxel_grid(corner, L, h, method="gaussian", width=0.4, normalize="none", boundary="slab")
    assert slab[-1, 2, 0] == pytest.approx(slab[0, 2, 0], rel=1e-5) and slab[0, 2, -1] < 1e-12


@pytest.mark.parametrize("method", ["count", "gaussian"])
def test_fine_seed_grid_runs_in_bounded_memory(method):
    # The seed's voxel_size 0.1 on L = 5: 50^3 cells, 200 configurations of 30 particles.
    positions = _positions(num=200, n=30)
    out_bytes = 200 * 50**3 * 4
    tracemalloc.start()  # numpy reports its buffers to tracemalloc
    try:
        grids = F.voxel_grid(positions, L, 0.1, method=method, width=0.2, normalize="none")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert grids.shape == (200, 50, 50, 50) and grids.dtype == np.float32
    np.testing.assert_allclose(grids.sum(axis=(1, 2, 3)), 30.0, rtol=1e-5)
    # 64-bit grids of all samples at once would need 2 * out_bytes on top of the float32 output
    assert peak < out_bytes + 4 * F.CHUNK_BYTES, peak / 2**20


# --------------------------------------------------------------------------- orderings and distances


def _origin_order(config):
    return sorted(range(len(config)), key=lambda i: math.sqrt(sum(c * c for c in config[i])))


def test_sort_by_origin_distance_is_a_stable_sort():
    positions = _positions(num=4, n=15)
    positions[1, 3] = [1.0, 2.0, 2.0]  # equal distance 3 from the origin: input order kept
    positions[1, 9] = [2.0, 2.0, 1.0]
    positions[1, 5] = [2.0, 1.0, 2.0]
    sorted_positions, order = F.sort_by_origin_distance(positions)
    assert order.dtype == np.int64 and order.shape == (4, 15)
    for s in range(4):
        assert order[s].tolist() == _origin_order(positions[s].tolist())
        np.testing.assert_array_equal(sorted_positions[s], positions[s][order[s]])
    ties = [i for i in order[1].tolist() if i in (3, 5, 9)]
    assert ties == [3, 5, 9]


@pytest.mark.parametrize("dim", [3, 2])
def test_distance_matrix_matches_scipy(dim):
    positions = _positions(num=5, n=11, dim=dim)
    anchors = F.box_anchors(L, dim, "corners")
    matrices, order = F.distance_matrix(positions, L, anchors=anchors)
    size = 11 + 2**dim
    assert matrices.shape == (5, size, size) and matrices.dtype == np.float32 and order.shape == (5, 11)
    diagonal = L * math.sqrt(dim)
    for s in range(5):
        ref_order = _origin_order(positions[s].tolist())
        assert order[s].tolist() == ref_order
        ordered = positions[s][ref_order]
        np.testing.assert_allclose(matrices[s, :11, :11], squareform(pdist(ordered)) / diagonal, rtol=2e-7,
                                   atol=1e-7)
        np.testing.assert_allclose(matrices[s, :11, 11:], cdist(ordered, anchors) / diagonal, rtol=2e-7, atol=1e-7)
        np.testing.assert_allclose(matrices[s, 11:, 11:], squareform(pdist(anchors)) / diagonal, rtol=2e-7,
                                   atol=1e-7)
    np.testing.assert_array_equal(matrices, np.swapaxes(matrices, 1, 2))
    assert np.all(matrices[:, np.arange(size), np.arange(size)] == 0.0)
    assert matrices.min() >= 0.0 and matrices.max() <= 1.0
    assert matrices[0, 11, 11 + 2**dim - 1] == pytest.approx(1.0)  # opposite corners: one box diagonal apart


def test_distance_matrix_without_anchors_and_single_configuration():
    positions = _positions(num=3, n=8)
    matrices, order = F.distance_matrix(positions, L)
    assert matrices.shape == (3, 8, 8)
    single, single_order = F.distance_matrix(positions[1], L, anchors=F.box_anchors(L, 3, "none"))
    np.testing.assert_array_equal(single, matrices[1])
    np.testing.assert_array_equal(single_order, order[1])


def test_periodic_distances_use_the_minimum_image():
    diagonal = L * math.sqrt(3)
    pair = np.array([[0.1, 2.0, 0.1], [4.9, 2.0, 4.9]])
    periodic, _ = F.distance_matrix(pair, L, boundary="periodic")
    reflect, _ = F.distance_matrix(pair, L, boundary="reflect")
    slab, _ = F.distance_matrix(pair, L, boundary="slab")
    assert periodic[0, 1] == pytest.approx(math.hypot(0.2, 0.2) / diagonal, rel=1e-6)
    assert reflect[0, 1] == pytest.approx(math.hypot(4.8, 4.8) / diagonal, rel=1e-6)
    assert slab[0, 1] == pytest.approx(math.hypot(0.2, 4.8) / diagonal, rel=1e-6)  # z has walls
    # anchors are places of the box: measured without wrapping, so the corners stay distinct
    with_corners, _ = F.distance_matrix(pair, L, anchors=F.box_anchors(L, 3, "corners"), boundary="periodic")
    assert with_corners[2, 9] == pytest.approx(1.0)
    assert with_corners[0, 2 + 7] == pytest.approx(math.dist(pair[0], [L, L, L]) / diagonal, rel=1e-6)


def test_box_anchors():
    corners = F.box_anchors(L, 3, "corners")
    assert corners.shape == (8, 3) and corners.dtype == np.float64
    assert corners.tolist() == [list(c) for c in itertools.product([0.0, L], repeat=3)]
    assert corners[1].tolist() == [0.0, 0.0, L]  # the documented order: last axis fastest
    assert F.box_anchors(L, 2, "corners").tolist() == [[0, 0], [0, L], [L, 0], [L, L]]
    assert F.box_anchors(L, 3, "none").shape == (0, 3)
    points = F.box_anchors(L, 2, [[1, 2], [5, 0]])
    assert points.dtype == np.float64 and points.tolist() == [[1.0, 2.0], [5.0, 0.0]]
    for bad in ("edges", [[1, 2]], [[1, 2, 6]], [[1, 2, -0.5]], [[1, math.nan, 1]], 3):
        with pytest.raises(ValueError, match="anchors"):
            F.box_anchors(L, 3, bad)


def test_sorted_coordinates():
    positions = _positions(num=4, n=10)
    positions[2, 4, 0] = positions[2, 7, 0]  # tie on x: input order kept
    for axis in (0, 2):
        coords, order = F.sorted_coordinates(positions, L, sort_axis=axis)
        assert coords.shape == (4, 30) and coords.dtype == np.float32 and order.dtype == np.int64
        assert coords.min() >= 0.0 and coords.max() <= 1.0
        for s in range(4):
            ref = sorted(range(10), key=lambda i: positions[s, i, axis])
            assert order[s].tolist() == ref
            # particle-major: x0, y0, z0, x1, ...
            np.testing.assert_allclose(coords[s].reshape(10, 3) * L, positions[s][ref], rtol=1e-6)
            assert np.all(np.diff(coords[s, axis::3]) >= 0)
    coords, order = F.sorted_coordinates(positions, L)
    assert order[2].tolist().index(4) < order[2].tolist().index(7)
    single, _ = F.sorted_coordinates(positions[0, :, :2], L, sort_axis=1)
    assert single.shape == (20,)


# --------------------------------------------------------------------------- bad input


BAD_CALLS = [
    (lambda p: F.voxel_grid(p, L, 0.3), "16.67 cells"),
    (lambda p: F.voxel_grid(p, L, 0.3125, method="blur"), "method='blur'"),
    (lambda p: F.voxel_grid(p, L, 0.3125, method="gaussian"), "width=None"),
    (lambda p: F.voxel_grid(p, L, 0.3125, method="gaussian", width=0.0), "width=0.0"),
    (lambda p: F.voxel_grid(p, L, 0.3125, method="gaussian", width=2.0, boundary="periodic"), "box_length / 4"),
    (lambda p: F.voxel_grid(p, L, 0.3125, normalize="sum"), "normalize='sum'"),
    (lambda p: F.voxel_grid(p, L, 0.3125, boundary="open"), "boundary='open'"),
    (lambda p: F.voxel_grid(p * 2, L, 0.3125), r"inside the box \[0, box_length=5\]"),
    (lambda p: F.voxel_grid(p - 1, L, 0.3125), "inside the box"),
    (lambda p: F.voxel_grid(p[..., :1], L, 0.3125), r"shape \(N, dim\) or \(S, N, dim\)"),
    (lambda p: F.voxel_grid(p[0, 0], L, 0.3125), r"shape \(N, dim\) or \(S, N, dim\)"),
    (lambda p: F.voxel_grid(np.concatenate([p, p[..., :1]], -1), L, 0.3125), "dim 2 or 3"),
    (lambda p: F.voxel_grid(np.where(p > 4, np.nan, p), L, 0.3125), "NaN"),
    (lambda p: F.distance_matrix(p * 2, L), "inside the box"),
    (lambda p: F.distance_matrix(p, L, anchors=np.zeros((2, 2))), r"shape \(A, 3\)"),
    (lambda p: F.distance_matrix(p, -5.0), "box_length=-5.0"),
    (lambda p: F.sorted_coordinates(p, L, sort_axis=3), r"sort_axis=3 .*\[0, 2\]"),
    (lambda p: R.featurize(_samples(), "graph", {}), "representation='graph'"),
    (lambda p: R.featurize(_samples(), "voxel", {"voxel_sise": 0.5}), "voxel_sise"),
    (lambda p: R.featurize(_samples(), "voxel", {"voxel_size": 0.3}), "0.3125 \\(16 cells\\)"),
]


@pytest.mark.parametrize("call, message", BAD_CALLS)
def test_bad_input_raises_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(_positions(num=2, n=5))


# --------------------------------------------------------------------------- featurize and parameters


def test_default_params_equal_the_schema_defaults():
    assert vconfig.apply_schema({}, SCHEMA)["features"] == R.DEFAULT_PARAMS


def test_canonical_params():
    assert R.canonical_params("voxel", {"voxel_size": 1, "method": "count", "width": 0.7, "normalize": "max"}) == {
        "voxel_size": 1.0, "method": "count", "normalize": "max"}  # a count grid does not depend on width
    gauss = R.canonical_params("voxel", {"method": "gaussian", "width": 1})
    assert gauss["width"] == 1.0 and isinstance(gauss["width"], float)
    assert R.canonical_params("distance", {"anchors": [[0, 5, 5]]}) == {"anchors": [[0.0, 5.0, 5.0]]}
    assert R.feature_shape("distance", {}, 30, 3, 5.0) == (38, 38)
    assert R.feature_shape("voxel", {"voxel_size": 0.25}, 30, 2, 4.0) == (16, 16)
    assert R.feature_shape("coordinates", None, 30, 3, 5.0) == (90,)


def test_featurize_each_representation():
    samples = _samples()
    voxel = R.featurize(samples, "voxel", {"voxel_size": 0.5, "method": "count", "width": 0.5})
    assert voxel.features.shape == (6, 10, 10, 10) and voxel.order is None and voxel.anchors is None
    assert voxel.attrs["num_cells"] == 10 and math.isnan(voxel.attrs["width"]) and voxel.attrs["method"] == "count"
    np.testing.assert_array_equal(voxel.features, F.voxel_grid(samples.positions, L, 0.5))
    distance = R.featurize(samples, "distance", {"anchors": "corners"})
    assert distance.features.shape == (6, 17, 17) and distance.anchors.shape == (8, 3)
    assert json.loads(distance.attrs["anchors"]) == "corners"
    assert distance.attrs["distance_scale"] == pytest.approx(L * math.sqrt(3))
    coords = R.featurize(samples, "coordinates", {"sort_axis": 2})
    assert coords.features.shape == (6, 27) and coords.attrs == {"sort_axis": 2} and coords.num_samples == 6
    assert np.all(np.diff(coords.features[:, 2::3], axis=1) >= 0)


# --------------------------------------------------------------------------- features files


def _write(path, samples, representation, params):
    result = R.featurize(samples, representation, params)
    attrs = {**{k: samples.attrs[k] for k in ("gamma", "temperature", "n_particles", "box_length", "dim",
                                              "boundary", "seed")},
             **result.attrs, "state": "gamma0.5_T1", "config": {"features": params, "code": "abc"},
             "git_commit": "deadbeef"}
    return io.write_features(path, representation, result.features, samples.energy, samples.chain,
                             np.arange(samples.num_samples), attrs, order=result.order, anchors=result.anchors)


PARAMS = {"voxel": {"voxel_size": 0.5, "method": "gaussian", "width": 0.5, "normalize": "max"},
          "distance": {"anchors": "corners"}, "coordinates": {"sort_axis": 0}}


@pytest.mark.parametrize("representation", ["voxel", "distance", "coordinates"])
def test_features_round_trip_and_layout(tmp_path, representation):
    samples = _samples(boundary="slab")
    result = R.featurize(samples, representation, PARAMS[representation])
    path = _write(tmp_path / "f.h5", samples, representation, PARAMS[representation])
    got = io.read_features(path)
    np.testing.assert_array_equal(got.features, result.features)
    np.testing.assert_array_equal(got.energy, samples.energy)
    np.testing.assert_array_equal(got.chain, samples.chain)
    np.testing.assert_array_equal(got.sample_index, np.arange(6))
    assert got.num_samples == 6 and got.representation == representation
    a = got.attrs
    assert a["file_format"] == "vaepipe-features-1" and a["state"] == "gamma0.5_T1" and a["boundary"] == "slab"
    assert a["n_particles"] == 9 and a["dim"] == 3 and a["box_length"] == L and a["seed"] == 2024
    assert json.loads(a["config"])["features"] == PARAMS[representation] and a["git_commit"] == "deadbeef"
    if representation == "voxel":
        assert got.order is None and got.anchors is None
        assert a["num_cells"] == 10 and a["width"] == 0.5 and a["method"] == "gaussian"
    if representation == "distance":
        np.testing.assert_array_equal(got.order, result.order)
        np.testing.assert_array_equal(got.anchors, F.box_anchors(L, 3, "corners"))
        assert json.loads(a["anchors"]) == "corners" and a["distance_scale"] == pytest.approx(L * math.sqrt(3))
    if representation == "coordinates":
        np.testing.assert_array_equal(got.order, result.order)
        assert a["sort_axis"] == 0
    with h5py.File(path, "r") as f:  # what a user without vaepipe sees
        ds = f["features"]
        assert ds.dtype == np.float32 and ds.chunks == (1,) + ds.shape[1:]
        assert ds.compression == "gzip" and ds.compression_opts == 4 and ds.shuffle
        assert f["energy"].dtype == np.float64 and f["chain"].dtype == np.int64
        assert f["sample_index"].dtype == np.int64
        assert list(f.attrs) == sorted(f.attrs)


def test_features_files_are_byte_identical(tmp_path):
    samples = _samples()
    a = _write(tmp_path / "a.h5", samples, "distance", PARAMS["distance"])
    time.sleep(1.1)  # HDF5 object timestamps have one-second resolution
    b = _write(tmp_path / "b.h5", copy.deepcopy(samples), "distance", dict(PARAMS["distance"]))
    assert a.read_bytes() == b.read_bytes()


def test_read_features_rejects_a_samples_file(tmp_path):
    samples = _samples()
    path = io.write_samples(tmp_path / "s.h5", samples.positions, samples.energy, samples.chain, samples.attrs)
    with pytest.raises(ValueError, match="is a vaepipe samples file, not a vaepipe features file"):
        io.read_features(path)


def test_read_features_names_what_is_missing(tmp_path):
    path = _write(tmp_path / "f.h5", _samples(), "distance", PARAMS["distance"])
    with h5py.File(path, "a") as f:
        del f["order"]
        del f.attrs["distance_scale"]
    with pytest.raises(ValueError, match=r"dataset 'order' is missing.*\['distance_scale'\] are missing"):
        io.read_features(path)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        io.read_features(tmp_path / "junk.h5")


def test_write_features_checks_its_arguments(tmp_path):
    samples = _samples()
    result = R.featurize(samples, "distance", {"anchors": "none"})
    attrs = {**{k: samples.attrs[k] for k in ("gamma", "temperature", "n_particles", "box_length", "dim",
                                              "boundary", "seed")}, **result.attrs, "state": "gamma0.5_T1"}
    args = (result.features, samples.energy, samples.chain, np.arange(6), attrs)
    with pytest.raises(ValueError, match="needs order"):
        io.write_features(tmp_path / "f.h5", "distance", *args, anchors=result.anchors)
    voxel = R.featurize(samples, "voxel", {"voxel_size": 1.0})
    with pytest.raises(ValueError, match="order is not part of a voxel"):
        io.write_features(tmp_path / "f.h5", "voxel", voxel.features, *args[1:4], {**attrs, **voxel.attrs},
                          order=result.order)
    with pytest.raises(ValueError, match=r"shape \(9, 9\)"):
        io.write_features(tmp_path / "f.h5", "distance", *args, order=result.order, anchors=np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"sample_index must have shape \(S,\) = \(6,\)"):
        io.write_features(tmp_path / "f.h5", "distance", result.features, samples.energy, samples.chain,
                          np.arange(5), attrs, order=result.order, anchors=result.anchors)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


# --------------------------------------------------------------------------- config checks


@pytest.fixture(scope="module")
def defaults():
    return vconfig.apply_schema({}, SCHEMA)


@pytest.mark.parametrize("section, key, value, message", [
    ("voxel", "voxel_size", 0.3, r"0\.3125 \(16 cells\)"),
    ("coordinates", "sort_axis", 3, "0 to 2"),
    ("distance", "anchors", [[1.0, 2.0]], "3 coordinates"),
    ("distance", "anchors", [[1.0, 2.0, 6.0]], r"\[0, 5\]"),
])
def test_check_config_errors_name_the_feature_key(defaults, section, key, value, message):
    cfg = copy.deepcopy(defaults)
    cfg["features"][section][key] = value
    with pytest.raises(ValueError, match=rf"config key features\.{section}\.{key}\b.*fix:") as info:
        vconfig.check_config(cfg)
    assert info.match(message)


def test_check_config_limits_periodic_gaussian_width(defaults):
    cfg = copy.deepcopy(defaults)
    cfg["system"].update(boundary="periodic", cutoff=2.5)
    cfg["state_points"]["gamma"] = [0.0]
    cfg["features"]["voxel"].update(method="gaussian", width=2.0)
    with pytest.raises(ValueError, match=r"config key features\.voxel\.width=2\.0 is invalid.*fix:"):
        vconfig.check_config(cfg)
    cfg["features"]["voxel"]["width"] = 1.0
    assert vconfig.check_config(cfg) is cfg


@pytest.mark.parametrize("raw, key", [
    ({"features": {"voxel": {"method": "blur"}}}, "features.voxel.method"),
    ({"features": {"distance": {"anchors": "edges"}}}, "features.distance.anchors"),
    ({"features": {"coordinates": {"sort_axis": -1}}}, "features.coordinates.sort_axis"),
    ({"features": {"graph": {}}}, "features.graph"),
])
def test_feature_schema_errors_name_the_key(raw, key):
    with pytest.raises(ValueError, match=rf"config key {re.escape(key)}(=| is unknown).*; fix: "):
        vconfig.apply_schema(raw, SCHEMA)


def test_repository_config_passes_and_uses_gaussian_voxels():
    cfg = vconfig.load_config(REPO / "config.yaml", SCHEMA)
    assert cfg["features"]["voxel"] == {"voxel_size": 0.3125, "method": "gaussian", "width": 0.5,
                                        "normalize": "max"}
    assert F.num_cells(cfg["system"]["box_length"], cfg["features"]["voxel"]["voxel_size"]) == 16
