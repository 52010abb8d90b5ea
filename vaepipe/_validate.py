"""Argument checks shared by vaepipe.mc and vaepipe.energy.

Each failure is a ValueError that names the argument, shows the value given, says what was expected and, where
there is an obvious fix, what to do.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

BOUNDARIES = ("reflect", "periodic", "slab")


def fail(name: str, value, expected: str, fix: str | None = None) -> None:
    msg = f"{name}={value!r} is invalid: expected {expected}"
    if fix:
        msg += f"; {fix}"
    raise ValueError(msg)


# Far beyond anything a 2-core machine samples, and below the C++ core's 32-bit particle indices.
MAX_PARTICLES = 100_000_000


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        fail(name, value, "a positive integer")
    return int(value)


def nonnegative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        fail(name, value, "an integer >= 0")
    return int(value)


def positive_float(name: str, value, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        fail(name, value, f"a positive finite number ({unit})")
    return float(value)


def finite_float(name: str, value, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        fail(name, value, f"a finite number ({unit})")
    return float(value)


def system(box_length, gamma, dim, boundary, cutoff, tail_correction) -> dict:
    """Checks the model parameters common to the sampler and the energy function; returns them normalised."""
    box_length = positive_float("box_length", box_length, "sigma")
    gamma = finite_float("gamma", gamma, "dimensionless gravity strength m g sigma / (4 eps)")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim not in (2, 3):
        fail("dim", dim, "2 or 3")
    if not isinstance(boundary, str) or boundary not in BOUNDARIES:
        fail("boundary", boundary, f"one of {BOUNDARIES}")
    if cutoff is not None:
        cutoff = positive_float("cutoff", cutoff, "sigma, or None for no cutoff")
    if boundary == "periodic" and gamma != 0.0:
        fail("gamma", gamma, "0 with boundary='periodic' (gravity needs a floor)",
             "use boundary='reflect' or 'slab' for a fluid under gravity")
    if boundary != "reflect" and (cutoff is None or cutoff > box_length / 2):
        fail("cutoff", cutoff, f"a value <= box_length/2 = {box_length / 2:g} with boundary={boundary!r} "
             "(minimum-image convention)", f"e.g. cutoff={min(3.0, box_length / 2):g}")
    if not isinstance(tail_correction, (bool, np.bool_)):
        fail("tail_correction", tail_correction, "True or False")
    if tail_correction and (boundary != "periodic" or cutoff is None):
        fail("tail_correction", tail_correction, "False unless boundary='periodic' and a cutoff is set "
             "(the correction assumes a homogeneous bulk fluid beyond the cutoff)")
    return dict(box_length=box_length, gamma=gamma, dim=int(dim), boundary=boundary, cutoff=cutoff,
                tail_correction=bool(tail_correction))


def positions(value, box_length: float, dim: int, n_particles: int | None = None, batch: bool = False) -> np.ndarray:
    """(N, dim) — or (S, N, dim) when batch — finite coordinates inside [0, box_length], as float64."""
    arr = np.asarray(value, dtype=np.float64)
    shapes = "(N, dim) or (S, N, dim)" if batch else "(n_particles, dim)"
    ok_ndim = arr.ndim in (2, 3) if batch else arr.ndim == 2
    if not ok_ndim or arr.shape[-1] != dim or (n_particles is not None and arr.shape[-2] != n_particles):
        want = shapes if n_particles is None else f"shape ({n_particles}, {dim})"
        fail("positions", f"<array of shape {arr.shape}>", f"{want} with dim={dim}")
    if arr.shape[-2] == 0:
        fail("positions", f"<array of shape {arr.shape}>", "at least one particle")
    if arr.size == 0:  # an empty batch (S = 0) is valid
        return np.ascontiguousarray(arr)
    if not np.all(np.isfinite(arr)):
        fail("positions", "<array with NaN or inf>", "finite coordinates")
    lo, hi = arr.min(), arr.max()
    if lo < 0.0 or hi > box_length:
        fail("positions", f"<array with coordinates in [{lo:g}, {hi:g}]>",
             f"coordinates inside the box [0, box_length={box_length:g}] (sigma)")
    return np.ascontiguousarray(arr)
