"""Featurization: particle configurations -> the learnable representations of the VAE stage.

Three representations, all vectorized over samples (memory-bounded chunks
of samples, no Python loop per configuration):

``voxel``
    :func:`voxel_grid`: n = L / h cells per side, a (n,)*dim grid per configuration, axis order
    ``grid[..., ix, iy(, iz)]`` with the last axis the height z (cell 0 at the floor). Cell ``i`` of an axis holds
    coordinates in ``[i h, (i + 1) h)``; the last cell also holds ``x = L``. ``method="count"`` (the seed's) counts
    particles per cell; ``method="gaussian"`` deposits a normalized Gaussian of standard deviation ``width`` per
    particle, integrated exactly over each cell, so that cell values are expected particle counts; at walls it is
    truncated and renormalized, along periodic axes it wraps around. ``normalize="max"`` (the seed's) divides each
    grid by its own maximum, into [0, 1]; ``"none"`` keeps counts, so each grid sums to N.
``distance``
    :func:`distance_matrix`: particles sorted by distance from the origin corner (:func:`sort_by_origin_distance`),
    pairwise distances divided by the box diagonal ``L sqrt(dim)``, into [0, 1], optionally with anchor points
    (:func:`box_anchors`) appended as extra rows and columns.
``coordinates``
    :func:`sorted_coordinates`: the dense baseline's input, particles ordered by one coordinate, flattened
    particle-major and divided by L, into [0, 1].

These are the algorithms; the representations themselves (their parameters, file attributes, errors and models)
and the workflow's entry point :func:`vaepipe.representations.featurize` live in :mod:`vaepipe.representations`.
Lengths are in sigma throughout; every feature array is float32 (what the networks consume), permutations are
int64.
"""

from __future__ import annotations

import itertools
import math
import numbers
from typing import Any

import numpy as np
from scipy.special import erf

from vaepipe._validate import error, float_array, not_complex
from vaepipe.boundary import check_boundary, periodic_axes

__all__ = [
    "VOXEL_METHODS",
    "NORMALIZATIONS",
    "num_cells",
    "voxel_grid",
    "sort_by_origin_distance",
    "distance_matrix",
    "box_anchors",
    "sorted_coordinates",
]

VOXEL_METHODS = ("count", "gaussian")
NORMALIZATIONS = ("max", "none")


# Working memory of one chunk of samples (float64 intermediates); the output array comes on top.
CHUNK_BYTES = 32 * 2**20
# Relative tolerance of L / h being a whole number of cells.
_CELL_RTOL = 1e-9
# A Gaussian on a periodic axis may be at most this fraction of L wide: wider ones are nearly uniform after
# wrapping, and the images at -2L..+2L then carry all but ~1e-15 of the mass.
MAX_PERIODIC_WIDTH_FRACTION = 0.25
_IMAGES = 2  # periodic images on each side of the box summed along a periodic axis


# --------------------------------------------------------------------------- argument checks




def _box_length(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise error("box_length", value, "a positive finite number (sigma)")
    return float(value)


def _boundary(value: Any) -> str:
    return check_boundary("boundary", value, "use the samples file's boundary attribute")


def _positions(positions: Any, box_length: float) -> tuple[np.ndarray, bool]:
    """(S, N, dim) float64 view of checked positions, and whether a single (N, dim) configuration was given.
    Complex positions are a TypeError (numpy would drop the imaginary part)."""
    positions = not_complex("positions", positions)
    try:
        arr = np.asarray(positions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error("positions", type(positions).__name__, "an array of coordinates of shape (N, dim) or "
                    "(S, N, dim)") from exc
    if arr.ndim not in (2, 3) or arr.shape[-1] not in (2, 3) or arr.shape[-2] == 0:
        raise error("positions", f"<array of shape {arr.shape}>", "shape (N, dim) or (S, N, dim) with dim 2 or 3 "
                    "and N >= 1", "pass one configuration or a stack of them, coordinates last")
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.size and not np.all(np.isfinite(arr)):
        raise error("positions", "<array with NaN or inf>", "finite coordinates")
    if arr.size:
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > box_length:
            raise error("positions", f"<array with coordinates in [{lo:g}, {hi:g}]>",
                        f"coordinates inside the box [0, box_length={box_length:g}] (sigma)",
                        "pass positions in sigma with the box_length they were sampled in")
    return arr, single


def _chunks(num: int, bytes_per_sample: int):
    step = max(1, CHUNK_BYTES // max(1, bytes_per_sample))
    for start in range(0, num, step):
        yield slice(start, min(start + step, num))


# --------------------------------------------------------------------------- voxel grids


def num_cells(box_length: float, voxel_size: float) -> int:
    """Cells per side n = L / h; ValueError unless that is a whole number (to ~1e-9 relative).

    The error names the two nearest voxel sizes that tile the box, e.g. ``box_length 5.0 / voxel_size 0.3 =
    16.67 cells; use voxel_size 0.3125 (16 cells) or 0.294117647 (17 cells)``; each suggestion is the shortest
    decimal that passes this check.
    """
    box_length = _box_length(box_length)
    if (isinstance(voxel_size, bool) or not isinstance(voxel_size, numbers.Real) or not math.isfinite(voxel_size)
            or voxel_size <= 0):
        raise error("voxel_size", voxel_size, "a positive finite number (sigma)")
    ratio = box_length / float(voxel_size)
    n = round(ratio)
    if n >= 1 and abs(ratio - n) <= _CELL_RTOL * ratio:
        return int(n)
    options = [k for k in (math.floor(ratio), math.ceil(ratio)) if k >= 1]
    suggestions = " or ".join(f"{_tiling_size(box_length, k)} ({k} cell{'s' if k > 1 else ''})" for k in options)
    raise ValueError(
        f"box_length {box_length:g} / voxel_size {float(voxel_size):g} = {ratio:.4g} cells, expected a whole "
        f"number of cells per side; fix: use voxel_size {suggestions}")


def _tiling_size(box_length: float, cells: int) -> str:
    """Shortest decimal voxel size (>= 6 significant digits) that passes :func:`num_cells` with ``cells``."""
    exact = box_length / cells
    for digits in range(6, 18):
        text = f"{exact:.{digits}g}"
        if abs(box_length / float(text) - cells) <= _CELL_RTOL * cells:
            return text
    return repr(exact)


def _axis_cell_weights(x: np.ndarray, n: int, box_length: float, width: float, periodic: bool) -> np.ndarray:
    """(S, N) coordinates of one axis -> (S, N, n) fraction of each particle's Gaussian in each cell, summing to 1.

    Exact cell integrals as erf differences. Walls: the Gaussian is truncated to [0, L] and renormalized.
    Periodic: the images within +-2L are summed (cell c collects the integrals over c + k n, k = -2..2).
    """
    images = _IMAGES if periodic else 0
    edges = np.arange(-images * n, (images + 1) * n + 1) * (box_length / n)
    cdf = erf((edges - x[..., None]) / (math.sqrt(2.0) * width))
    weights = np.diff(cdf, axis=-1)
    if periodic:
        weights = weights.reshape(x.shape + (2 * images + 1, n)).sum(axis=-2)
    # Truncated at walls, or missing < 1e-15 beyond the outermost images: renormalize so each particle deposits 1.
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights


_LETTERS = "ijk"


def voxel_grid(positions, box_length: float, voxel_size: float, method: str = "count", width: float | None = None,
               normalize: str = "max", boundary: str = "reflect") -> np.ndarray:
    """Voxel (dim 3) or pixel (dim 2) grids of particle configurations.

    Parameters
    ----------
    positions : array (N, dim) or (S, N, dim)
        Coordinates in sigma, inside [0, box_length]; the last coordinate is the height z.
    box_length : float
        Box side L in sigma.
    voxel_size : float
        Cell side h in sigma; L / h must be a whole number n (see :func:`num_cells`).
    method : {"count", "gaussian"}
        "count": particles per cell (the seed's). "gaussian": each particle deposits a normalized Gaussian of
        standard deviation ``width``, integrated exactly over each cell: cell values are expected counts.
    width : float, optional
        Standard deviation of the Gaussian in sigma (required, > 0, for "gaussian"; ignored by "count"). Along a
        periodic axis at most L / 4.
    normalize : {"max", "none"}
        "max" (the seed's): each grid divided by its own maximum, values in [0, 1]. "none": counts or expected
        counts, each grid sums to N.
    boundary : {"reflect", "periodic", "slab"}
        Decides how a Gaussian meets the box faces: truncated and renormalized at walls (reflect: every axis;
        slab: the height axis), wrapped around along periodic axes (periodic: every axis; slab: x and y).

    Returns
    -------
    float32 array (n,)*dim or (S,) + (n,)*dim, axis order ``grid[..., ix, iy(, iz)]``, cell 0 at the origin (the
    floor along z).
    """
    box_length = _box_length(box_length)
    n = num_cells(box_length, voxel_size)
    if method not in VOXEL_METHODS:
        raise error("method", method, f"one of {VOXEL_METHODS}")
    if normalize not in NORMALIZATIONS:
        raise error("normalize", normalize, f"one of {NORMALIZATIONS}")
    boundary = _boundary(boundary)
    arr, single = _positions(positions, box_length)
    num, n_particles, dim = arr.shape
    wrapped = periodic_axes(boundary, dim)
    if method == "gaussian":
        if width is None:
            raise error("width", width, "the Gaussian's standard deviation in sigma (> 0) with method='gaussian'",
                        "pass width=, e.g. half a voxel_size or more")
        if (isinstance(width, bool) or not isinstance(width, numbers.Real) or not math.isfinite(width)
                or width <= 0):
            raise error("width", width, "a positive finite number (sigma)")
        width = float(width)
        if wrapped and width > MAX_PERIODIC_WIDTH_FRACTION * box_length:
            raise error("width", width, f"at most box_length / 4 = {MAX_PERIODIC_WIDTH_FRACTION * box_length:g} "
                        f"sigma with boundary {boundary!r} (a wider Gaussian wraps into a nearly uniform grid)",
                        "lower width or raise voxel resolution instead")

    grid_shape = (n,) * dim
    out = np.empty((num,) + grid_shape, dtype=np.float32)
    cells = n**dim
    if method == "count":
        # The edges of np.histogramdd, so the binning is the same to the last bit.
        edges = np.linspace(0.0, box_length, n + 1)
        per_sample = 8 * (cells + 3 * n_particles * dim)
        for part in _chunks(num, per_sample):
            chunk = arr[part]
            idx = np.clip(np.searchsorted(edges, chunk, side="right") - 1, 0, n - 1)
            flat = np.ravel_multi_index(tuple(np.moveaxis(idx, -1, 0)), grid_shape)
            flat += (np.arange(chunk.shape[0]) * cells)[:, None]
            counts = np.bincount(flat.ravel(), minlength=chunk.shape[0] * cells)
            out[part] = counts.reshape((chunk.shape[0],) + grid_shape)  # whole counts: exact in float32
            if normalize == "max":
                out[part] /= out[part].max(axis=tuple(range(1, dim + 1)), keepdims=True)
    else:
        subscripts = ",".join(f"sp{c}" for c in _LETTERS[:dim]) + "->s" + _LETTERS[:dim]
        per_sample = 8 * (cells + n_particles * n * n + dim * n_particles * ((2 * _IMAGES + 1) * n + 1) * 2)
        for part in _chunks(num, per_sample):
            chunk = arr[part]
            weights = [_axis_cell_weights(chunk[..., a], n, box_length, width, a in wrapped)
                       for a in range(dim)]
            grids = np.einsum(subscripts, *weights, optimize=True)
            out[part] = _normalized(grids, normalize)
    return out[0] if single else out


def _normalized(grids: np.ndarray, normalize: str) -> np.ndarray:
    if normalize == "max":
        axes = tuple(range(1, grids.ndim))
        grids = grids / grids.max(axis=axes, keepdims=True)  # > 0: every grid holds N >= 1 particles
    return grids


# --------------------------------------------------------------------------- orderings and distances


def sort_by_origin_distance(positions) -> tuple[np.ndarray, np.ndarray]:
    """Particles sorted by Euclidean distance from the origin corner (0, ..., 0), ties kept in input order.

    positions : (N, dim) or (S, N, dim) in sigma.
    Returns ``(sorted_positions, order)``: the positions in the same shape and float64, and the int64
    permutation (N,) or (S, N) with ``sorted_positions = positions[order]`` (per configuration:
    ``np.take_along_axis(positions, order[..., None], axis=-2)``).
    """
    arr = float_array("positions", positions)
    if arr.ndim not in (2, 3) or arr.shape[-1] not in (2, 3):
        raise error("positions", f"<array of shape {arr.shape}>", "shape (N, dim) or (S, N, dim) with dim 2 or 3")
    if arr.size and not np.all(np.isfinite(arr)):
        raise error("positions", "<array with NaN or inf>", "finite coordinates")
    order = np.argsort(np.einsum("...i,...i->...", arr, arr), axis=-1, kind="stable").astype(np.int64)
    return np.take_along_axis(arr, order[..., None], axis=-2), order


def box_anchors(box_length: float, dim: int, anchors: Any) -> np.ndarray:
    """Reference points appended to distance matrices, (A, dim) float64 in sigma.

    anchors : "none" -> shape (0, dim); "corners" -> the 2**dim box corners in binary counting order with the
    last axis (height) fastest: corner k has coordinate a equal to L times bit (dim - 1 - a) of k, i.e. in 3D
    (0,0,0), (0,0,L), (0,L,0), (0,L,L), (L,0,0), ...; or an explicit sequence of points, each of length dim with
    coordinates in [0, L].
    """
    box_length = _box_length(box_length)
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim not in (2, 3):
        raise error("dim", dim, "2 or 3")
    dim = int(dim)
    if isinstance(anchors, str):
        if anchors == "none":
            return np.zeros((0, dim))
        if anchors == "corners":
            return np.array(list(itertools.product((0.0, box_length), repeat=dim)))
        raise error("anchors", anchors, "'none', 'corners' or a list of points [[x, y(, z)], ...] in sigma")
    try:
        points = np.asarray(anchors, dtype=np.float64)
    except (TypeError, ValueError):
        raise error("anchors", anchors, "'none', 'corners' or a list of points [[x, y(, z)], ...] in sigma") from None
    if points.size == 0:
        return np.zeros((0, dim))
    if points.ndim != 2 or points.shape[1] != dim:
        raise error("anchors", anchors, f"a list of points with {dim} coordinates each (shape (A, {dim})), got "
                    f"shape {points.shape}")
    if not np.all(np.isfinite(points)) or points.min() < 0.0 or points.max() > box_length:
        raise error("anchors", anchors, f"points inside the box [0, {box_length:g}]^{dim} (sigma)")
    return points


def distance_matrix(positions, box_length: float, anchors=None, boundary: str = "reflect") -> tuple[np.ndarray,
                                                                                                     np.ndarray]:
    """Distance matrices of configurations, particles sorted by distance from the origin, scaled into [0, 1].

    Parameters
    ----------
    positions : array (N, dim) or (S, N, dim)
        Coordinates in sigma inside [0, box_length].
    box_length : float
        Box side L in sigma. Distances are divided by the box diagonal ``L sqrt(dim)``.
    anchors : array (A, dim), optional
        Reference points in sigma (see :func:`box_anchors`), appended after the particles, unsorted, as rows and
        columns N .. N+A-1.
    boundary : {"reflect", "periodic", "slab"}
        Particle-particle distances use the minimum image along periodic axes (all of them for "periodic", x and
        y for "slab"). Distances to and between anchors are measured in the box frame, without wrapping: anchors
        mark places of the box itself, and box corners would coincide under the minimum image.

    Returns
    -------
    (matrices, order): float32 (S, N+A, N+A) (or (N+A, N+A) for one configuration), exactly symmetric, zero
    diagonal, values in [0, 1]; and the int64 particle order (S, N) (or (N,)) of :func:`sort_by_origin_distance`.
    """
    box_length = _box_length(box_length)
    boundary = _boundary(boundary)
    arr, single = _positions(positions, box_length)
    num, n_particles, dim = arr.shape
    if anchors is None:
        anchors = np.zeros((0, dim))
    anchors = float_array("anchors", anchors)
    if anchors.ndim != 2 or anchors.shape[1] != dim:
        raise error("anchors", f"<array of shape {anchors.shape}>", f"shape (A, {dim}) to match the positions",
                    "build them with box_anchors(box_length, dim, spec)")
    outside = ~(np.isfinite(anchors) & (anchors >= 0.0) & (anchors <= box_length)).all(axis=1)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise error("anchors", f"<{anchors.shape[0]} point(s), {int(outside.sum())} not inside the box; anchor {first} "
                    f"at {anchors[first].tolist()}>", f"finite points inside the box [0, box_length={box_length:g}]"
                    f"^{dim} (sigma), like the positions", "build them with box_anchors(box_length, dim, spec)")
    sorted_positions, order = sort_by_origin_distance(arr)
    size = n_particles + anchors.shape[0]
    periodic = np.zeros(dim, dtype=bool)
    periodic[list(periodic_axes(boundary, dim))] = True
    # Minimum image only where both points are particles.
    is_particle = np.arange(size) < n_particles
    wrap = (is_particle[:, None] & is_particle[None, :])[..., None] & periodic
    scale = box_length * math.sqrt(dim)
    out = np.empty((num, size, size), dtype=np.float32)
    upper = np.triu(np.ones((size, size), dtype=bool), 1)
    for part in _chunks(num, 8 * 3 * size * size * dim):
        points = np.concatenate([sorted_positions[part], np.broadcast_to(anchors, (part.stop - part.start,)
                                                                              + anchors.shape)], axis=1)
        diff = points[:, :, None, :] - points[:, None, :, :]
        diff = np.where(wrap, diff - box_length * np.round(diff / box_length), diff)
        dist = np.minimum(np.sqrt(np.einsum("sijk,sijk->sij", diff, diff)) / scale, 1.0)
        # a - b == -(b - a) exactly, so the matrix is symmetric already; copying the upper triangle makes it so
        # by construction, whatever the summation order of the einsum.
        dist = np.where(upper, dist, np.swapaxes(dist, 1, 2))
        out[part] = dist
    idx = np.arange(size)
    out[:, idx, idx] = 0.0
    return (out[0], order[0]) if single else (out, order)


def sorted_coordinates(positions, box_length: float, sort_axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The dense baseline's input: particles ordered by one coordinate, flattened, divided by L.

    positions : (N, dim) or (S, N, dim) in sigma inside [0, box_length]. sort_axis : coordinate to sort by
    (0 = x; stable, ties in input order). Returns ``(coords, order)``: float32 (S, N*dim) (or (N*dim,)),
    particle-major ``x0, y0(, z0), x1, ...`` in [0, 1]; and the int64 permutation (S, N) (or (N,)).
    """
    box_length = _box_length(box_length)
    arr, single = _positions(positions, box_length)
    num, n_particles, dim = arr.shape
    if isinstance(sort_axis, bool) or not isinstance(sort_axis, numbers.Integral) or not 0 <= sort_axis < dim:
        raise error("sort_axis", sort_axis, f"an integer in [0, {dim - 1}] (0 = x, {dim - 1} = height)")
    order = np.argsort(arr[..., int(sort_axis)], axis=-1, kind="stable").astype(np.int64)
    coords = (np.take_along_axis(arr, order[..., None], axis=-2) / box_length).reshape(num, n_particles * dim)
    coords = coords.astype(np.float32)
    return (coords[0], order[0]) if single else (coords, order)
