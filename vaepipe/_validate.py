"""The one error helper of vaepipe, and the argument checks shared by vaepipe.mc and vaepipe.energy.

Each failure is a ValueError that names the argument (or config key), shows the value given, says what was
expected and, where there is an obvious fix, what to do: ``{subject}={value!r} is invalid: expected ...; fix: ...``.
A value of the wrong type where numpy would convert it silently and lossily (complex coordinates) is the
TypeError of :func:`type_error`, in the same words.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def error(subject: str, value, expected: str, fix: str | None = None) -> ValueError:
    """The ValueError of a bad value: what was given, what was expected, and how to fix it.

    subject: the argument's name (``"cutoff"``), or ``"config key system.cutoff"`` for a config key.
    """
    msg = f"{subject}={value!r} is invalid: expected {expected}"
    if fix:
        msg += f"; fix: {fix}"
    return ValueError(msg)


def fail(name: str, value, expected: str, fix: str | None = None) -> None:
    """Raise :func:`error`."""
    raise error(name, value, expected, fix)


def type_error(subject: str, value, expected: str, fix: str | None = None) -> TypeError:
    """The TypeError of a value of the wrong type, in the words of :func:`error`."""
    return TypeError(str(error(subject, value, expected, fix)))


def not_complex(name: str, value):
    """``value`` (as an array where numpy can make one of it), or the TypeError of complex input, whose imaginary
    part ``np.asarray(value, dtype=np.float64)`` would drop with no more than a ComplexWarning."""
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):
            return value  # not array-like: the caller's float64 conversion raises its own error
    if np.iscomplexobj(value):
        raise type_error(name, f"<complex array of shape {value.shape}>", "real numbers (float64)",
                         f"pass {name}.real if the imaginary part is meant to be zero")
    return value


def float_array(name: str, value) -> np.ndarray:
    """``np.asarray(value, dtype=np.float64)``, but a TypeError for complex input (:func:`not_complex`)."""
    return np.asarray(not_complex(name, value), dtype=np.float64)


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


def positions(value, box_length: float, dim: int, n_particles: int | None = None, batch: bool = False,
              name: str = "positions", fix: str | None = None) -> np.ndarray:
    """(N, dim) — or (S, N, dim) when batch — finite coordinates inside [0, box_length], as float64.

    ``name`` is the argument the errors name (``"state['neighbor_reference']"``) and ``fix`` their advice; complex
    input is a TypeError.
    """
    arr = float_array(name, value)
    shapes = "(N, dim) or (S, N, dim)" if batch else "(n_particles, dim)"
    ok_ndim = arr.ndim in (2, 3) if batch else arr.ndim == 2
    if not ok_ndim or arr.shape[-1] != dim or (n_particles is not None and arr.shape[-2] != n_particles):
        want = shapes if n_particles is None else f"shape ({n_particles}, {dim})"
        fail(name, f"<array of shape {arr.shape}>", f"{want} with dim={dim}", fix)
    if arr.shape[-2] == 0:
        fail(name, f"<array of shape {arr.shape}>", "at least one particle", fix)
    if arr.size == 0:  # an empty batch (S = 0) is valid
        return np.ascontiguousarray(arr)
    if not np.all(np.isfinite(arr)):
        fail(name, "<array with NaN or inf>", "finite coordinates", fix)
    lo, hi = arr.min(), arr.max()
    if lo < 0.0 or hi > box_length:
        fail(name, f"<array with coordinates in [{lo:g}, {hi:g}]>",
             f"coordinates inside the box [0, box_length={box_length:g}] (sigma)", fix)
    return np.ascontiguousarray(arr)
