"""Density profiles along the height: the measured rho(z) and the ideal-gas barometric reference.

Units: z in sigma, rho in particles / sigma^dim. Kept apart from vaepipe.sampling so that figures can change
without touching (and rerunning) the sampling stage.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["density_profile", "barometric_density", "ideal_gas_mean_height"]



def density_profile(positions: np.ndarray, box_length: float, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Number density along the height: rho(z) in particles / sigma^dim, averaged over samples.

    positions : (S, N, dim) or (N, dim), sigma.  Returns ``edges`` (bins + 1,) in sigma and ``rho`` (bins,),
    with ``sum(rho * diff(edges)) * box_length**(dim - 1) == N``.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim == 2:
        positions = positions[None]
    if positions.ndim != 3:
        raise ValueError(f"positions must have shape (S, N, dim) or (N, dim), got {positions.shape}")
    num, _, dim = positions.shape
    edges = np.linspace(0.0, float(box_length), int(bins) + 1)
    counts, _ = np.histogram(positions[..., -1].ravel(), bins=edges)
    rho = counts / (num * np.diff(edges) * float(box_length) ** (dim - 1))
    return edges, rho


def barometric_density(z, gamma: float, temperature: float, box_length: float, n_particles: int,
                       dim: int = 3) -> np.ndarray:
    """Ideal-gas density under gravity, rho(z) ~ exp(-4 gamma z / T), normalised to n_particles in the box.

    Only a reference: it ignores the LJ interaction (attraction condenses the fluid, repulsion limits how dense
    the bottom layers get). Units: z in sigma, rho in 1/sigma^dim.
    """
    z = np.asarray(z, dtype=np.float64)
    area = float(box_length) ** (dim - 1)
    if gamma == 0:
        return np.full_like(z, n_particles / (area * box_length))
    inv_l = 4.0 * gamma / temperature  # 1 / scale height
    # normalisation: integral_0^L exp(-z/l) dz = l (1 - exp(-L/l)), written with expm1 for small L/l
    return n_particles * inv_l * np.exp(-inv_l * z) / (area * -np.expm1(-inv_l * box_length))


def ideal_gas_mean_height(gamma: float, temperature: float, box_length: float) -> float:
    """<z> of an ideal gas under gravity in [0, L]: l - L / (exp(L/l) - 1), l = T / (4 gamma); L/2 at gamma 0."""
    if gamma == 0:
        return box_length / 2.0
    scale = temperature / (4.0 * gamma)
    ratio = box_length / scale
    return scale if ratio > 700.0 else scale - box_length / math.expm1(ratio)  # exp(700) is near overflow
