"""Structural comparisons of particle configurations: what decoded and generated configurations are judged by.

Configurations are compared in the box frame: gravity and the walls fix it, so nothing here rotates or
translates one configuration onto another. Particle order is arbitrary, so the configuration distance is the
matched RMSD under the optimal permutation (:func:`matched_rmsd`, Hungarian algorithm); :func:`nearest_rmsd`
finds the closest of many references with pruning by lower bounds, and :func:`random_pair_rmsd` is the baseline
of two random configurations of one state point. Distributions are compared by the Wasserstein-1 distance of
pooled pair distances and heights (:func:`pair_distance_w1`, :func:`density_profile_w1`); :func:`radial_distribution`
is g(r) against an ideal gas in the same closed box; :func:`is_valid` checks walls and overlaps; :func:`tilt` makes
the "tilted layers" anomaly, which keeps the energy and sum(z) and so is invisible to both.

numpy and scipy only. Shapes: S configurations of N particles in ``dim`` = 2 or 3 dimensions, the last
coordinate the height z, the box [0, L]^dim; lengths in sigma. Functions that take (S, N, dim) also take one
(N, dim) configuration and then return a float (or an unbatched array).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

from vaepipe._validate import error, positive_float, positive_int
from vaepipe.reconstruct import min_pair_distance

__all__ = [
    "matched_rmsd", "nearest_rmsd", "axis_lower_bound", "matched_lower_bound", "random_pair_rmsd",
    "pair_distances", "heights", "distribution_w1", "pair_distance_w1", "density_profile_w1",
    "radial_distribution", "ideal_distance_density", "min_pair_distance", "is_valid", "valid_fraction",
    "tilt", "max_tilt_angle",
]

# Bytes of the (N, N, references) float32 block of one query's reduction bound: small enough to stay in cache,
# and the whole working memory of nearest_rmsd beyond its inputs.
_CHUNK_BYTES = 2 * 2**20
# Tolerance of the box test, sigma (as in is_valid).
_WALL_TOLERANCE = 1e-9


def _configurations(value, name: str, finite: bool = True) -> tuple[np.ndarray, bool]:
    """(S, N, dim) float64 and whether the input was one (N, dim) configuration."""
    arr = np.asarray(value, dtype=np.float64)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] not in (2, 3) or arr.shape[1] == 0:
        raise error(name, f"<array of shape {np.shape(value)}>", "shape (S, N, dim) or (N, dim), dim 2 or 3, N >= 1")
    if finite and arr.size and not np.all(np.isfinite(arr)):
        raise error(name, "<array with NaN or inf>", "finite coordinates",
                    "select the configurations that is_valid accepts first")
    return arr, single


def _matched(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """Smallest sum_i |a_i - b_perm[i]|^2 over permutations (sigma^2), and perm, for (N, dim) arrays."""
    cost = cdist(a, b, "sqeuclidean")
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum()), cols


def matched_rmsd(a, b, return_permutation: bool = False):
    """RMSD of paired configurations under the best particle correspondence, in the box frame.

    a, b : (S, N, dim) or (N, dim), sigma; one (N, dim) configuration is compared with each of the other side.
    Returns sqrt(min_pi mean_i |a_i - b_pi(i)|^2): (S,) in sigma, or a float for one pair of configurations;
    with ``return_permutation`` also pi, (S, N) or (N,) int, such that ``b[..., pi, :]`` is in a's order.
    """
    x, single_a = _configurations(a, "a")
    y, single_b = _configurations(b, "b")
    x, y = (np.broadcast_to(x, y.shape) if single_a and y.shape[1:] == x.shape[1:] else x,
            np.broadcast_to(y, x.shape) if single_b and y.shape[1:] == x.shape[1:] else y)
    single = single_a and single_b
    if x.shape != y.shape:
        raise error("b", f"<array of shape {np.shape(b)}>", f"the shape of a, {np.shape(a)}",
                    "pair each configuration with one of the same particle number and dim")
    costs = np.empty(x.shape[0])
    perms = np.empty(x.shape[:2], dtype=np.int64)
    for s in range(x.shape[0]):
        costs[s], perms[s] = _matched(x[s], y[s])
    rmsd = np.sqrt(costs / x.shape[1])
    if single:
        rmsd, perms = float(rmsd[0]), perms[0]
    return (rmsd, perms) if return_permutation else rmsd


def _sorted_axes(x: np.ndarray) -> np.ndarray:
    """(S, N * dim): each axis' coordinates sorted over the particles."""
    return np.sort(x, axis=1).reshape(len(x), -1)


def _pairs(queries, references) -> tuple[np.ndarray, np.ndarray]:
    q, single = _configurations(queries, "queries")
    r, single_ref = _configurations(references, "references")
    if single or single_ref or q.shape[1:] != r.shape[1:] or len(r) == 0:
        raise error("references", f"<array of shape {np.shape(references)}>", "a batch (R, N, dim), R >= 1, "
                    f"of configurations like the queries' (queries of shape {np.shape(queries)})")
    return q, r


def axis_lower_bound(queries, references) -> np.ndarray:
    """(Q, R) lower bounds of the matched squared cost N * matched_rmsd^2 (sigma^2) from the coordinate axes.

    For any permutation pi, sum_i |a_i - b_pi(i)|^2 = sum_axes sum_i (a_ik - b_pi(i)k)^2, and each axis' sum is
    at least that axis' own optimum over permutations. In one dimension the optimal matching under squared cost
    pairs the sorted values (rearrangement inequality: sum_i a_i b_pi(i) is largest when both are in the same
    order, and the sums of squares do not depend on pi). So cost >= sum_axes ||sort(a_k) - sort(b_k)||^2.
    queries : (Q, N, dim), references : (R, N, dim), sigma. Direct differences, no cancellation.
    """
    qs, rs = (_sorted_axes(x) for x in _pairs(queries, references))
    return np.stack([np.sum((row - rs) ** 2, axis=-1) for row in qs]).reshape(len(qs), len(rs))


def _bound_function(q: np.ndarray, r: np.ndarray):
    """bound(k): (R,) lower bounds of the matched squared cost of query k against every reference, sigma^2, the
    larger of the axis bound and the reduction bound, each less a slack for its rounding.

    The reduction bound is the Hungarian algorithm's first dual, u_i = min_j C_ij, v_j = min_i (C_ij - u_i):
    u_i + v_j <= C_ij for every i, j by the definition of v_j, so for any permutation pi,
    sum_i C_i,pi(i) >= sum_i u_i + sum_i v_pi(i) = sum u + sum v (weak LP duality). With
    H_ij = q_i . r_j - |r_j|^2 / 2, C_ij = |q_i|^2 - 2 H_ij, u_i = |q_i|^2 - 2 max_j H_ij and
    v_j = 2 min_i (max_j' H_ij' - H_ij). H is formed in float32 (half the memory traffic) from coordinates centred
    to norms <= rho: each entry is off by less than 16 eps_32 rho^2 and each difference by 3 eps_32 rho^2 more,
    so the bound by less than 6 N * 17 eps_32 rho^2 = 6.1e-6 N rho^2, under the slack 1e-5 N (1 + rho^2).
    """
    centre = 0.5 * (r.min() + r.max())  # distances do not change, rounding errors shrink
    q, r = q - centre, r - centre
    n = q.shape[1]
    rho2 = max(np.max(np.sum(q * q, axis=-1), initial=0.0), np.max(np.sum(r * r, axis=-1)))
    qs, rs = _sorted_axes(q), _sorted_axes(r)
    packed = np.concatenate([r, -0.5 * np.sum(r * r, axis=-1, keepdims=True)], axis=-1).transpose(2, 1, 0)
    step = max(1, _CHUNK_BYTES // (4 * n * n))
    blocks = [(rs[s:s + step], np.ascontiguousarray(packed[:, :, s:s + step], dtype=np.float32))
              for s in range(0, len(r), step)]

    def bound(k: int) -> np.ndarray:
        qf = q[k].astype(np.float32)
        norm = float(np.sum(q[k] * q[k]))
        out = []
        for sorted_refs, block in blocks:  # block: (dim + 1, N, Rc), the coordinates, then -|r_j|^2 / 2
            h = qf[:, 0, None, None] * block[0]  # (i, j, Rc)
            for axis in range(1, qf.shape[1]):
                h += qf[:, axis, None, None] * block[axis]
            h += block[-1]
            top = h.max(axis=1)  # (i, Rc)
            np.subtract(top[:, None, :], h, out=h)
            reduction = (norm - 2.0 * top.sum(axis=0, dtype=np.float64)
                         + 2.0 * h.min(axis=0).sum(axis=0, dtype=np.float64) - 1e-5 * n * (1.0 + rho2))
            axes = np.sum((qs[k] - sorted_refs) ** 2, axis=-1) - 1e-12 * n * (1.0 + rho2)
            out.append(np.maximum(reduction, axes))
        return np.concatenate(out)

    return bound


def matched_lower_bound(queries, references) -> np.ndarray:
    """(Q, R) the lower bounds of the matched squared cost (sigma^2) that :func:`nearest_rmsd` prunes with: the
    larger of :func:`axis_lower_bound` and the Hungarian algorithm's row-then-column reduction."""
    q, r = _pairs(queries, references)
    bound = _bound_function(q, r)
    return np.stack([bound(k) for k in range(len(q))]).reshape(len(q), len(r))


def nearest_rmsd(queries, references, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each query configuration, the smallest :func:`matched_rmsd` to any reference configuration.

    queries : (Q, N, dim), references : (R, N, dim), sigma. ``exclude_self``: the queries are the references
    (Q == R) and query q may not match reference q (the nearest other configuration).
    Returns ``(rmsd, index)``: (Q,) float64 in sigma and (Q,) int64; ties go to the lowest index, so the result is
    that of brute force, argmin over all Q * R Hungarian matchings.

    Pruning: the exact matchings of a query run in increasing order of :func:`matched_lower_bound` and stop when
    the next bound exceeds the best exact cost found. On liquid-like configurations the axis bound alone is
    about a third of the exact cost and prunes few pairs; the reduction bound is about three quarters of it and
    leaves tens of candidates out of thousands.
    """
    q, r = _pairs(queries, references)
    if exclude_self and (len(q) != len(r) or len(r) < 2):
        raise error("exclude_self", exclude_self, f"False for {len(q)} queries and {len(r)} references",
                    "exclude_self=True is for nearest_rmsd(x, x) with at least 2 configurations")
    bound_of = _bound_function(q, r)
    best_cost, best_index = np.empty(len(q)), np.empty(len(q), dtype=np.int64)
    for k in range(len(q)):
        bound = bound_of(k)
        cost, index = np.inf, -1
        for j in np.argsort(bound, kind="stable"):
            if bound[j] > cost:
                break  # every later reference costs more than `cost`, by more than rounding: no tie either
            if exclude_self and j == k:
                continue
            exact, _ = _matched(q[k], r[j])
            if exact < cost or (exact == cost and j < index):
                cost, index = exact, j
        best_cost[k], best_index[k] = cost, index
    return np.sqrt(best_cost / q.shape[1]), best_index


def random_pair_rmsd(positions, num_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Matched RMSD of ``num_pairs`` random pairs of distinct configurations of one set, (num_pairs,) sigma: the
    baseline of two random configurations of the same state point. positions : (S, N, dim), S >= 2."""
    x, _ = _configurations(positions, "positions")
    num_pairs = positive_int("num_pairs", num_pairs)
    if not isinstance(rng, np.random.Generator):
        raise error("rng", rng, "a numpy.random.Generator", "pass numpy.random.default_rng(seed)")
    if len(x) < 2:
        raise error("positions", f"<array of shape {x.shape}>", "at least 2 configurations")
    first = rng.integers(len(x), size=num_pairs)
    second = rng.integers(len(x) - 1, size=num_pairs)
    second += second >= first  # uniform over the other configurations
    return matched_rmsd(x[first], x[second])


def pair_distances(positions) -> np.ndarray:
    """Pooled distances of all particle pairs i < j of all configurations (no periodic images), 1-D, sigma.
    positions : (S, N, dim) or (N, dim); non-finite coordinates give non-finite distances."""
    x, _ = _configurations(positions, "positions", finite=False)
    i, j = np.triu_indices(x.shape[1], 1)
    return np.sqrt(np.sum((x[:, i] - x[:, j]) ** 2, axis=-1)).ravel()


def heights(positions) -> np.ndarray:
    """Pooled heights z (the last coordinate) of all particles, 1-D, sigma."""
    x, _ = _configurations(positions, "positions", finite=False)
    return x[..., -1].ravel()


def distribution_w1(a, b) -> float:
    """Wasserstein-1 distance between two 1-D samples (their units); NaN and inf are dropped first."""
    samples = []
    for name, value in (("a", a), ("b", b)):
        sample = np.asarray(value, dtype=np.float64).ravel()
        sample = sample[np.isfinite(sample)]
        if sample.size == 0:
            raise error(name, f"<sample of {np.size(value)} values, none finite>", "at least one finite value")
        samples.append(sample)
    return float(wasserstein_distance(*samples))


def pair_distance_w1(positions_a, positions_b) -> float:
    """W1 between the pooled pair distances of two sets of configurations (sigma); 0 for the same structure."""
    return distribution_w1(pair_distances(positions_a), pair_distances(positions_b))


def density_profile_w1(positions_a, positions_b) -> float:
    """W1 between the normalised density profiles rho(z) / N of two sets, i.e. between their pooled heights,
    sigma: how far the mass of one profile must move in z to become the other."""
    return distribution_w1(heights(positions_a), heights(positions_b))


def ideal_distance_density(r, box_length: float, dim: int) -> np.ndarray:
    """Density of the distance of two independent uniform points in the box [0, L]^dim, 1/sigma.

    The closed forms of square line picking (dim 2) and cube line picking (dim 3; Mathai, Moschopoulos and
    Pederzoli 1999, simplified in Weisstein, MathWorld, "Cube Line Picking") for L = 1, scaled by
    p_L(r) = p_1(r / L) / L; zero outside [0, L sqrt(dim)].
    """
    length = positive_float("box_length", box_length, "sigma")
    x = np.asarray(r, dtype=np.float64) / length
    t = np.clip(x, 0.0, np.sqrt(dim))
    with np.errstate(invalid="ignore", divide="ignore"):
        s1 = np.sqrt(np.maximum(t * t - 1.0, 0.0))
        arcsec = np.arccos(np.minimum(1.0, 1.0 / np.maximum(t, 1.0)))
        if dim == 2:
            low = 2 * t * (t * t - 4 * t + np.pi)
            high = 2 * t * (4 * s1 - (t * t + 2 - np.pi) - 4 * arcsec)
            pieces = [(t <= 1, low), (t <= np.sqrt(2), high)]
        elif dim == 3:
            s2 = np.sqrt(np.maximum(t * t - 2.0, 0.0))
            low = -t * t * ((t - 8) * t * t + np.pi * (6 * t - 4))
            mid = 2 * t * ((t * t - 8 * s1 + 3) * t * t - 4 * s1 + 12 * t * t * arcsec + np.pi * (3 - 4 * t) - 0.5)
            arccsc = np.arcsin(np.minimum(1.0, 1.0 / np.sqrt(np.maximum(2.0 - 2.0 / np.maximum(t, 1.0) ** 2, 1.0))))
            high = t * ((1 + t * t) * (6 * np.pi + 8 * s2 - 5 - t * t) - 16 * t * arccsc
                        + 16 * t * np.arctan(t * s2) - 24 * (t * t + 1) * np.arctan(s2))
            pieces = [(t <= 1, low), (t <= np.sqrt(2), mid), (t <= np.sqrt(3), high)]
        else:
            raise error("dim", dim, "2 or 3")
        density = np.select([c for c, _ in pieces], [v for _, v in pieces], 0.0)
    return np.where((x >= 0) & (x <= np.sqrt(dim)), density, 0.0) / length


def _ideal_bin_probability(edges: np.ndarray, box_length: float, dim: int) -> np.ndarray:
    """P(distance in each bin) for the ideal gas: the closed-form density integrated by 24-point Gauss-Legendre
    on each bin, split where the density changes form (L, L sqrt 2, L sqrt 3)."""
    kinks = box_length * np.sqrt(np.arange(1, dim + 1))
    points = np.union1d(edges, kinks[(kinks > edges[0]) & (kinks < edges[-1])])
    nodes, weights = np.polynomial.legendre.leggauss(24)
    lo, hi = points[:-1, None], points[1:, None]
    values = ideal_distance_density(0.5 * (hi - lo) * nodes + 0.5 * (hi + lo), box_length, dim)
    parts = 0.5 * (hi - lo)[:, 0] * (values @ weights)
    owner = np.searchsorted(edges, points[:-1], side="right") - 1
    return np.bincount(owner, weights=parts, minlength=len(edges) - 1)


def radial_distribution(positions, box_length: float, bins: int, r_max: float) -> tuple[np.ndarray, np.ndarray]:
    """g(r) of configurations in a closed box: their pair-distance histogram over that of an ideal gas.

    positions : (S, N, dim) sigma, N >= 2. ``bins`` equal bins on [0, r_max], r_max <= L sqrt(dim) sigma.
    The ideal reference is exact, not sampled: S N (N - 1) / 2 pairs times the probability of each bin under
    :func:`ideal_distance_density`, so uniform random points give g = 1 at every r up to noise, walls included
    (there are no periodic images, and the wall deficit of pairs at large r is in the reference).
    Returns ``(r_centres, g)``, each (bins,): sigma and dimensionless.
    """
    x, _ = _configurations(positions, "positions")
    length = positive_float("box_length", box_length, "sigma")
    bins = positive_int("bins", bins)
    dim = x.shape[2]
    r_max = positive_float("r_max", r_max, "sigma")
    if x.shape[1] < 2 or len(x) == 0:
        raise error("positions", f"<array of shape {x.shape}>", "at least one configuration of at least 2 particles")
    if r_max > length * np.sqrt(dim):
        raise error("r_max", r_max, f"at most the box diagonal L sqrt(dim) = {length * np.sqrt(dim):g} sigma")
    edges = np.linspace(0.0, r_max, bins + 1)
    counts, _ = np.histogram(pair_distances(x), bins=edges)
    ideal = len(x) * x.shape[1] * (x.shape[1] - 1) / 2 * _ideal_bin_probability(edges, length, dim)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 0.5 * (edges[1:] + edges[:-1]), counts / ideal


def is_valid(positions, box_length: float, min_distance: float = 0.8) -> np.ndarray | bool:
    """Whether each configuration is physical: finite, every particle inside [0, L] (within 1e-9 sigma) and no
    pair closer than ``min_distance`` sigma. positions : (S, N, dim) or (N, dim). Returns (S,) bool or a bool."""
    x, single = _configurations(positions, "positions", finite=False)
    length = positive_float("box_length", box_length, "sigma")
    min_distance = positive_float("min_distance", min_distance, "sigma")
    finite = np.all(np.isfinite(x), axis=(1, 2))
    inside = np.all((x >= -_WALL_TOLERANCE) & (x <= length + _WALL_TOLERANCE), axis=(1, 2))
    ok = finite & inside
    if x.shape[1] > 1 and ok.any():
        ok[ok] = min_pair_distance(x[ok]) >= min_distance
    return bool(ok[0]) if single else ok


def valid_fraction(positions, box_length: float, min_distance: float = 0.8) -> float:
    """Share of the configurations that :func:`is_valid` accepts, in [0, 1]."""
    valid = np.atleast_1d(is_valid(positions, box_length, min_distance))
    if valid.size == 0:
        raise error("positions", "<empty batch>", "at least one configuration")
    return float(np.mean(valid))


def _tilt_plane(dim: int, axis) -> int:
    """Index of the horizontal coordinate that turns with z."""
    if dim == 2 and axis == 0:
        return 0
    if dim == 3 and axis in (0, 1) and not isinstance(axis, bool):
        return 1 - int(axis)
    raise error("axis", axis, "0 (x) or 1 (y) for dim 3, 0 for dim 2 (the rotation is in the (x, z) plane)")


def tilt(positions, box_length: float, angle, axis: int = 0) -> np.ndarray:
    """Rigid rotation of each configuration about a horizontal axis through its centre of mass.

    The "tilted layers" anomaly: every pair distance is kept, so the energy without gravity is; the centre of
    mass is kept, so sum(z) and with it the gravity energy are. Neither the energy nor sum(z) can see it.

    positions : (S, N, dim) or (N, dim), sigma. angle : radians, a scalar or (S,). axis : 0 (x) or 1 (y) in 3D;
    in 2D the rotation is in the (x, z) plane (axis 0). A positive angle turns the horizontal coordinate h of
    the plane (y for axis 0, x for axis 1 and in 2D) toward +z: h' = h cos - z sin, z' = h sin + z cos about
    the centre of mass. The result may leave the box: :func:`max_tilt_angle` gives the angles that do not.
    box_length (sigma) is only checked: the rotation does not depend on it. Returns positions of the same shape.
    """
    x, single = _configurations(positions, "positions")
    positive_float("box_length", box_length, "sigma")
    h = _tilt_plane(x.shape[2], axis)
    theta = np.asarray(angle, dtype=np.float64)
    if theta.ndim > 1 or (theta.ndim == 1 and theta.shape != (len(x),)) or not np.all(np.isfinite(theta)):
        raise error("angle", f"<array of shape {theta.shape}>", f"a finite scalar or shape ({len(x)},), radians")
    cos, sin = np.broadcast_to(np.cos(theta), len(x))[:, None], np.broadcast_to(np.sin(theta), len(x))[:, None]
    centre = x.mean(axis=1, keepdims=True)
    d = x - centre
    out = x.copy()
    out[..., h] = centre[..., h] + cos * d[..., h] - sin * d[..., -1]
    out[..., -1] = centre[..., -1] + sin * d[..., h] + cos * d[..., -1]
    return out[0] if single else out


def max_tilt_angle(positions, box_length: float, max_angle: float, axis: int = 0) -> np.ndarray | float:
    """Per configuration, the largest angle theta between 0 and ``max_angle`` (radians, either sign) such that
    :func:`tilt` by every angle from 0 to theta keeps all particles inside [0, L] (within 1e-9 sigma).

    Exact, not bisected: each particle moves on a circle about the centre of mass, so each wall constraint
    reads c + p cos(theta) + q sin(theta) = c + rho cos(theta - phi) >= 0, which fails on the arc
    theta - phi in (psi, 2 pi - psi), psi = arccos(-c / rho); the answer is the first such arc over particles
    and walls (a later return into the box does not count). 0 for a configuration already outside.
    Returns (S,) radians, or a float.
    """
    x, single = _configurations(positions, "positions")
    length = positive_float("box_length", box_length, "sigma")
    if not np.isfinite(max_angle):
        raise error("max_angle", max_angle, "a finite angle in radians")
    h = _tilt_plane(x.shape[2], axis)
    sign = -1.0 if max_angle < 0 else 1.0
    centre = x.mean(axis=1, keepdims=True)
    dh, dz = x[..., h] - centre[..., h], x[..., -1] - centre[..., -1]
    ch, cz = np.broadcast_to(centre[..., h], dh.shape), np.broadcast_to(centre[..., -1], dh.shape)
    # h' = ch + dh cos - dz sin and z' = cz + dh sin + dz cos (angles mirrored for a negative max_angle)
    # Half is_valid's tolerance: a particle already on a wall may stay there, and one that stops on a wall at
    # theta (rounding included) still passes is_valid.
    c = np.stack([ch, length - ch, cz, length - cz]) + 0.5 * _WALL_TOLERANCE
    p = np.stack([dh, -dh, dz, -dz])
    q = sign * np.stack([-dz, dz, dh, -dh])
    rho, phi = np.hypot(p, q), np.arctan2(q, p)
    psi = np.arccos(np.clip(-c / np.where(rho > 0, rho, 1.0), -1.0, 1.0))
    start = np.mod(phi + psi, 2 * np.pi)
    width = 2 * np.pi - 2 * psi
    first = np.where(start + width > 2 * np.pi, 0.0, start)  # the arc covers theta = 0: already outside
    first = np.where((width <= 0) | (rho <= 0), np.inf, first)  # never outside, or not moving
    first = np.where(c < 0, 0.0, first)
    theta = sign * np.minimum(first.min(axis=(0, 2)), abs(max_angle))
    return float(theta[0]) if single else theta
