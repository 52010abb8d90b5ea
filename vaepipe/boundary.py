"""The box boundaries, their names and their rules, once (the C++ core has the same three in cpp/core/System.h).

    reflect   the seed's closed container: every axis has walls, a trial coordinate outside [0, L] is mirrored
              back in; gravity allowed; any cutoff (or none)
    periodic  minimum image along every axis; no gravity (no floor); needs a cutoff <= L / 2; the only boundary
              where the LJ tail correction means anything (a homogeneous bulk beyond the cutoff)
    slab      periodic along the horizontal axes, walls along the height (the last axis); gravity allowed;
              needs a cutoff <= L / 2

Each check raises the ValueError of :func:`vaepipe._validate.error`, naming the argument or config key it was
given (``subject``), so the sampler's arguments and the config's keys fail with the same rule and words.
Adding a boundary: one more entry in :data:`RULES`, its C++ enum value and kernels (cpp/core), and the
schema's enum.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from vaepipe._validate import error, finite_float, positive_float

__all__ = ["BOUNDARIES", "RULES", "BoundaryRules", "rules", "periodic_axes", "check_boundary", "check_gravity",
           "check_cutoff", "check_tail_correction", "check_system", "SYMMETRY_KINDS", "box_symmetries",
           "apply_symmetry"]


@dataclass(frozen=True)
class BoundaryRules:
    name: str
    #: which axes wrap: "none", "all", or "horizontal" (every axis but the last, the height)
    wraps: str
    allows_gravity: bool
    #: the minimum image needs a cutoff of at most half the box
    needs_cutoff: bool
    allows_tail_correction: bool


RULES: dict[str, BoundaryRules] = {
    "reflect": BoundaryRules("reflect", "none", allows_gravity=True, needs_cutoff=False,
                             allows_tail_correction=False),
    "periodic": BoundaryRules("periodic", "all", allows_gravity=False, needs_cutoff=True,
                              allows_tail_correction=True),
    "slab": BoundaryRules("slab", "horizontal", allows_gravity=True, needs_cutoff=True,
                          allows_tail_correction=False),
}
BOUNDARIES = tuple(RULES)


def check_boundary(subject: str, boundary, fix: str | None = None) -> str:
    """The boundary name, or the error that lists the valid ones."""
    if not isinstance(boundary, str) or boundary not in RULES:
        raise error(subject, boundary, f"one of {BOUNDARIES}", fix)
    return boundary


def rules(boundary: str) -> BoundaryRules:
    return RULES[check_boundary("boundary", boundary)]


def periodic_axes(boundary: str, dim: int) -> tuple[int, ...]:
    """The axes (0-based, of dim) that wrap around under ``boundary``."""
    wraps = rules(boundary).wraps
    return {"none": (), "all": tuple(range(dim)), "horizontal": tuple(range(dim - 1))}[wraps]


def check_gravity(subject: str, boundary: str, gammas, fix: str) -> None:
    """Gravity needs a floor: every gamma must be 0 where the boundary has none."""
    values = list(gammas) if isinstance(gammas, (list, tuple)) else [gammas]
    if not rules(boundary).allows_gravity and any(float(g) != 0.0 for g in values):
        shown = gammas if isinstance(gammas, (list, tuple)) else values[0]
        raise error(subject, shown, f"0 with boundary {boundary!r} (gravity needs a floor)", fix)


def check_cutoff(subject: str, boundary: str, cutoff, box_length: float, fix: str | None = None) -> None:
    """The minimum image sees one copy of each particle only if the cutoff is at most half the box."""
    if rules(boundary).needs_cutoff and (cutoff is None or cutoff > box_length / 2):
        raise error(subject, cutoff, f"a value <= box_length/2 = {box_length / 2:g} with boundary={boundary!r} "
                    "(minimum-image convention)",
                    fix or f"e.g. cutoff={min(3.0, box_length / 2):g}")


def check_tail_correction(subject: str, boundary: str, cutoff, tail_correction: bool, fix: str) -> None:
    """The tail correction assumes a homogeneous bulk fluid beyond the cutoff."""
    if tail_correction and (not rules(boundary).allows_tail_correction or cutoff is None):
        raise error(subject, tail_correction, "false unless boundary is 'periodic' and a cutoff is set (the "
                    "correction assumes a homogeneous bulk fluid beyond the cutoff)", fix)


def check_system(box_length, gamma, dim, boundary, cutoff, tail_correction) -> dict:
    """The model parameters common to the sampler and the energy function, checked; returned normalised."""
    box_length = positive_float("box_length", box_length, "sigma")
    gamma = finite_float("gamma", gamma, "dimensionless gravity strength m g sigma / (4 eps)")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim not in (2, 3):
        raise error("dim", dim, "2 or 3")
    check_boundary("boundary", boundary)
    if cutoff is not None:
        cutoff = positive_float("cutoff", cutoff, "sigma, or None for no cutoff")
    check_gravity("gamma", boundary, gamma, "use boundary='reflect' or 'slab' for a fluid under gravity")
    check_cutoff("cutoff", boundary, cutoff, box_length)
    if not isinstance(tail_correction, (bool, np.bool_)):
        raise error("tail_correction", tail_correction, "True or False")
    check_tail_correction("tail_correction", boundary, cutoff, bool(tail_correction), "pass tail_correction=False")
    return dict(box_length=box_length, gamma=gamma, dim=int(dim), boundary=boundary, cutoff=cutoff,
                tail_correction=bool(tail_correction))


# --------------------------------------------------------------------------- symmetries of the box

#: What a training set may be augmented with: nothing, the horizontal mirrors, or every symmetry of the state.
SYMMETRY_KINDS = ("none", "mirror", "symmetry")


def box_symmetries(dim: int, boundary: str, gamma: float, kind: str = "symmetry") -> list[tuple[tuple, tuple]]:
    """The coordinate maps that carry the Boltzmann distribution of a state point onto itself, as
    ``(permutation of the axes, flipped axes)``; a flip maps x to L - x. The identity comes first.

    ``kind`` "mirror": the flips of the horizontal axes (4 in 3D, 2 in 2D), symmetries of every state point.
    "symmetry": all of the state point's: with gravity, or with a slab's walls, the height axis is special, so
    the square floor's symmetries (horizontal flips and the x <-> y swap: 8 in 3D, 2 in 2D); at gamma = 0 in a
    reflecting or periodic box, all of the cube's (48 in 3D, 8 in 2D). "none": the identity alone.
    """
    if kind not in SYMMETRY_KINDS:
        raise error("augment", kind, f"one of {SYMMETRY_KINDS}")
    if dim not in (2, 3):
        raise error("dim", dim, "2 or 3")
    import itertools

    height = dim - 1
    free = kind == "symmetry" and gamma == 0 and rules(boundary).wraps != "horizontal"
    out = []
    for perm in itertools.permutations(range(dim)):
        if kind != "symmetry" and perm != tuple(range(dim)):
            continue
        if not free and perm[height] != height:
            continue
        for flips in itertools.product((False, True), repeat=dim):
            if kind == "none" and any(flips):
                continue
            if not free and flips[height]:
                continue
            out.append((perm, flips))
    return out


def apply_symmetry(positions: np.ndarray, box_length: float, perm: tuple, flips: tuple) -> np.ndarray:
    """(..., N, dim) positions mapped by one of :func:`box_symmetries`: axes permuted, then the flipped ones
    mirrored (x -> L - x)."""
    x = np.asarray(positions)[..., list(perm)]
    mirrored = np.asarray(flips, dtype=bool)
    return np.where(mirrored, box_length - x, x)
