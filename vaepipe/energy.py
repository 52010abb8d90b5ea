"""Potential energy of configurations, computed by the sampler's own C++ code (one implementation of the model).

Units and convention (reduced LJ units, see README):

    U / eps = sum_{i<j} 4 [ r_ij^-12 - r_ij^-6 ]  +  4 gamma sum_i z_i  (+ N * U_lrc/N with the tail correction)

with z the last coordinate (height above the floor, in sigma).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from vaepipe import _validate
from vaepipe.boundary import check_system
from vaepipe._compiled import core


def checked_batch(positions, box_length, gamma=0.0, boundary="reflect", cutoff=None, tail_correction=False):
    """(batch (S, N, dim) float64 C-contiguous, single, system): positions (N, dim) or (S, N, dim) checked to be
    finite and inside the box, and the system's parameters checked and normalised (:func:`check_system`);
    ``single`` says the input was one configuration. Raises ValueError naming what is wrong (TypeError for complex
    positions)."""
    arr = _validate.float_array("positions", positions)
    dim = arr.shape[-1] if arr.ndim in (2, 3) else None
    if dim not in (2, 3):
        _validate.fail("positions", f"<array of shape {arr.shape}>", "shape (N, dim) or (S, N, dim) with dim 2 or 3")
    p = check_system(box_length, gamma, dim, boundary, cutoff, tail_correction)
    arr = _validate.positions(arr, p["box_length"], dim, batch=True)
    single = arr.ndim == 2
    return (arr[None] if single else arr), single, p


def potential_energy(positions, box_length, gamma=0.0, boundary="reflect", cutoff=None, tail_correction=False):
    """Total potential energy / eps.

    Parameters
    ----------
    positions : array_like, shape (N, dim) or (S, N, dim)
        Coordinates in sigma, inside [0, box_length]; dim is 2 or 3.
    box_length : float
        Side of the cubic (square) box, sigma.
    gamma, boundary, cutoff, tail_correction
        As for :class:`vaepipe.mc.Sampler`.

    Returns
    -------
    float for one configuration, or ndarray of shape (S,) for a batch.
    """
    batch, single, p = checked_batch(positions, box_length, gamma, boundary, cutoff, tail_correction)
    if batch.shape[0] == 0:
        return np.empty(0)
    cutoff_value = math.inf if p["cutoff"] is None else p["cutoff"]
    out = core().total_energies(batch, p["box_length"], p["gamma"], p["boundary"], cutoff_value,
                                p["tail_correction"])
    return float(out[0]) if single else out


def forces(positions, box_length, gamma=0.0, boundary="reflect", cutoff=None):
    """Forces on the particles, F_i = -dU/dr_i, in eps / sigma: the gradient of :func:`potential_energy`'s energy.

    Same arguments as :func:`potential_energy` (the tail correction is a constant: it exerts no force). Pairs
    closer than the cutoff interact, through the minimum image along periodic axes; gravity adds -4 gamma to
    the last component of every particle. The walls of ``reflect`` and ``slab`` exert no force (the sampler
    mirrors trial moves instead of adding a wall potential).

    Returns
    -------
    ndarray of the shape of ``positions``: (N, dim) or (S, N, dim).

    Raises ValueError for positions outside the box or two particles at the same place.
    """
    batch, single, p = checked_batch(positions, box_length, gamma, boundary, cutoff, False)
    if batch.shape[0] == 0:
        return np.empty(batch.shape)
    cutoff_value = math.inf if p["cutoff"] is None else p["cutoff"]
    out = core().total_forces(batch, p["box_length"], p["gamma"], p["boundary"], cutoff_value)
    return out[0] if single else out


# --------------------------------------------------------------------------- energies of files' configurations


def energy_kwargs(attrs: Mapping[str, Any]) -> dict:
    """The model keywords of potential_energy (boundary, cutoff, tail_correction) from a file's attributes."""
    cutoff = attrs.get("cutoff")
    cutoff = None if cutoff is None or (isinstance(cutoff, float) and math.isnan(cutoff)) else float(cutoff)
    return {"boundary": str(attrs.get("boundary", "reflect")), "cutoff": cutoff,
            "tail_correction": bool(attrs.get("tail_correction", False))}


def total_energy(positions: np.ndarray, gamma, attrs: Mapping[str, Any], coincident: str = "raise") -> np.ndarray:
    """U / eps of each configuration (S, N, dim) at its own gamma (S,) (or one gamma for all), by the sampler's
    C++ energy. ``coincident="inf"``: a configuration with two particles on the same point (a decoder's output
    can have one) gets an infinite energy instead of the ValueError."""
    positions = np.asarray(positions, dtype=np.float64)
    gamma = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (positions.shape[0],))
    out = np.empty(positions.shape[0])
    for value in np.unique(gamma):
        rows = np.flatnonzero(gamma == value)
        kwargs = dict(gamma=float(value), **energy_kwargs(attrs))
        try:
            out[rows] = potential_energy(positions[rows], float(attrs["box_length"]), **kwargs)
        except ValueError:
            if coincident != "inf":
                raise
            for row in rows:
                try:
                    out[row] = potential_energy(positions[row], float(attrs["box_length"]), **kwargs)
                except ValueError:
                    out[row] = np.inf
    return out


def pair_energy_per_particle(positions: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """U_LJ / (N eps): the pair part only (gamma = 0). A generated configuration belongs to no state point, so
    it has no gravity term; this is what compares across state points."""
    energy = potential_energy(positions, float(attrs["box_length"]), gamma=0.0, **energy_kwargs(attrs))
    return np.asarray(energy) / positions.shape[1]
