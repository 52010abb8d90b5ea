"""The physics in the losses and layers of the particle VAE, in ``keras.ops`` only (backend-agnostic).

Units as everywhere in vaepipe: lengths in sigma, energies in epsilon, positions (batch, N, dim) with the last
coordinate the height z.

- :func:`capped_energy`: the Lennard-Jones + gravity energy ``sum_{i<j} 4 (r^-12 - r^-6) + 4 gamma sum_i z_i``,
  the model of :mod:`vaepipe.energy` (whose C++ code it matches to float32 rounding, tested), with each pair's
  energy continued linearly below ``r_cap`` (value and slope of the LJ pair energy there), so that a decoder's
  early overlaps give large but finite gradients (Noe et al.'s Boltzmann generators cap energies likewise).
- :func:`overlap_hinge`: ``sum_{i<j} max(0, r_min - r_ij)^2``, zero on every valid configuration.
- :func:`matched_squared_error`: the squared error of decoded particles against the target particles under a
  soft assignment (entropic optimal transport, log-domain Sinkhorn iterations): a decoder is not punished for
  emitting the right configuration in another particle order. The assignment is not differentiated (the cost
  is, through the positions), which is the envelope-theorem gradient of the transport cost.
"""

from __future__ import annotations

import math

from keras import ops

__all__ = ["pair_distances", "lj_pair_energy", "capped_energy", "overlap_hinge", "matched_squared_error"]

#: Added to the squared self-distance on the diagonal, so that every pair term is finite there (then masked).
_DIAGONAL = 100.0
#: Added to every squared distance: two decoded particles clipped onto the same wall point have r = 0, where
#: sqrt has an infinite slope; with it r >= 1e-3 sigma and every gradient stays finite.
_SOFTENING = 1e-6


def pair_distances(positions):
    """(batch, N, dim) -> (batch, N, N) distances (softened by 1e-6 sigma^2), with an arbitrary positive value on
    the diagonal (mask it)."""
    diff = positions[:, :, None, :] - positions[:, None, :, :]
    n = ops.shape(positions)[1]
    squared = ops.sum(diff * diff, axis=-1) + _DIAGONAL * ops.eye(n, dtype=positions.dtype)
    return ops.sqrt(squared + _SOFTENING)


def lj_pair_energy(r, r_cap: float = 0.0):
    """4 (r^-12 - r^-6) elementwise; below ``r_cap`` (> 0) the tangent line at ``r_cap`` instead."""
    if r_cap <= 0:
        inv6 = ops.power(r, -6.0)
        return 4.0 * (inv6 * inv6 - inv6)
    safe = ops.maximum(r, r_cap)
    inv6 = ops.power(safe, -6.0)
    exact = 4.0 * (inv6 * inv6 - inv6)
    value = 4.0 * (r_cap ** -12 - r_cap ** -6)
    slope = 4.0 * (-12.0 * r_cap ** -13 + 6.0 * r_cap ** -7)
    return ops.where(r < r_cap, value + slope * (r - r_cap), exact)


def capped_energy(positions, gamma=None, r_cap: float = 0.85):
    """Total energy U / eps of each configuration, (batch, N, dim) -> (batch,), with the pair energy continued
    linearly below ``r_cap`` sigma (``r_cap`` = 0: the exact LJ energy). ``gamma`` (batch,) or a float adds the
    gravity term 4 gamma sum z; None leaves it out (the LJ energy alone). No cutoff, no periodic images: the
    closed box of the seed."""
    r = pair_distances(positions)
    n = ops.shape(positions)[1]
    mask = 1.0 - ops.eye(n, dtype=positions.dtype)
    energy = 0.5 * ops.sum(lj_pair_energy(r, r_cap) * mask, axis=(1, 2))
    if gamma is not None:
        heights = ops.sum(positions[..., -1], axis=1)
        energy = energy + 4.0 * ops.cast(gamma, positions.dtype) * heights
    return energy


def overlap_hinge(positions, r_min: float):
    """``sum_{i<j} max(0, r_min - r_ij)^2`` per configuration, sigma^2: (batch, N, dim) -> (batch,)."""
    r = pair_distances(positions)
    n = ops.shape(positions)[1]
    mask = 1.0 - ops.eye(n, dtype=positions.dtype)
    return 0.5 * ops.sum(ops.square(ops.relu(r_min - r)) * mask, axis=(1, 2))


def matched_squared_error(predicted, target, epsilon: float = 0.01, iterations: int = 30):
    """Sum over particles of the squared distance between decoded and target particles under the entropic
    optimal assignment (sigma^2): (batch, N, dim) x 2 -> (batch,).

    ``epsilon`` (sigma^2) is the entropic smoothing: well below the squared spacing of neighbours (about 1), the
    plan is a hard assignment wherever the decoded particles are near their targets; ``iterations`` Sinkhorn
    iterations (log domain, uniform marginals 1/N) balance it. ``iterations`` = 0 compares in the given order.
    """
    if iterations <= 0:
        return ops.sum(ops.square(predicted - target), axis=(1, 2))
    cost = ops.sum(ops.square(predicted[:, :, None, :] - target[:, None, :, :]), axis=-1)
    fixed = ops.stop_gradient(cost) / epsilon
    n = ops.shape(target)[1]
    log_marginal = -ops.log(ops.cast(n, cost.dtype))
    f = ops.zeros_like(fixed[:, :, 0])
    g = ops.zeros_like(fixed[:, 0, :])
    for _ in range(iterations):
        f = log_marginal - ops.logsumexp(g[:, None, :] - fixed, axis=2)
        g = log_marginal - ops.logsumexp(f[:, :, None] - fixed, axis=1)
    plan = ops.stop_gradient(ops.exp(f[:, :, None] + g[:, None, :] - fixed) * ops.cast(n, cost.dtype))
    return ops.sum(plan * cost, axis=(1, 2))
