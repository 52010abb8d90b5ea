"""Particle configurations from distance matrices: classical MDS (the Gram-matrix method), alignment, SMACOF.

A distance matrix fixes a configuration up to a rigid motion and a mirror image. The seed's two steps are

1. :func:`classical_mds`: double-centre the squared distances into the Gram matrix ``G = -1/2 J D^2 J`` (J the
   centring matrix) and take its top-``dim`` eigenpairs, ``X = V sqrt(Lambda)``;
2. :func:`align`: the rotation (and, optionally, reflection) plus translation that minimises the mean squared
   deviation from a reference (Kabsch / orthogonal Procrustes), which gives the RMSD.

Decoded matrices need not be Euclidean. The share of the Gram spectrum that is negative measures how far they
are (0 for an exact distance matrix); negative eigenvalues are clipped. :func:`smacof` refines a configuration
against the decoded distances by stress majorisation. Without the original, :func:`anchored_positions` places a
configuration in the box absolutely: the distance matrices carry extra rows for reference points of known
position (the box corners), and aligning the reconstructed reference points onto them fixes rotation,
reflection and translation. :func:`align_permutation` drops the assumption that the rows of a decoded matrix
are in the reference's particle order.

Everything here is numpy and scipy only, in sigma, batched over configurations where the docstring says so.
Shapes: S configurations, M points (particles, plus anchors where given), ``dim`` 2 or 3.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from vaepipe._validate import error, float_array
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

__all__ = [
    "MDSResult",
    "classical_mds",
    "pairwise_distances",
    "kabsch",
    "align",
    "align_permutation",
    "smacof",
    "anchored_positions",
]




def _batch(array, name: str, ndim: int, what: str, unit: str = "values in sigma") -> tuple[np.ndarray, bool]:
    """float64 array with a leading batch axis, and whether the input lacked it; finite, or a ValueError naming
    the first samples and entries that are not (``unit`` says what was expected: "distances in sigma")."""
    arr = float_array(name, array)
    single = arr.ndim == ndim - 1
    if single:
        arr = arr[None]
    elif arr.ndim != ndim:
        raise error(name, f"<array of shape {arr.shape}>", what)
    if arr.size and not np.isfinite(arr).all():
        raise _not_finite(name, arr, single, unit)
    return arr, single


def _not_finite(name: str, arr: np.ndarray, single: bool, unit: str) -> ValueError:
    """The error of a batch (S, ...) with NaN or inf: the first bad samples and the first bad entries of the first."""
    bad = ~np.isfinite(arr)
    samples = np.flatnonzero(bad.reshape(arr.shape[0], -1).any(axis=1))
    first = int(samples[0])
    entries = ", ".join(str(tuple(int(i) for i in e)) for e in np.argwhere(bad[first])[:3])
    more = ", ..." if bad[first].sum() > 3 else ""
    if single:
        where = f"entries {entries}{more}"
        fix = f"repair or drop those entries of {name} first"
    else:
        others = "" if samples.size == 1 else f" and {samples.size - 1} more sample(s): {samples[1:4].tolist()}" + (
            "..." if samples.size > 4 else "")
        where = f"sample {first} (entries {entries}{more}){others}"
        fix = f"drop or repair sample {first} first"
    return error(name, f"<array of shape {arr.shape[1:] if single else arr.shape} with NaN or inf at {where}>",
                 f"finite {unit}", fix)


def _dim(dim) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim not in (2, 3):
        raise error("dim", repr(dim), "2 or 3")
    return int(dim)


@dataclass(frozen=True)
class MDSResult:
    """Classical MDS of S matrices.

    positions : (S, M, dim) float64, sigma, centred at the origin, principal axes along the coordinate axes.
    eigenvalues : (S, M) float64, the Gram spectrum in descending order, sigma^2.
    negative_fraction : (S,) share of the spectrum's absolute weight on negative eigenvalues,
        sum |lambda_-| / sum |lambda|: 0 for a Euclidean matrix, about 0.5 for noise.
    residual_fraction : (S,) share of the positive spectrum beyond the first ``dim`` eigenvalues: 0 for a
        matrix of points in ``dim`` dimensions.
    """

    positions: np.ndarray
    eigenvalues: np.ndarray
    negative_fraction: np.ndarray
    residual_fraction: np.ndarray


def classical_mds(distance_matrices, dim: int = 3, return_info: bool = False):
    """Coordinates whose pairwise distances best match the given ones (Torgerson's classical MDS).

    Parameters
    ----------
    distance_matrices : (S, M, M) or (M, M), sigma
        Distances, not the normalised features: multiply those by the features' ``distance_scale`` first.
        An asymmetric input (a decoder's output) is symmetrised, (D + D^T) / 2.
    dim : 2 or 3
    return_info : also return the spectrum diagnostics (an :class:`MDSResult`).

    Returns
    -------
    (S, M, dim) or (M, dim) float64 positions, or the :class:`MDSResult` (batched) with ``return_info``.
    All S matrices go through one batched eigendecomposition.
    """
    dim = _dim(dim)
    d, single = _batch(distance_matrices, "distance_matrices", 3, "shape (S, M, M) or (M, M)", "distances in sigma")
    if d.shape[-1] != d.shape[-2]:
        raise error("distance_matrices", f"<array of shape {d.shape}>", "square matrices (M, M)")
    if d.shape[-1] < dim + 1:
        raise error("distance_matrices", f"<array of shape {d.shape}>", f"at least {dim + 1} points for dim {dim}")
    if d.size and d.min() < 0:
        raise error("distance_matrices", f"<array with minimum {d.min():.3g}>", "non-negative distances")
    d = 0.5 * (d + np.swapaxes(d, -1, -2))
    squared = d ** 2
    # G = -1/2 J D^2 J without forming J: subtract row and column means, add back the grand mean.
    row = squared.mean(axis=-1, keepdims=True)
    gram = -0.5 * (squared - row - np.swapaxes(row, -1, -2) + squared.mean(axis=(-1, -2), keepdims=True))
    values, vectors = np.linalg.eigh(gram)  # ascending
    values, vectors = values[..., ::-1], vectors[..., ::-1]
    top = np.clip(values[..., :dim], 0.0, None)
    positions = vectors[..., :dim] * np.sqrt(top)[..., None, :]
    absolute = np.abs(values).sum(axis=-1)
    safe = np.where(absolute > 0, absolute, 1.0)
    negative = np.where(values < 0, -values, 0.0).sum(axis=-1) / safe
    positive = np.clip(values, 0.0, None)
    residual = positive[..., dim:].sum(axis=-1) / np.where(positive.sum(axis=-1) > 0, positive.sum(axis=-1), 1.0)
    if return_info:
        return MDSResult(positions=positions, eigenvalues=values, negative_fraction=negative,
                         residual_fraction=residual)
    return positions[0] if single else positions


def pairwise_distances(positions) -> np.ndarray:
    """(S, M, M) or (M, M) Euclidean distances of (S, M, dim) or (M, dim) positions (no periodic images)."""
    p, single = _batch(positions, "positions", 3, "shape (S, M, dim) or (M, dim)")
    diff = p[:, :, None, :] - p[:, None, :, :]
    d = np.sqrt(np.einsum("sijk,sijk->sij", diff, diff))
    return d[0] if single else d


def _pair(moving, reference):
    m, single = _batch(moving, "moving", 3, "shape (S, N, dim) or (N, dim)")
    r, single_ref = _batch(reference, "reference", 3, "shape (S, N, dim) or (N, dim)")
    if single != single_ref and r.shape[0] == 1:
        r = np.broadcast_to(r, m.shape)
    if m.shape != r.shape:
        raise error("moving", f"<array of shape {np.shape(moving)}>",
                    f"the shape of reference, {np.shape(reference)}", "pair each configuration with its reference")
    return m, r, single and single_ref


def kabsch(moving, reference, allow_reflection: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The orthogonal map and translation that take ``moving`` closest to ``reference`` in the least-squares sense.

    moving, reference : (S, N, dim) or (N, dim), the same points in the same order.
    Returns ``(rotation, translation)``: (S, dim, dim) and (S, dim) (no batch axis for unbatched input) with
    ``moving @ rotation + translation`` the aligned points. ``rotation`` is a proper rotation (determinant +1)
    unless ``allow_reflection``, when it may be a rotation-reflection (determinant -1).
    """
    m, r, single = _pair(moving, reference)
    m_mean, r_mean = m.mean(axis=1, keepdims=True), r.mean(axis=1, keepdims=True)
    cross = np.swapaxes(m - m_mean, 1, 2) @ (r - r_mean)  # (S, dim, dim)
    u, _, vt = np.linalg.svd(cross)
    if not allow_reflection:
        # The nearest proper rotation flips the axis of the smallest singular value when U V^T is improper.
        sign = np.sign(np.linalg.det(u @ vt))
        sign = np.where(sign == 0, 1.0, sign)
        u = u.copy()
        u[:, :, -1] *= sign[:, None]
    rotation = u @ vt
    translation = (r_mean - m_mean @ rotation)[:, 0, :]
    return (rotation[0], translation[0]) if single else (rotation, translation)


def align(moving, reference, allow_reflection: bool = True) -> tuple[np.ndarray, np.ndarray | float]:
    """Superpose ``moving`` onto ``reference`` (translation + rotation, + reflection if allowed; Kabsch).

    moving, reference : (S, N, dim) or (N, dim) in sigma, row i of one corresponding to row i of the other (for
        decoded distance matrices: the sorted particle order of the features).
    allow_reflection : MDS recovers a configuration only up to a mirror image, so allow it for MDS output.

    Returns ``(aligned, rmsd)``: the moved points, same shape as ``moving``, and the root-mean-square deviation
    sqrt(mean_i |x_i - y_i|^2) in sigma, (S,) or a float.
    """
    m, r, single = _pair(moving, reference)
    rotation, translation = kabsch(m, r, allow_reflection)
    aligned = m @ rotation + translation[:, None, :]
    rmsd = np.sqrt(np.mean(np.sum((aligned - r) ** 2, axis=-1), axis=-1))
    return (aligned[0], float(rmsd[0])) if single else (aligned, rmsd)


def _principal_frame(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    return centred @ vectors[:, ::-1]


def align_permutation(moving, reference, allow_reflection: bool = True, max_iter: int = 20):
    """:func:`align` without trusting the row order: find the correspondence as well.

    Both configurations are rotated into their principal axes; for each sign choice of the axes (the
    ambiguity of principal axes; proper ones only unless ``allow_reflection``), and from the superposition in the
    given order, the Hungarian algorithm assigns
    moving points to reference points by squared distance, and assignment and Kabsch alignment alternate until
    the assignment is stable. The best of these starts wins.

    moving, reference : (S, N, dim) or (N, dim). Returns ``(aligned, rmsd, permutation)`` where
    ``aligned[..., k, :]`` is the moving point matched to reference point k (permutation (S, N) or (N,) int:
    ``aligned[k]`` comes from ``moving[permutation[k]]``). A Python loop over S: use it on tens to thousands of
    configurations, not millions.
    """
    m, r, single = _pair(moving, reference)
    num, n, dim = m.shape
    signs = [np.array(s) for s in itertools.product((1.0, -1.0), repeat=dim)]
    if not allow_reflection:
        signs = [s for s in signs if np.prod(s) > 0]
    aligned_all = np.empty_like(m)
    rmsd_all = np.empty(num)
    perm_all = np.empty((num, n), dtype=np.int64)
    for s in range(num):
        ref_frame = _principal_frame(r[s])
        # The given order's own superposition is one start, so the result is never worse than align()'s.
        starts = [align(m[s], ref_frame, allow_reflection)[0]]
        mov_frame = _principal_frame(m[s])
        starts += [mov_frame * sign for sign in signs]
        best = (np.inf, None)
        for start in starts:
            perm = None
            for _ in range(max_iter):
                _, cols = linear_sum_assignment(cdist(ref_frame, start, "sqeuclidean"))
                if perm is not None and np.array_equal(cols, perm):
                    break
                perm = cols
                rotation, translation = kabsch(start[perm], ref_frame, allow_reflection)
                start = start @ rotation + translation
            _, rmsd = align(m[s][perm], r[s], allow_reflection)
            if rmsd < best[0]:
                best = (rmsd, perm)
        perm_all[s] = best[1]
        aligned_all[s], rmsd_all[s] = align(m[s][best[1]], r[s], allow_reflection)
    if single:
        return aligned_all[0], float(rmsd_all[0]), perm_all[0]
    return aligned_all, rmsd_all, perm_all


def _stress(positions: np.ndarray, target: np.ndarray) -> np.ndarray:
    upper = np.triu_indices(target.shape[-1], 1)
    diff = pairwise_distances(positions)[:, upper[0], upper[1]] - target[:, upper[0], upper[1]]
    return np.sqrt(np.sum(diff ** 2, axis=-1) / np.sum(target[:, upper[0], upper[1]] ** 2, axis=-1))


def smacof(distance_matrices, init, max_iter: int = 300, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Refine configurations against target distances by stress majorisation (SMACOF, Guttman transform).

    Minimises the raw stress sum_{i<j} (|x_i - x_j| - delta_ij)^2, which, unlike classical MDS, fits the
    distances themselves rather than a double-centred Gram matrix. Each iteration cannot increase the stress.

    distance_matrices : (S, M, M) or (M, M) target distances delta (sigma, symmetrised). init : (S, M, dim) or
    (M, dim) start, usually :func:`classical_mds` output. Stops when the relative stress improves by less than
    ``tol`` for every configuration, or after ``max_iter`` iterations.

    Returns ``(positions, stress)`` with stress the normalised stress sqrt(sum (d - delta)^2 / sum delta^2), (S,)
    (a float for one configuration).
    """
    target, single = _batch(distance_matrices, "distance_matrices", 3, "shape (S, M, M) or (M, M)")
    x, _ = _batch(init, "init", 3, "shape (S, M, dim) or (M, dim)")
    if x.shape[:2] != target.shape[:2] or target.shape[1] != target.shape[2]:
        raise error("init", f"<array of shape {np.shape(init)}>",
                    f"one point per row of distance_matrices {np.shape(distance_matrices)}")
    target = 0.5 * (target + np.swapaxes(target, -1, -2))
    m = target.shape[-1]
    eye = np.eye(m, dtype=bool)
    x = x.copy()
    previous = _stress(x, target)
    for _ in range(max_iter):
        d = pairwise_distances(x)
        ratio = np.where((d > 1e-12) & ~eye, target / np.where(d > 1e-12, d, 1.0), 0.0)
        b = -ratio
        b[:, eye] = ratio.sum(axis=-1)
        x = b @ x / m
        current = _stress(x, target)
        converged = np.all(previous - current <= tol * np.maximum(previous, 1e-300))
        previous = current
        if converged:
            break
    return (x[0], float(previous[0])) if single else (x, previous)


def anchored_positions(distance_matrices, anchors, dim: int = 3, allow_reflection: bool = True):
    """Place configurations absolutely from distance matrices whose last rows are anchors of known position.

    distance_matrices : (S, N + A, N + A) or (N + A, N + A), sigma, particles first, then the A anchors (the
        distance features' layout). anchors : (A, dim) anchor positions in sigma (``vaepipe.features.box_anchors``).
        Needs A >= dim + 1 anchors not in one plane (the 2^dim box corners are).

    The MDS configuration of all N + A points is superposed onto the known anchors (Kabsch on the anchor rows:
    labelled anchors also fix the mirror image, so a reflection is allowed to undo MDS's arbitrary one) and the
    same map is applied to the particles.

    Returns ``(positions, anchor_rmsd)``: (S, N, dim) (or (N, dim)) in the box frame, and how far the
    reconstructed anchors lie from their true places after the fit (sigma; 0 for exact matrices).
    """
    d, single = _batch(distance_matrices, "distance_matrices", 3, "shape (S, N + A, N + A) or (N + A, N + A)")
    points = np.asarray(anchors, dtype=np.float64)
    dim = _dim(dim)
    if points.ndim != 2 or points.shape[1] != dim or points.shape[0] < dim + 1:
        raise error("anchors", f"<array of shape {points.shape}>", f"(A, {dim}) with A >= {dim + 1} points",
                    "featurize with features.distance.anchors: corners")
    num_anchors = points.shape[0]
    if d.shape[-1] <= num_anchors:
        raise error("distance_matrices", f"<array of shape {d.shape}>", f"more than {num_anchors} rows (particles "
                    f"followed by {num_anchors} anchors)")
    mds = classical_mds(d, dim)
    rotation, translation = kabsch(mds[:, -num_anchors:], np.broadcast_to(points, (d.shape[0],) + points.shape),
                                   allow_reflection)
    placed = mds @ rotation + translation[:, None, :]
    rmsd = np.sqrt(np.mean(np.sum((placed[:, -num_anchors:] - points) ** 2, axis=-1), axis=-1))
    positions = placed[:, :-num_anchors]
    return (positions[0], float(rmsd[0])) if single else (positions, rmsd)


def min_pair_distance(positions) -> np.ndarray | float:
    """Smallest particle-particle distance of each configuration (no periodic images), sigma: (S,) or a float."""
    d = pairwise_distances(positions)
    batch = d if d.ndim == 3 else d[None]
    n = batch.shape[-1]
    masked = np.where(np.eye(n, dtype=bool), np.inf, batch)
    out = masked.reshape(batch.shape[0], -1).min(axis=-1)
    return out if d.ndim == 3 else float(out[0])


def repair_overlaps(positions, box_length: float, min_distance: float = 0.8, max_steps: int = 50):
    """Push apart the pairs closer than ``min_distance``, and nothing else: a minimal repair, not a quench.

    Each step moves both particles of every overlapping pair apart along their separation by half the missing
    distance (summed over a particle's overlaps) and clips the result into the box [0, L]; particles without an
    overlap never move. It stops when no pair is closer than ``min_distance`` or after ``max_steps`` steps.
    Coincident particles are separated along the height axis.

    positions : (S, N, dim) or (N, dim), sigma. Returns ``(repaired, displacement, steps)``: positions of the same
    shape, the mean displacement per particle (sigma, (S,) or float, over all N particles) and the steps taken.
    """
    x, single = _batch(positions, "positions", 3, "shape (S, N, dim) or (N, dim)", "coordinates in sigma")
    if not (np.isfinite(box_length) and box_length > 0):
        raise error("box_length", repr(box_length), "a positive length in sigma")
    if not (0 < min_distance < box_length):
        raise error("min_distance", repr(min_distance), f"a distance in (0, {box_length}) sigma")
    start = x.copy()
    x = x.copy()
    n, dim = x.shape[1], x.shape[2]
    eye = np.eye(n, dtype=bool)
    fallback = np.zeros(dim)
    fallback[-1] = 1.0
    steps = 0
    for steps in range(1, max_steps + 1):
        diff = x[:, :, None, :] - x[:, None, :, :]  # i minus j: points from j to i
        dist = np.sqrt(np.einsum("sijk,sijk->sij", diff, diff))
        overlap = (dist < min_distance - 1e-9) & ~eye  # a rounding error's shortfall is no overlap
        if not overlap.any():
            steps -= 1
            break
        unit = np.where(dist[..., None] > 1e-12, diff / np.where(dist > 1e-12, dist, 1.0)[..., None],
                        np.where(np.triu(np.ones((n, n), dtype=bool))[..., None], fallback, -fallback))
        push = np.where(overlap, 0.5 * (min_distance - dist), 0.0)
        x = np.clip(x + np.einsum("sij,sijk->sik", push, unit), 0.0, box_length)
    displacement = np.mean(np.sqrt(np.sum((x - start) ** 2, axis=-1)), axis=-1)
    return (x[0], float(displacement[0]), steps) if single else (x, displacement, steps)
