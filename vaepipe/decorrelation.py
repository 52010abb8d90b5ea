"""Correlation analysis of a scalar Monte Carlo time series.

The preliminary run of every state point records the potential energy after each
sweep; this module turns that trace into the numbers the sampling run needs:

* :func:`detect_equilibration` -- where the initial transient ends (Chodera 2016),
* :func:`decorrelation_time` -- sweeps between stored configurations (the seed's
  "autocorrelation below 10 %" criterion),
* :func:`statistical_inefficiency` / :func:`integrated_autocorrelation_time` --
  how many sweeps one independent sample is worth,
* :func:`block_average` -- a mean with an error bar that accounts for correlation
  (Flyvbjerg-Petersen blocking).

Conventions (shared by every function here)
-------------------------------------------
A series ``x`` is a 1-D array of ``n`` finite floats, one value per sweep (or per
recorded interval; all times below are in units of that spacing). ``dx = x - mean(x)``.

The normalized autocorrelation function is the estimator used by pymbar::

    acf[k] = [ 1/(n-k) * sum_{t=0}^{n-k-1} dx[t] dx[t+k] ]  /  [ 1/n * sum_t dx[t]**2 ]

i.e. each lag's covariance is averaged over the ``n - k`` pairs that exist
(no extra ``(n-k)/n`` shrinkage towards zero), divided by the maximum-likelihood
(1/n) variance, so ``acf[0] == 1`` exactly. It is noisy at lags close to ``n``,
which is why :func:`autocorrelation` stops at ``n // 2`` by default.

The statistical inefficiency follows Chodera et al. (J. Chem. Theory Comput. 3, 26
(2007)) and pymbar's ``statistical_inefficiency``::

    g = 1 + 2 * sum_{t=1}^{T-1} (1 - t/n) acf[t],   g := max(g, 1)

where ``T`` is the first lag ``t > mintime`` (default 3) with ``acf[t] <= 0``.
``g`` is the number of sweeps per effectively independent sample, so the number
of independent samples is ``n_eff = n / g`` and the standard error of the mean is
``std(x) * sqrt(g / n)``. ``tau_int = (g - 1) / 2`` (the convention in which
``tau_int = 0`` for white noise; some texts use ``g / 2`` instead).

Everything is pure NumPy (no SciPy import, which costs a second on a busy
machine); autocorrelations are computed by zero-padded FFT in O(n log n).
"""

from __future__ import annotations

import math
import operator
import warnings

import numpy as np

__all__ = [
    "MIN_POINTS",
    "autocorrelation",
    "decorrelation_time",
    "statistical_inefficiency",
    "integrated_autocorrelation_time",
    "detect_equilibration",
    "blocking_levels",
    "block_average",
]

#: Fewest points any analysis here accepts. Below this the variance and the first
#: few autocorrelation lags are too noisy for any of the estimates to mean much.
MIN_POINTS = 16


# --------------------------------------------------------------------------- validation


def _as_series(x, name: str = "x") -> np.ndarray:
    """Return ``x`` as a 1-D float64 array, or raise ValueError saying what is wrong."""
    if np.iscomplexobj(x):
        # float64 conversion would silently drop the imaginary part.
        raise ValueError(f"{name} must be real, got complex values; pass x.real or abs(x) explicitly.")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name} must be a 1-D array of real numbers (one value per sweep); "
            f"could not convert the given {type(x).__name__} to float64: {exc}"
        ) from exc
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D time series of shape (n,), got an array of shape {arr.shape}. "
            "Pass a single observable, e.g. the energy trace of one chain; analyse chains "
            "one at a time (or flatten deliberately if that is what you mean)."
        )
    if arr.size < MIN_POINTS:
        raise ValueError(
            f"{name} has {arr.size} points; at least {MIN_POINTS} are needed to estimate "
            "correlations. Run more sweeps (or record the observable more often)."
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf), the first at "
            f"index {first} ({arr[first]!r}). Expected only finite numbers; check the run that "
            "produced the series (overlapping particles give inf energies) or drop those entries."
        )
    return arr


def _check_variance(dx: np.ndarray, name: str = "x") -> float:
    """Return the 1/n variance of the centred series ``dx``; ValueError if it is zero."""
    var = _sum_of_squares(dx) / dx.size
    if var == 0.0:
        raise ValueError(
            f"{name} has zero variance (all {dx.size} values are equal), so it has no "
            "autocorrelation. For a Monte Carlo energy trace this usually means every move "
            "was rejected (step_size too large, or a jammed/frozen system): check "
            "acceptance_rate and step_size before analysing the trace."
        )
    return var


def _sum_of_squares(dx: np.ndarray) -> float:
    # Not np.dot: multithreaded BLAS spin-waits on a machine whose cores are busy and
    # then takes milliseconds for a 20k-element dot product. np.sum is pairwise, so
    # also more accurate.
    return float(np.sum(dx * dx))


def _as_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got the bool {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}.") from None


# --------------------------------------------------------------------------- core kernels


def _fft_length(min_length: int) -> int:
    """Smallest 2^a 3^b 5^c >= min_length: sizes pocketfft transforms fastest."""
    best = 1 << max(0, (min_length - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            candidate = p35
            while candidate < min_length:
                candidate *= 2
            best = min(best, candidate)
            p35 *= 3
        p5 *= 5
    return best


def _lag_sums(dx: np.ndarray, max_lag: int) -> np.ndarray:
    """``sum_t dx[t] dx[t+k]`` for k = 0..max_lag, by FFT in O(n log n).

    The FFT length is at least 2n - 1 so the circular correlation that the FFT
    computes equals the linear one at every lag (no wrap-around).
    """
    n = dx.size
    nfft = _fft_length(2 * n - 1)
    spectrum = np.fft.rfft(dx, nfft)
    return np.fft.irfft(spectrum.real**2 + spectrum.imag**2, nfft)[: max_lag + 1]


def _acf_centered(dx: np.ndarray, max_lag: int) -> np.ndarray:
    """acf[0..max_lag] of an already centred, non-constant series (module convention)."""
    n = dx.size
    var = _sum_of_squares(dx) / n
    acf = _lag_sums(dx, max_lag) / (n - np.arange(max_lag + 1)) / var
    acf[0] = 1.0  # exact by definition; FFT round-off would otherwise leave ~1e-16
    return acf


def _g_centered(dx: np.ndarray, mintime: int) -> float:
    """Statistical inefficiency of a centred, non-constant series (module convention)."""
    n = dx.size
    # pymbar sums lags 1 .. n-2; the last lag has a single pair and is pure noise.
    sums = _lag_sums(dx, n - 2)
    # acf[t] has the sign of sums[t] (positive normalisation), so the cut-off is found
    # on the raw sums and only the lags actually summed get normalised: this function
    # runs ~150 times per detect_equilibration call.
    nonpositive = np.flatnonzero(sums[mintime + 1 :] <= 0.0)
    end = mintime + 1 + int(nonpositive[0]) if nonpositive.size else n - 1
    lags = np.arange(1, end)
    var = _sum_of_squares(dx) / n
    acf = sums[1:end] / (n - lags) / var
    g = 1.0 + 2.0 * float(np.sum((1.0 - lags / n) * acf))
    # Anticorrelated or noise-dominated series can give g < 1; a series cannot hold
    # more independent samples than points, so clamp like pymbar does.
    return max(g, 1.0)


# --------------------------------------------------------------------------- public API


def autocorrelation(x, max_lag: int | None = None) -> np.ndarray:
    """Normalized autocorrelation function of a scalar series, by FFT.

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite time series, n >= ``MIN_POINTS`` (16), not constant.
    max_lag : int, optional
        Largest lag returned, 1 <= max_lag <= n - 1. Default ``n // 2``: beyond that
        fewer than half the pairs contribute and the estimate is mostly noise.

    Returns
    -------
    acf : ndarray, shape (max_lag + 1,)
        ``acf[k]`` for k = 0..max_lag with ``acf[0] == 1``; estimator as in the
        module docstring (per-lag average over the n - k pairs, divided by the 1/n
        variance), the one :func:`statistical_inefficiency` sums. Values can
        slightly exceed 1 in magnitude at large lags, since this estimator is not
        positive semi-definite.

    Raises
    ------
    ValueError
        If ``x`` is not a finite 1-D series of at least 16 points, is constant, or
        ``max_lag`` is out of range.
    """
    arr = _as_series(x)
    n = arr.size
    if max_lag is None:
        max_lag = n // 2
    else:
        max_lag = _as_int(max_lag, "max_lag")
        if not 1 <= max_lag <= n - 1:
            raise ValueError(
                f"max_lag must satisfy 1 <= max_lag <= n - 1 = {n - 1} for a series of "
                f"{n} points, got {max_lag}. Pass a smaller max_lag or None for n // 2."
            )
    dx = arr - arr.mean()
    _check_variance(dx)
    return _acf_centered(dx, max_lag)


def decorrelation_time(x, threshold: float = 0.1, *, max_lag: int | None = None) -> int:
    """First lag at which the autocorrelation falls below ``threshold``.

    This is the seed project's criterion for the spacing of stored configurations:
    successive samples are taken ``decorrelation_time(energies)`` sweeps apart, when
    the energy autocorrelation has dropped below 10 %.

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite, non-constant series, n >= 16; in practice the equilibrated part of a
        preliminary run (``x[t0:]`` from :func:`detect_equilibration`).
    threshold : float
        In (0, 1). Default 0.1.
    max_lag : int, optional
        Largest lag searched, as in :func:`autocorrelation` (default n // 2).

    Returns
    -------
    int
        Smallest k >= 1 with ``autocorrelation(x)[k] < threshold``, in units of the
        series spacing (sweeps for a per-sweep trace).

    Raises
    ------
    ValueError
        If the autocorrelation stays at or above ``threshold`` for all lags up to
        ``max_lag``, or for invalid input.

    Notes
    -----
    Subtracting the sample mean biases every lag of the estimated acf down by
    about g / n, and its noise is ~ sqrt(g / n); a series only a few correlation
    times long can therefore appear to decorrelate too early. Trust the result when it is small compared with n
    (say n > 50 * result); :func:`statistical_inefficiency` gives the same check
    through ``n / g``.
    """
    threshold = float(threshold)
    if not 0.0 < threshold < 1.0:
        raise ValueError(
            f"threshold must lie strictly between 0 and 1 (a fraction of acf[0] = 1), got "
            f"{threshold}. The seed's criterion is 0.1."
        )
    arr = _as_series(x)
    acf = autocorrelation(arr, max_lag)
    below = np.flatnonzero(acf[1:] < threshold)
    if below.size == 0:
        raise ValueError(
            f"the autocorrelation of the {arr.size}-point series never drops below "
            f"threshold={threshold} within the {acf.size - 1} lags examined (its minimum "
            f"there is {acf[1:].min():.3g}). The series is too short for its "
            "correlation time: make the preliminary run longer (many times the expected "
            "decorrelation time) and make sure the initial transient was discarded."
        )
    return int(below[0]) + 1


def statistical_inefficiency(x, mintime: int = 3) -> float:
    """Statistical inefficiency ``g = 1 + 2 tau_int`` of a series (Chodera / pymbar).

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite, non-constant series, n >= 16.
    mintime : int
        Lags ``t <= mintime`` are always summed even if ``acf[t] <= 0`` (pymbar's
        default 3), so that one noisy early lag does not end the sum too soon.

    Returns
    -------
    g : float
        ``1 + 2 sum_{t=1}^{T-1} (1 - t/n) acf[t]``, with T the first lag > mintime at
        which ``acf[t] <= 0`` (see the module docstring), clamped to ``g >= 1``.
        Units: series spacings per independent sample; ``n / g`` is the effective
        sample size.
    """
    arr = _as_series(x)
    mintime = _as_int(mintime, "mintime")
    if mintime < 0:
        raise ValueError(f"mintime must be >= 0 (pymbar uses 3), got {mintime}.")
    dx = arr - arr.mean()
    _check_variance(dx)
    return _g_centered(dx, mintime)


def integrated_autocorrelation_time(x) -> float:
    """Integrated autocorrelation time ``tau_int = (g - 1) / 2``.

    With this convention white noise has ``tau_int = 0`` and an AR(1) process with
    coefficient phi has ``tau_int = phi / (1 - phi)``. Same input rules and units as
    :func:`statistical_inefficiency`.
    """
    return (statistical_inefficiency(x) - 1.0) / 2.0


def detect_equilibration(x, nskip: int = 1, *, coarse_candidates: int | None = 1000) -> tuple[int, float, float]:
    """Start of the equilibrated region by maximising the effective sample size.

    Chodera, J. Chem. Theory Comput. 12, 1799 (2016): for each candidate start
    ``t0``, ``g(t0) = statistical_inefficiency(x[t0:])`` and
    ``n_eff(t0) = (n - t0) / g(t0)``; the equilibrated region begins at the ``t0``
    with the largest ``n_eff``. A transient inflates ``g`` (it looks like a very slow
    correlation), so discarding it pays off until the cost of throwing away good
    data wins.

    Candidates are the multiples of ``nskip`` in ``[0, n - 16]`` (every tail keeps at
    least ``MIN_POINTS`` points). Computing ``g`` costs O(n log n), so an exhaustive
    search is O(n^2 log n / nskip); instead the search is coarse-to-fine and fully
    deterministic:

    1. evaluate about ``coarse_candidates`` equally spaced candidates (spacing a
       multiple of ``nskip``);
       plus a geometric grid between ``nskip`` and that spacing (transients sit at the start);
    2. around the best one so far (ties: the earliest), evaluate the window
       ``best +- spacing`` at an 8x finer spacing, and repeat until the spacing is
       ``nskip``.

    That is ~1000 + 17 * log8(n / 1000) evaluations (about 2-5 s for n = 30 000 on a
    2-core machine) instead of n. ``n_eff(t0)`` after the transient is a noisy
    plateau with narrow spikes (``g`` of a slow observable is itself noisy), so a
    coarse first pass of fewer candidates can miss the best start by thousands of
    points; 1000 keeps the grid spacing below typical transients. Pass
    ``coarse_candidates=None`` for the exhaustive pymbar-style scan.

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite, non-constant series, n >= 16 (e.g. energy per sweep from the start
        of a preliminary run).
    nskip : int
        Spacing of the finest candidate grid, >= 1.
    coarse_candidates : int or None
        Number of candidates in the first, coarse pass (>= 2), or None for all.

    Returns
    -------
    t0 : int
        Index of the first equilibrated point; use ``x[t0:]``.
    g : float
        Statistical inefficiency of ``x[t0:]``.
    n_eff : float
        ``(n - t0) / g``, effectively independent samples in ``x[t0:]``.
    """
    arr = _as_series(x)
    n = arr.size
    _check_variance(arr - arr.mean())
    nskip = _as_int(nskip, "nskip")
    if nskip < 1:
        raise ValueError(f"nskip must be an integer >= 1 (candidate spacing in points), got {nskip}.")
    if coarse_candidates is not None:
        coarse_candidates = _as_int(coarse_candidates, "coarse_candidates")
        if coarse_candidates < 2:
            raise ValueError(f"coarse_candidates must be >= 2 or None (exhaustive search), got {coarse_candidates}.")

    last = ((n - MIN_POINTS) // nskip) * nskip
    cache: dict[int, tuple[float, float]] = {}

    def evaluate(t0: int) -> tuple[float, float]:
        if t0 not in cache:
            tail = arr[t0:]
            dtail = tail - tail.mean()
            if _sum_of_squares(dtail) == 0.0:
                # A frozen tail holds one independent sample however long it is
                # (pymbar's convention); it must not look like a perfect one.
                g = float(tail.size)
            else:
                g = _g_centered(dtail, mintime=3)
            cache[t0] = (g, tail.size / g)
        return cache[t0]

    n_grid = last // nskip + 1
    if coarse_candidates is None or n_grid <= coarse_candidates:
        step, lo, hi = nskip, 0, last
    else:
        step = nskip * math.ceil(n_grid / coarse_candidates)
        lo, hi = 0, last
        # Transients sit at the start, where a uniform grid is coarsest relative to them: add a geometric grid
        # so that a short transient is not rounded up to the first uniform candidate past a noisy plateau.
        for t0 in np.unique(np.geomspace(nskip, max(nskip, step), num=min(coarse_candidates, 32)).astype(int)):
            evaluate(int(t0) // nskip * nskip)
    while True:
        for t0 in range(lo, hi + 1, step):
            evaluate(t0)
        # Best over everything seen so far, earliest on ties, so refinement never
        # returns something worse than an earlier pass found.
        best = max(cache, key=lambda t: (cache[t][1], -t))
        if step == nskip:
            break
        lo, hi = max(0, best - step), min(last, best + step)
        step = nskip * max(1, (step // nskip) // 8)

    g, n_eff = cache[best]
    return int(best), float(g), float(n_eff)


def blocking_levels(x) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flyvbjerg-Petersen blocking table of a series.

    Level 0 is the series itself; each further level averages neighbouring pairs of
    the previous one, dropping a trailing odd element (Flyvbjerg & Petersen,
    J. Chem. Phys. 91, 461 (1989)). Levels continue while at least 2 blocks remain.

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite, non-constant series, n >= 16.

    Returns
    -------
    block_size : ndarray of int, shape (L,)
        Points per block, ``2**level``.
    num_blocks : ndarray of int, shape (L,)
        Blocks at each level.
    sem : ndarray, shape (L,)
        Standard error of the mean if the m block means b were independent:
        ``sqrt(sum((b - mean(b))**2) / (m (m - 1)))``. Rises with level and plateaus
        at the true SEM once blocks are much longer than the correlation time.
    sem_error : ndarray, shape (L,)
        Its own one-sigma uncertainty, ``sem / sqrt(2 (num_blocks - 1))``.
    """
    arr = _as_series(x)
    _check_variance(arr - arr.mean())
    sizes, counts, sems = [], [], []
    blocks = arr
    size = 1
    while blocks.size >= 2:
        m = blocks.size
        d = blocks - blocks.mean()
        sizes.append(size)
        counts.append(m)
        sems.append(math.sqrt(_sum_of_squares(d) / m / (m - 1)))
        half = m // 2
        blocks = 0.5 * (blocks[: 2 * half : 2] + blocks[1 : 2 * half : 2])
        size *= 2
    num_blocks = np.asarray(counts, dtype=np.int64)
    sem = np.asarray(sems)
    return np.asarray(sizes, dtype=np.int64), num_blocks, sem, sem / np.sqrt(2.0 * (num_blocks - 1))


def block_average(x, min_blocks: int = 16) -> tuple[float, float]:
    """Mean of a correlated series and its standard error by blocking.

    The block level is chosen by the rule of Lee et al., Phys. Rev. E 83, 066706
    (2011), Eq. 14 (also Wolff, Comput. Phys. Commun. 156, 143 (2004); pyblock's
    ``find_optimal_block``): the smallest block size B with

        B**3 > 2 n (sem_B / sem_1)**4,

    where ``(sem_B / sem_1)**2`` estimates g. It balances the bias of blocks that are
    too short (~ tau / B) against the noise of too few blocks (~ sqrt(B / n)). For
    white noise this is B ~ (2n)**(1/3) and the SEM is std/sqrt(n); for correlated
    data it reaches the plateau std * sqrt(g / n). The choice depends only on the
    data, so it is deterministic.

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite, non-constant series, n >= 16.
    min_blocks : int
        Fewest blocks allowed at the chosen level (>= 2). Fewer blocks would give an
        error bar whose own relative error exceeds ``1 / sqrt(2 (min_blocks - 1))``.

    Returns
    -------
    mean : float
        ``mean(x)`` over all n points (blocking only drops points for the error).
    sem : float
        Standard error of the mean, same units as ``x``.

    Warns
    -----
    RuntimeWarning
        If no level with at least ``min_blocks`` blocks satisfies the criterion; the
        deepest such level is used, and its SEM is then likely an underestimate
        because the series is too short for its correlation time.
    """
    arr = _as_series(x)
    min_blocks = _as_int(min_blocks, "min_blocks")
    if min_blocks < 2:
        raise ValueError(f"min_blocks must be >= 2 (a variance needs two blocks), got {min_blocks}; 16 is the default.")
    block_size, num_blocks, sem, _ = blocking_levels(arr)
    allowed = np.flatnonzero(num_blocks >= min_blocks)
    if allowed.size == 0:
        raise ValueError(
            f"x has {arr.size} points, fewer than min_blocks={min_blocks}; lower min_blocks "
            "or provide a longer series."
        )
    n = arr.size
    good = [level for level in allowed if float(block_size[level]) ** 3 > 2.0 * n * (sem[level] / sem[0]) ** 4]
    if good:
        level = good[0]
    else:
        level = allowed[-1]
        warnings.warn(
            f"block_average: no blocking level with at least {min_blocks} blocks satisfies "
            f"B^3 > 2 n g^2 (n = {n}, estimated g >= {(sem[level] / sem[0]) ** 2:.3g}); using block "
            f"size {block_size[level]} ({num_blocks[level]} blocks), whose SEM is probably an "
            "underestimate. Run longer: the series must span many more correlation times.",
            RuntimeWarning,
            stacklevel=2,
        )
    return float(arr.mean()), float(sem[level])
