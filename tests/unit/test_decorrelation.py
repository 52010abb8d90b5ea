"""Tests of vaepipe.decorrelation against analytic results for Gaussian AR(1) processes.

For x_t = phi x_{t-1} + e_t with unit-variance white noise e_t, started in its
stationary distribution:
    acf[k] = phi**k,  var(x) = 1 / (1 - phi**2),
    g = 1 + 2 sum_k phi**k = (1 + phi) / (1 - phi),  tau_int = phi / (1 - phi),
    SEM of the mean of n points ~ sqrt(var(x) * g / n).
All series are seeded, so every test is deterministic; the tolerances are about 3-5
standard deviations of the estimators (their spread was measured over 15-60 other
seeds when the tolerances were set), not tuned to the seeds used here.
"""

import math

import numpy as np
import pytest

from vaepipe.decorrelation import (
    MIN_POINTS,
    autocorrelation,
    block_average,
    blocking_levels,
    decorrelation_time,
    detect_equilibration,
    integrated_autocorrelation_time,
    statistical_inefficiency,
)

N_LONG = 200_000
PHIS = (0.5, 0.8, 0.9)


def ar1(phi, n, seed, chunk=64):
    """Stationary AR(1) series, shape (n,), unit innovation variance.

    NumPy only (scipy.signal.lfilter would do, but importing it costs seconds on a
    busy machine): within a chunk of `chunk` steps the response to the noise is a
    lower-triangular Toeplitz product; the state is carried from chunk to chunk.
    """
    noise = np.random.default_rng(seed).standard_normal(n)
    noise[0] /= math.sqrt(1.0 - phi**2)  # x_0 drawn from the stationary law
    num_chunks = -(-n // chunk)
    noise = np.concatenate([noise, np.zeros(num_chunks * chunk - n)]).reshape(num_chunks, chunk)
    j = np.arange(chunk)
    lag = j[:, None] - j[None, :]
    kernel = np.where(lag >= 0, float(phi) ** np.maximum(lag, 0), 0.0)
    local = noise @ kernel.T
    carry_gain = float(phi) ** (j + 1)
    x = np.empty_like(local)
    previous = 0.0
    for c in range(num_chunks):
        x[c] = local[c] + carry_gain * previous
        previous = x[c, -1]
    return x.ravel()[:n]


def test_ar1_generator_follows_its_recursion():
    phi = 0.7
    x = ar1(phi, 300, seed=0)
    noise = np.random.default_rng(0).standard_normal(300)
    np.testing.assert_allclose(x[0], noise[0] / math.sqrt(1 - phi**2), rtol=1e-14)
    np.testing.assert_allclose(x[1:] - phi * x[:-1], noise[1:], rtol=0, atol=1e-12)


def g_exact(phi):
    return (1.0 + phi) / (1.0 - phi)


@pytest.fixture(scope="module")
def long_series():
    cache = {}

    def get(phi):
        if phi not in cache:
            cache[phi] = ar1(phi, N_LONG, seed=20240 + int(100 * phi))
        return cache[phi]

    return get


# --------------------------------------------------------------------------- autocorrelation


def test_fft_acf_matches_direct_sum():
    rng = np.random.default_rng(7)
    x = np.cumsum(rng.standard_normal(257)) + 3.0  # correlated, nonzero mean, odd length
    n = x.size
    dx = x - x.mean()
    var = np.dot(dx, dx) / n
    direct = np.array([np.dot(dx[: n - k], dx[k:]) / (n - k) / var for k in range(n)])
    acf = autocorrelation(x, max_lag=n - 1)
    assert acf.shape == (n,)
    assert acf[0] == 1.0
    np.testing.assert_allclose(acf, direct, rtol=0, atol=1e-12)


def test_acf_default_length_is_half_the_series():
    x = ar1(0.5, 1001, seed=1)
    assert autocorrelation(x).shape == (1001 // 2 + 1,)


@pytest.mark.parametrize("phi", PHIS)
def test_acf_of_ar1_is_geometric(long_series, phi):
    x = long_series(phi)
    lags = np.arange(61)
    acf = autocorrelation(x, max_lag=60)
    # Bartlett's large-lag standard error for AR(1): sqrt((1 + phi^2) / (1 - phi^2) / n).
    tol = 5.0 * math.sqrt((1 + phi**2) / (1 - phi**2) / N_LONG)
    np.testing.assert_allclose(acf, phi**lags, rtol=0, atol=tol)


@pytest.mark.parametrize("phi, n", [(0.5, 200_000), (0.8, 200_000), (0.9, 1_000_000)])
def test_decorrelation_time_of_ar1(phi, n):
    # The answer moves by one lag when the acf error near the crossing reaches
    # ~0.1 |ln phi| (the slope of phi^k there). n is chosen so that this is >= 3.5
    # Bartlett standard deviations; phi = 0.9 at n = 2e5 would be only ~1.5.
    expected = math.ceil(math.log(0.1) / math.log(phi))  # first k with phi^k < 0.1
    assert abs(decorrelation_time(ar1(phi, n, seed=31)) - expected) <= 1


def test_decorrelation_time_threshold_is_respected():
    x = ar1(0.8, 20_000, seed=13)
    acf = autocorrelation(x)
    for threshold in (0.5, 0.2, 0.05):
        k = decorrelation_time(x, threshold)
        assert acf[k] < threshold
        assert np.all(acf[1:k] >= threshold)


# --------------------------------------------------------------------------- statistical inefficiency


def pymbar_style_g(x, mintime=3):
    """Reference: pymbar's lag-by-lag loop, written from Chodera et al. 2007 Eq. 5."""
    n = len(x)
    dx = x - x.mean()
    sigma2 = np.dot(dx, dx) / n
    g = 1.0
    t = 1
    while t < n - 1:
        c = np.dot(dx[: n - t], dx[t:]) / (n - t) / sigma2
        if c <= 0.0 and t > mintime:
            break
        g += 2.0 * c * (1.0 - t / n)
        t += 1
    return max(g, 1.0)


@pytest.mark.parametrize("phi, n", [(0.7, 500), (0.95, 300), (-0.5, 400), (0.0, 64)])
def test_g_matches_lag_by_lag_reference(phi, n):
    x = ar1(phi, n, seed=11)
    assert statistical_inefficiency(x) == pytest.approx(pymbar_style_g(x), rel=1e-10)


def test_g_is_invariant_under_affine_maps():
    x = ar1(0.8, 5000, seed=3)
    assert statistical_inefficiency(-3.0 * x + 1e3) == pytest.approx(statistical_inefficiency(x), rel=1e-9)


@pytest.mark.parametrize("phi", PHIS)
def test_g_of_ar1(long_series, phi):
    x = long_series(phi)
    g = statistical_inefficiency(x)
    # Spread of this estimator at n = 2e5 (60 seeds): 1.8 %, 2.1 %, 3.4 % for
    # phi = 0.5, 0.8, 0.9, with a bias under 1 %.
    assert g == pytest.approx(g_exact(phi), rel=0.12)
    tau = integrated_autocorrelation_time(x)
    assert tau == pytest.approx((g - 1.0) / 2.0, rel=1e-12)
    assert tau == pytest.approx(phi / (1.0 - phi), rel=0.15)


def test_white_noise_has_g_near_one():
    x = np.random.default_rng(5).standard_normal(100_000)
    g = statistical_inefficiency(x)
    assert 1.0 <= g < 1.05
    assert integrated_autocorrelation_time(x) < 0.025


def test_anticorrelated_series_is_clamped_to_one():
    x = ar1(-0.8, 20_000, seed=2)  # sum of acf is (1 - 0.8) / (1 + 0.8) < 1
    assert statistical_inefficiency(x) == 1.0


# --------------------------------------------------------------------------- blocking


def test_white_noise_block_sem():
    x = np.random.default_rng(9).standard_normal(1 << 17)
    mean, sem = block_average(x)
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert sem == pytest.approx(x.std() / math.sqrt(x.size), rel=0.10)


@pytest.mark.parametrize("phi", PHIS)
def test_ar1_block_sem(long_series, phi):
    x = long_series(phi)
    mean, sem = block_average(x)
    sigma_x = 1.0 / math.sqrt(1.0 - phi**2)
    assert mean == pytest.approx(x.mean(), rel=1e-12)
    assert sem == pytest.approx(sigma_x * math.sqrt(g_exact(phi) / N_LONG), rel=0.15)


def test_blocking_levels_table():
    x = ar1(0.5, 1000, seed=4)
    size, count, sem, sem_err = blocking_levels(x)
    # 1000 -> 500 -> 250 -> 125 -> 62 -> 31 -> 15 -> 7 -> 3 (odd leftovers dropped)
    np.testing.assert_array_equal(count, [1000, 500, 250, 125, 62, 31, 15, 7, 3])
    np.testing.assert_array_equal(size, 2 ** np.arange(count.size))
    assert sem[0] == pytest.approx(x.std(ddof=1) / math.sqrt(x.size), rel=1e-12)
    pairs = 0.5 * (x[0::2] + x[1::2])
    assert sem[1] == pytest.approx(pairs.std(ddof=1) / math.sqrt(pairs.size), rel=1e-12)
    np.testing.assert_allclose(sem_err, sem / np.sqrt(2.0 * (count - 1)))


def test_block_average_warns_when_series_is_too_short():
    x = ar1(0.99, 2000, seed=6)  # g ~ 200: no level with >= 16 blocks has reached the plateau
    with pytest.warns(RuntimeWarning, match="underestimate"):
        block_average(x)


# --------------------------------------------------------------------------- equilibration


def test_detect_equilibration_finds_end_of_transient():
    phi, n, tau_transient = 0.9, 20_000, 500.0
    sigma_x = 1.0 / math.sqrt(1.0 - phi**2)
    amplitude = 20.0 * sigma_x
    offset = amplitude * np.exp(-np.arange(n) / tau_transient)
    x = ar1(phi, n, seed=0) + offset
    t0, g, n_eff = detect_equilibration(x)

    # Transient length: time for the offset to fall to one equilibrium standard deviation.
    transient = tau_transient * math.log(amplitude / sigma_x)
    # Chodera's criterion stops once the leftover bias is comparable to the statistical
    # error (it trades bias for samples), so allow up to 1.5 sigma_x rather than demand
    # the transient be gone entirely; over 30 seeds the worst case was 1.03 sigma_x.
    assert offset[t0] < 1.5 * sigma_x
    assert t0 < 2.0 * transient + 5.0 * g_exact(phi)
    assert g == pytest.approx(statistical_inefficiency(x[t0:]), rel=1e-12)
    assert n_eff == pytest.approx((n - t0) / g, rel=1e-12)
    # Sanity only: g of an ~18k-point tail scatters by ~12 % at phi = 0.9.
    assert g == pytest.approx(g_exact(phi), rel=0.4)


def test_detect_equilibration_exhaustive_matches_definition():
    x = ar1(0.8, 400, seed=8) + 15.0 * np.exp(-np.arange(400) / 30.0)
    n_eff = {t0: (x.size - t0) / statistical_inefficiency(x[t0:]) for t0 in range(x.size - MIN_POINTS + 1)}
    best = max(n_eff, key=lambda t: (n_eff[t], -t))
    t0, g, ne = detect_equilibration(x, coarse_candidates=None)
    assert t0 == best
    assert ne == pytest.approx(n_eff[best], rel=1e-12)
    # The default coarse-to-fine search evaluates far fewer starts; it must land on
    # (nearly) the same effective sample size.
    _, _, ne_coarse = detect_equilibration(x)
    assert ne_coarse >= 0.97 * n_eff[best]


def test_detect_equilibration_respects_nskip():
    x = ar1(0.8, 3000, seed=12) + 30.0 * np.exp(-np.arange(3000) / 100.0)
    t0, _, ne = detect_equilibration(x, nskip=7)
    assert t0 % 7 == 0
    _, _, ne_all = detect_equilibration(x, nskip=7, coarse_candidates=None)
    assert ne == pytest.approx(ne_all, rel=0.03)


# --------------------------------------------------------------------------- bad input

ALL_FUNCTIONS = [
    autocorrelation,
    decorrelation_time,
    statistical_inefficiency,
    integrated_autocorrelation_time,
    detect_equilibration,
    block_average,
    blocking_levels,
]


@pytest.mark.parametrize("func", ALL_FUNCTIONS)
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full(100, -42.0), "zero variance"),
        (np.arange(MIN_POINTS - 1, dtype=float), "at least 16"),
        (np.r_[np.arange(50.0), np.nan], "non-finite"),
        (np.r_[np.arange(50.0), np.inf, 1.0], r"index 50"),
        (np.zeros((20, 3)), r"shape \(20, 3\)"),
        (["a"] * 20, "real numbers"),
        (np.arange(20) * (1 + 1j), "must be real"),
    ],
    ids=["constant", "too-short", "nan", "inf", "2-D", "strings", "complex"],
)
def test_bad_series_is_rejected(func, bad, message):
    with pytest.raises(ValueError, match=message):
        func(bad)


def test_constant_series_message_points_at_the_sampler():
    with pytest.raises(ValueError, match="every move was rejected"):
        statistical_inefficiency([1.5] * 40)


@pytest.mark.parametrize("max_lag", [0, 100, -1, 2.5])
def test_autocorrelation_rejects_bad_max_lag(max_lag):
    with pytest.raises(ValueError, match="max_lag"):
        autocorrelation(ar1(0.5, 100, seed=0), max_lag=max_lag)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, 2.0])
def test_decorrelation_time_rejects_bad_threshold(threshold):
    with pytest.raises(ValueError, match="threshold must lie strictly between 0 and 1"):
        decorrelation_time(ar1(0.5, 100, seed=0), threshold)


def test_decorrelation_time_reports_slow_decay():
    x = ar1(0.99, 2000, seed=1)
    with pytest.raises(ValueError, match="never drops below threshold=0.1.*longer"):
        decorrelation_time(x, max_lag=10)


@pytest.mark.parametrize("kwargs", [{"nskip": 0}, {"nskip": 1.5}, {"coarse_candidates": 1}])
def test_detect_equilibration_rejects_bad_options(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        detect_equilibration(ar1(0.5, 100, seed=0), **kwargs)


@pytest.mark.parametrize("min_blocks", [1, 0])
def test_block_average_rejects_bad_min_blocks(min_blocks):
    with pytest.raises(ValueError, match="min_blocks"):
        block_average(ar1(0.5, 100, seed=0), min_blocks=min_blocks)


def test_block_average_rejects_min_blocks_above_length():
    with pytest.raises(ValueError, match="fewer than min_blocks"):
        block_average(ar1(0.5, 20, seed=0), min_blocks=32)
