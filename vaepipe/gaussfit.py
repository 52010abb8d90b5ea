"""Particle positions from voxel grids: fit N Gaussian deposits with the featurizer's own forward model.

The forward model is :func:`vaepipe.features.voxel_grid` with ``method="gaussian"``: particle p deposits a
normalized Gaussian of standard deviation ``width``, integrated exactly over each cell, truncated and renormalized
at walls, wrapped along periodic axes. It is separable, ``G[i, j, k] = sum_p wx[p, i] wy[p, j] wz[p, k]`` with the
per-axis cell weights ``w`` of each particle, and so are its derivatives: the slope of an erf cell integral is a
difference of Gaussian pdfs at the cell's edges. That makes both the gradient and the whole Gauss-Newton matrix
``J^T J`` cheap: an entry is a product over axes of inner products of 1D weight (or slope) vectors.

The fit, batched over grids (the loops are over iterations and particles, never over grids):

1. greedy peak picking: a particle at the residual's maximum, placed inside that cell where its deposit best
   matches the residual's profile over the 3 cells around the peak along each axis (walls included), then its
   deposit, scaled to the amplitude estimate ``sum(grid) / N``, is subtracted; N times.
2. Levenberg-Marquardt on ``||a G(x) - grid||^2`` over all N dim coordinates at once, with a damping factor per
   grid, positions kept in [0, L] (clipped at walls, wrapped along periodic axes). The amplitude ``a`` is 1 for
   ``normalize="none"``; for ``"max"`` it is solved in closed form after every step, ``a = <G, grid> / <G, G>``.
   A grid stops when an accepted step lowers its squared residual by less than ``tol`` (relative).
3. repairs, for grids not fitted to rounding: the particle whose deposit is most over-predicted jumps to the
   largest under-predicted peak, and step 2 runs again from there; a grid keeps the move if it lowers the
   residual, and then tries another (at most N moves). Crowded grids (neighbours two widths apart), where step 1
   can place a particle between two sites or leave one empty, come out right this way.

Lengths are in sigma. Cost per iteration and grid: O(N n^dim) for the model and gradient and O((N dim)^3) for the
step, so it suits the pipeline's tens of particles per grid. Numpy and scipy only.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

from vaepipe._validate import error, nonnegative_int, positive_float, positive_int
from vaepipe.boundary import check_boundary, periodic_axes
from vaepipe.features import _IMAGES, CHUNK_BYTES, MAX_PERIODIC_WIDTH_FRACTION, NORMALIZATIONS

__all__ = ["GaussFitResult", "fit_gaussian_deposits"]

# Levenberg-Marquardt damping, relative to the diagonal of J^T J: the start, the factors after an accepted and
# a rejected step, and the value at which a grid that cannot improve any more stops.
_DAMPING_START, _DAMPING_DOWN, _DAMPING_UP, _DAMPING_GIVE_UP = 1e-3, 3.0, 4.0, 1e10
_DAMPING_MIN = 1e-9  # keeps the damped system positive definite when two particles share a site
# Candidate positions per cell and axis, less one, of the sub-cell refinement of a peak.
_SUBCELL = 16
# A grid whose squared residual is this small a fraction of its squared values is fitted to rounding (exact
# float32 grids come down to about 1e-15).
_EXACT = 1e-14


@dataclass(frozen=True)
class GaussFitResult:
    """Gaussian deposits fitted to S grids.

    positions : (S, N, dim) float64, sigma, inside [0, L].
    residual : (S,) float64, sum of squared residuals / sum of squared grid values (0 for a perfect fit, inf for
        a blank grid, which is left as the greedy start).
    amplitude : (S,) float64, the factor a of ``a * voxel_grid(positions, normalize="none")`` that fits each
        grid: 1 for ``normalize="none"``, 1 / max of the unnormalized grid for an exact ``"max"`` grid.
    iterations : (S,) int64, Levenberg-Marquardt iterations (damped Gauss-Newton steps) used, repairs included.
    """

    positions: np.ndarray
    residual: np.ndarray
    amplitude: np.ndarray
    iterations: np.ndarray


def fit_gaussian_deposits(grids, n_particles: int, box_length: float, width: float, normalize: str = "max",
                          boundary: str = "reflect", max_iter: int = 200, tol: float = 1e-6, init=None,
                          return_info: bool = False, dim: int | None = None, max_repairs: int | None = None):
    """Particle positions whose Gaussian deposits reproduce voxel (3D) or pixel (2D) grids.

    Parameters
    ----------
    grids : array (S, n, n, n) or (S, n, n), or one grid (n, n, n) or (n, n)
        Axis order ``grid[..., ix, iy(, iz)]`` as :func:`vaepipe.features.voxel_grid` writes it; the voxel size is
        box_length / n. Exact, noisy or decoded (blurred) grids; NaN or inf is an error.
    n_particles : int
        N, the number of deposits to fit in each grid.
    box_length : float
        Box side L in sigma.
    width : float
        Standard deviation of each deposit in sigma, the featurizer's ``width``.
    normalize : {"max", "none"}
        How the grids were normalized: "max" fits a free positive amplitude per grid, "none" fits amplitude 1
        (each grid sums to about N).
    boundary : {"reflect", "periodic", "slab"}
        The walls (truncated, renormalized deposits) and periodic axes (wrapped deposits) of the forward model.
    max_iter : int
        Levenberg-Marquardt iterations at most per refinement: the first one and each after a repair move
        (0: the greedy initialization only, or ``init`` itself).
    tol : float
        A grid stops when an accepted step lowers its squared residual by less than this fraction.
    init : array (S, N, dim) or (N, dim), optional
        Starting positions in sigma inside [0, L], instead of greedy peak picking.
    return_info : bool
        Return a :class:`GaussFitResult` (batched) instead of the positions alone.
    dim : {2, 3}, optional
        Needed only for a 3-axis array with all sides equal, which could be one voxel grid (dim 3) or a stack of
        pixel grids (dim 2).
    max_repairs : int, optional
        Repair moves tried per grid at most (step 3; default N). A decoded grid is never fitted to rounding, so
        it tries them all: fewer trade a little accuracy for speed.

    Returns
    -------
    float64 positions (S, N, dim) (or (N, dim) for one grid) in sigma inside [0, L], in the order the greedy
    initialization found them (or the order of ``init``); or the :class:`GaussFitResult` with ``return_info``.
    """
    arr, single, dim = _grids(grids, dim)
    n_particles = positive_int("n_particles", n_particles)
    box_length = positive_float("box_length", box_length, "sigma")
    width = positive_float("width", width, "sigma")
    if normalize not in NORMALIZATIONS:
        raise error("normalize", normalize, f"one of {NORMALIZATIONS}", "use the features file's normalize attribute")
    boundary = check_boundary("boundary", boundary, "use the samples file's boundary attribute")
    wrapped = periodic_axes(boundary, dim)
    if wrapped and width > MAX_PERIODIC_WIDTH_FRACTION * box_length:
        raise error("width", width, f"at most box_length / 4 = {MAX_PERIODIC_WIDTH_FRACTION * box_length:g} sigma "
                    f"with boundary {boundary!r}, as in vaepipe.features.voxel_grid")
    max_iter = nonnegative_int("max_iter", max_iter)
    repairs = n_particles if max_repairs is None else nonnegative_int("max_repairs", max_repairs)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not math.isfinite(tol) or tol < 0:
        raise error("tol", tol, "a finite number >= 0 (relative improvement of the squared residual)")
    num, n = arr.shape[0], arr.shape[1]
    if init is not None:
        init = _init(init, num, n_particles, dim, box_length, single)
    model = _Model(n, dim, box_length, width, tuple(a in wrapped for a in range(dim)))

    positions, residual, amplitude = np.empty((num, n_particles, dim)), np.empty(num), np.empty(num)
    iterations = np.zeros(num, dtype=np.int64)
    # float64 working memory per grid: grids and residuals, outer products, J^T J, weights and their slopes
    per_grid = 8 * (6 * n**dim + 4 * n_particles * n ** (dim - 1) + 4 * (n_particles * dim) ** 2
                    + 8 * n_particles * dim * ((2 * _IMAGES + 1) * n + 1))
    step = max(1, CHUNK_BYTES // per_grid)
    for start in range(0, num, step):
        part = slice(start, min(start + step, num))
        y = arr[part].reshape(-1, n, n ** (dim - 1))
        x = _greedy(model, y, n_particles, normalize) if init is None else init[part].copy()
        positions[part], residual[part], amplitude[part], iterations[part] = _fit(
            model, y, x, normalize, max_iter, tol, repairs)
    if return_info:
        return GaussFitResult(positions, residual, amplitude, iterations)
    return positions[0] if single else positions


# --------------------------------------------------------------------------- argument checks


def _grids(grids, dim) -> tuple[np.ndarray, bool, int]:
    """(S, n, ..., n) float64 grids, whether one grid was given, and dim."""
    try:
        arr = np.asarray(grids, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error("grids", type(grids).__name__, "an array of shape (S, n, n, n) or (S, n, n)") from exc
    shape = f"<array of shape {arr.shape}>"
    if dim is not None and (isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim not in (2, 3)):
        raise error("dim", dim, "2 (pixel grids), 3 (voxel grids) or None (from the grids' shape)")
    if dim is None:
        if arr.ndim == 3 and len(set(arr.shape)) == 1:
            raise error("grids", shape, "an unambiguous shape: with all three sides equal it could be one voxel "
                        "grid or a stack of pixel grids", "pass dim=3 (one voxel grid) or dim=2 (pixel grids)")
        dim = {2: 2, 3: 2, 4: 3}.get(arr.ndim)
        if dim is None:
            raise error("grids", shape, "shape (S, n, n, n) or (S, n, n), or one grid (n, n, n) or (n, n)")
    single = arr.ndim == dim
    arr = arr[None] if single else arr
    if arr.ndim != dim + 1 or len(set(arr.shape[1:])) != 1 or arr.shape[1] < 1:
        raise error("grids", shape, f"{dim}D cubic (square) grids, (S,) + (n,)*{dim} or (n,)*{dim}",
                    "pass grids as vaepipe.features.voxel_grid writes them")
    if arr.size and not np.all(np.isfinite(arr)):
        raise error("grids", "<array with NaN or inf>", "finite values", "check the decoder's output")
    return arr, single, int(dim)


def _init(init, num: int, n_particles: int, dim: int, box_length: float, single: bool) -> np.ndarray:
    try:
        arr = np.asarray(init, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error("init", type(init).__name__, "an array of positions (S, N, dim) or (N, dim)") from exc
    want = (n_particles, dim) if single else (num, n_particles, dim)
    if arr.shape != want:
        raise error("init", f"<array of shape {arr.shape}>", f"shape {want}, one position per fitted particle")
    if arr.size and (not np.all(np.isfinite(arr)) or arr.min() < 0.0 or arr.max() > box_length):
        raise error("init", "<array with coordinates outside the box>",
                    f"finite coordinates inside [0, box_length={box_length:g}] (sigma)")
    return arr.reshape(num, n_particles, dim)


# --------------------------------------------------------------------------- the forward model


class _Model:
    """The separable forward model of voxel_grid(method="gaussian", normalize="none") and its derivatives."""

    def __init__(self, n: int, dim: int, box_length: float, width: float, periodic: tuple[bool, ...]):
        self.n, self.dim, self.box_length, self.width, self.periodic = n, dim, box_length, width, periodic

    def weights(self, x: np.ndarray, slopes: bool = True):
        """(S, N, dim) positions -> per axis (S, N, n) cell weights, and their derivatives by the coordinate."""
        pairs = [self.axis(x[..., a], a, slopes) for a in range(self.dim)]
        return [w for w, _ in pairs], [d for _, d in pairs]

    def axis(self, x: np.ndarray, a: int, slopes: bool = True):
        """Coordinates (...) along axis a -> (..., n) cell weights (the operations of
        vaepipe.features._axis_cell_weights, in the same order) and, with slopes, their derivatives (else None)."""
        n, scale = self.n, math.sqrt(2.0) * self.width
        images = _IMAGES if self.periodic[a] else 0
        edges = np.arange(-images * n, (images + 1) * n + 1) * (self.box_length / n)
        z = (edges - x[..., None]) / scale
        raw = np.diff(erf(z), axis=-1)
        if images:
            raw = raw.reshape(x.shape + (2 * images + 1, n)).sum(axis=-2)
        total = raw.sum(axis=-1, keepdims=True)
        w = raw / total
        if not slopes:
            return w, None
        # d/dx erf((e - x) / (sqrt(2) width)) = -sqrt(2 / pi) / width * exp(-z^2)
        draw = np.diff(np.exp(-z * z), axis=-1) * (-math.sqrt(2.0 / math.pi) / self.width)
        if images:
            draw = draw.reshape(x.shape + (2 * images + 1, n)).sum(axis=-2)
        # the renormalization at walls: d(raw / total) = (draw - w dtotal) / total
        return w, (draw - w * draw.sum(axis=-1, keepdims=True)) / total

    @staticmethod
    def outer_rest(ws):
        """(S, N, n^(dim-1)): each particle's weights along every axis but the first, as one flat outer product."""
        rest = ws[1]
        for w in ws[2:]:
            rest = (rest[..., :, None] * w[..., None, :]).reshape(rest.shape[:2] + (-1,))
        return rest

    def render(self, ws):
        """(S, n, n^(dim-1)) unnormalized grids: sum over particles of the outer products of their weights."""
        return np.matmul(np.swapaxes(ws[0], 1, 2), self.outer_rest(ws))

    def gradient(self, ws, dws, r):
        """(S, N, dim): the derivative of <G(x), r> by each coordinate, for residuals r (S, n, n^(dim-1))."""
        g = np.empty(ws[0].shape[:2] + (self.dim,))
        g[..., 0] = np.einsum("spi,spi->sp", np.matmul(self.outer_rest(ws), np.swapaxes(r, 1, 2)), dws[0])
        rx = np.matmul(ws[0], r)  # (S, N, n^(dim-1)): r contracted with each particle's x weights
        if self.dim == 2:
            g[..., 1] = np.einsum("spj,spj->sp", rx, dws[1])
        else:
            rx = rx.reshape(rx.shape[:2] + (self.n, self.n))
            g[..., 1] = np.einsum("spj,spj->sp", np.matmul(rx, ws[2][..., None])[..., 0], dws[1])
            g[..., 2] = np.einsum("spk,spk->sp", np.matmul(ws[1][..., None, :], rx)[..., 0, :], dws[2])
        return g

    def gauss_newton(self, ws, dws):
        """(S, N dim, N dim): J^T J of the unnormalized model, entry by entry a product over axes of the inner
        products of 1D weights and slopes (the model is separable)."""
        def inner(u, v):  # per axis, (S, N, N): <u_p, v_q> for particles p, q
            return [np.matmul(ua, np.swapaxes(va, 1, 2)) for ua, va in zip(u, v)]

        gram, mixed, slope = inner(ws, ws), inner(dws, ws), inner(dws, dws)
        num, count, dim = ws[0].shape[0], ws[0].shape[1], self.dim
        h = np.empty((num, count, dim, count, dim))
        for a, b in itertools.product(range(dim), repeat=2):
            h[:, :, a, :, b] = slope[a] if a == b else mixed[a] * np.swapaxes(mixed[b], 1, 2)
            for c in set(range(dim)) - {a, b}:
                h[:, :, a, :, b] *= gram[c]
        return h.reshape(num, count * dim, count * dim)

    def keep_inside(self, x: np.ndarray) -> np.ndarray:
        """x, in place: wrapped into [0, L) along periodic axes, clipped to [0, L] at walls."""
        for a in range(self.dim):
            x[..., a] = np.mod(x[..., a], self.box_length) if self.periodic[a] else x[..., a].clip(0, self.box_length)
        return x


# --------------------------------------------------------------------------- the fit


def _amplitude(g: np.ndarray, y: np.ndarray, normalize: str) -> np.ndarray:
    if normalize == "none":
        return np.ones(g.shape[0])
    # > 0 for any sensible grid; the floor keeps a blank or negative grid from a zero or negative amplitude
    return np.maximum(np.einsum("sij,sij->s", g, y) / np.einsum("sij,sij->s", g, g), 1e-12)


def _peak(model: _Model, residual: np.ndarray) -> np.ndarray:
    """(S, dim) position of each residual's (S, n^dim) maximum, refined inside its cell: along each axis, the
    position (of _SUBCELL + 1 across the cell) whose deposit's weights in the 3 cells around the peak are most
    nearly proportional to the profile of the positive residual there (summed over the other axes). The model's
    own weights see walls (a particle on a wall peaks in the wall cell) and periodic axes."""
    num, n, dim = residual.shape[0], model.n, model.dim
    periodic = np.array(model.periodic)
    peak = np.stack(np.unravel_index(np.argmax(residual, axis=1), (n,) * dim), axis=-1)
    cells = peak[:, None, :] + np.array(list(itertools.product((-1, 0, 1), repeat=dim)))
    inside = np.all(periodic | ((cells >= 0) & (cells < n)), axis=-1)
    index = np.ravel_multi_index(tuple(np.moveaxis(np.where(periodic, np.mod(cells, n), np.clip(cells, 0, n - 1)),
                                                   -1, 0)), (n,) * dim)
    block = np.where(inside, np.take_along_axis(residual, index, axis=1), 0.0).clip(min=0.0)
    block = block.reshape((num,) + (3,) * dim)
    shifts = np.linspace(0.0, 1.0, _SUBCELL + 1)
    x = np.empty((num, dim))
    for a in range(dim):
        profile = block.sum(axis=tuple(1 + b for b in range(dim) if b != a))  # (S, 3)
        candidates = (peak[:, a, None] + shifts) * (model.box_length / n)  # (S, K)
        near = peak[:, a, None] + np.arange(-1, 2)  # (S, 3)
        w, _ = model.axis(candidates, a, slopes=False)
        w = np.take_along_axis(w, np.broadcast_to(np.mod(near, n)[:, None, :], w.shape[:2] + (3,)), axis=2)
        w = np.where((periodic[a] | ((near >= 0) & (near < n)))[:, None, :], w, 0.0)
        # least squares with a free scale: the best candidate maximizes <w, profile>^2 / <w, w>
        score = np.einsum("skc,sc->sk", w, profile) ** 2 / np.einsum("skc,skc->sk", w, w)
        x[:, a] = np.take_along_axis(candidates, np.argmax(score, axis=1)[:, None], axis=1)[:, 0]
    return model.keep_inside(x)


def _greedy(model: _Model, y: np.ndarray, n_particles: int, normalize: str) -> np.ndarray:
    """(S, N, dim) starting positions: N times a particle at the residual's peak, whose deposit, scaled to the
    amplitude estimate sum(grid) / N, is then subtracted."""
    num = y.shape[0]
    residual = y.reshape(num, -1).copy()
    amplitude = np.ones(num) if normalize == "none" else residual.sum(axis=1) / n_particles
    amplitude = np.where(amplitude > 0, amplitude, residual.max(axis=1).clip(min=0))
    x = np.empty((num, n_particles, model.dim))
    for p in range(n_particles):
        x[:, p] = _peak(model, residual)
        ws, _ = model.weights(x[:, p:p + 1], slopes=False)
        residual -= amplitude[:, None] * model.render(ws).reshape(num, -1)
    return x


def _fit(model: _Model, y: np.ndarray, x: np.ndarray, normalize: str, max_iter: int, tol: float,
         repairs: int):
    """Steps 2 and 3 of the module's docstring: Levenberg-Marquardt, then repair moves while they pay."""
    norm = np.einsum("sij,sij->s", y, y)
    x, amplitude, loss, iterations = _levenberg_marquardt(model, y, x, normalize, np.full(len(y), max_iter), tol)
    trying = np.flatnonzero((loss > _EXACT * norm) & (norm > 0)) if max_iter else np.zeros(0, dtype=np.int64)
    for _ in range(min(x.shape[1], repairs)):
        if trying.size == 0:
            break
        moved = _jump(model, y[trying], x[trying], amplitude[trying])
        tx, tamp, tloss, its = _levenberg_marquardt(model, y[trying], moved, normalize,
                                                    np.full(trying.size, max_iter), tol)
        iterations[trying] += its
        better = tloss < loss[trying] * (1.0 - tol)
        took = trying[better]
        x[took], amplitude[took], loss[took] = tx[better], tamp[better], tloss[better]
        trying = took[loss[took] > _EXACT * norm[took]]
    residual = np.divide(loss, norm, out=np.full_like(loss, np.inf), where=norm > 0)
    return x, residual, amplitude, iterations


def _jump(model: _Model, y: np.ndarray, x: np.ndarray, amplitude: np.ndarray) -> np.ndarray:
    """Positions with one particle per grid moved: the one whose deposit the grid supports least (the largest
    share of it over-predicted) goes to the peak of the under-predicted residual."""
    ws, _ = model.weights(x, slopes=False)
    over = amplitude[:, None, None] * model.render(ws) - y
    # <G_p, over> / (a <G_p, G_p>) for each particle's own deposit G_p, axis by axis as G_p is an outer product
    share = np.einsum("spi,spi->sp", np.matmul(model.outer_rest(ws), np.swapaxes(over, 1, 2)), ws[0])
    share /= amplitude[:, None] * np.prod([np.einsum("spi,spi->sp", w, w) for w in ws], axis=0)
    moved = x.copy()
    moved[np.arange(len(x)), np.argmax(share, axis=1)] = _peak(model, -over.reshape(len(x), -1))
    return moved


def _levenberg_marquardt(model: _Model, y: np.ndarray, x: np.ndarray, normalize: str, budget: np.ndarray,
                         tol: float):
    """All grids at once, each with its own damping and iteration budget; a grid that is done leaves the working
    arrays. Returns positions, amplitudes, squared residuals and iterations used, per grid."""
    num = y.shape[0]
    ws, dws = model.weights(x)
    g = model.render(ws)
    amplitude = _amplitude(g, y, normalize)
    r = amplitude[:, None, None] * g - y
    loss = np.einsum("sij,sij->s", r, r)
    limit = _EXACT * np.einsum("sij,sij->s", y, y)
    out = [x.copy(), amplitude, loss.copy()]
    iterations = np.zeros(num, dtype=np.int64)
    # the working set: grid index, positions, grid, residual, amplitude, loss, limit, budget, damping, weights
    work = [np.arange(num), x, y, r, amplitude, loss, limit, budget, np.full(num, _DAMPING_START), *ws, *dws]
    keep = (loss > limit) & (limit > 0) & (budget > 0)  # a blank grid (limit 0) has nothing to fit
    dim = model.dim
    while True:
        work = [a[keep] for a in work]
        idx, x, y, r, amplitude, loss, limit, budget, damping = work[:9]
        if idx.size == 0:
            return (*out, iterations)
        ws, dws = work[9:9 + dim], work[9 + dim:]
        hess = model.gauss_newton(ws, dws)
        grad = model.gradient(ws, dws, r).reshape(idx.size, -1)
        diag = np.einsum("sii->si", hess)
        diag = np.maximum(diag, 1e-12 * diag.max(axis=1, keepdims=True)) + np.finfo(float).tiny
        system = hess + (damping[:, None] * diag)[..., None] * np.eye(hess.shape[1])
        step = np.linalg.solve(system, -grad[..., None])[..., 0] / amplitude[:, None]
        # a step past a deposit's width leaves the region where the local model means anything
        trial = model.keep_inside(x + np.clip(step, -model.width, model.width).reshape(x.shape))
        tws, tdws = model.weights(trial)
        tg = model.render(tws)
        tamp = _amplitude(tg, y, normalize)
        tr = tamp[:, None, None] * tg - y
        tloss = np.einsum("sij,sij->s", tr, tr)
        better = tloss < loss
        gain = (loss - tloss) / np.where(loss > 0, loss, 1.0)
        for old, new in zip([x, r, amplitude, loss, *ws, *dws], [trial, tr, tamp, tloss, *tws, *tdws]):
            old[better] = new[better]
        damping[:] = np.maximum(damping * np.where(better, 1.0 / _DAMPING_DOWN, _DAMPING_UP), _DAMPING_MIN)
        iterations[idx] += 1
        done = ((better & (gain < tol)) | (loss <= limit) | (damping > _DAMPING_GIVE_UP)
                | (iterations[idx] >= budget))
        for a, b in zip(out, [x, amplitude, loss]):
            a[idx[done]] = b[done]
        keep = ~done
