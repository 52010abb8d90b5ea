"""The learnable representations of configurations, by name: one module each, registered in :data:`REGISTRY`.

    voxel        density grids (Conv3D VAE)              vaepipe/representations/voxel.py
    distance     sorted distance matrices + anchors      vaepipe/representations/distance.py
    coordinates  sorted coordinates (dense baseline)      vaepipe/representations/coordinates.py
    particles    the particles as an unordered set       vaepipe/representations/particles.py

:func:`featurize` is the workflow's entry point: samples + representation + the config's
``features.{representation}`` section -> a :class:`FeatureSet`. Lengths are in sigma; features are float32.
Adding a representation: one module defining a :class:`Representation` subclass and its instance, one line in
:data:`REGISTRY`, and its ``features.{name}`` and ``vae.{name}`` sections in the config schema.
"""

from __future__ import annotations

from typing import Any, Mapping

from vaepipe._validate import error, float_array
from vaepipe.boundary import check_boundary
from vaepipe.representations._base import FeatureSet, Representation
from vaepipe.representations.coordinates import COORDINATES
from vaepipe.representations.distance import DISTANCE
from vaepipe.representations.particles import PARTICLES
from vaepipe.representations.voxel import VOXEL

__all__ = ["REGISTRY", "REPRESENTATIONS", "DEFAULT_PARAMS", "FeatureSet", "Representation", "get",
           "canonical_params", "feature_shape", "featurize"]

REGISTRY: dict[str, Representation] = {r.name: r for r in (VOXEL, DISTANCE, COORDINATES, PARTICLES)}
REPRESENTATIONS = tuple(REGISTRY)
#: Parameters of each representation when a key is not given: the schema defaults of ``features.*``.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {name: dict(r.defaults) for name, r in REGISTRY.items()}


def get(representation: str) -> Representation:
    """The registered representation of that name; ValueError listing the names otherwise."""
    if representation not in REGISTRY:
        raise error("representation", representation, f"one of {REPRESENTATIONS}")
    return REGISTRY[representation]


def canonical_params(representation: str, params: Mapping[str, Any] | None) -> dict:
    """The parameters of one representation, checked, with defaults filled in and numbers as floats/ints."""
    return get(representation).canonical_params(params)


def feature_shape(representation: str, params: Mapping[str, Any] | None, n_particles: int, dim: int,
                  box_length: float) -> tuple[int, ...]:
    """Shape of one configuration's features (without the leading S), e.g. to size memory requests."""
    rep = get(representation)
    return rep.feature_shape(rep.canonical_params(params), n_particles, dim, box_length)


def featurize(samples: Any, representation: str, params: Mapping[str, Any] | None = None) -> FeatureSet:
    """One representation of every configuration of a samples file.

    samples : a :class:`vaepipe.io.Samples` (or anything with ``positions`` (S, N, dim) in sigma and ``attrs``
    holding ``box_length`` and ``boundary``). params : the config section ``features.{representation}`` (missing
    keys take :data:`DEFAULT_PARAMS`).
    """
    rep = get(representation)
    p = rep.canonical_params(params)
    attrs = getattr(samples, "attrs", None)
    if attrs is None or "box_length" not in attrs or "boundary" not in attrs:
        raise error("samples", type(samples).__name__, "samples with attrs box_length and boundary",
                    "pass vaepipe.io.read_samples(path)")
    box_length = float(attrs["box_length"])
    boundary = check_boundary("boundary", str(attrs["boundary"]), "use the samples file's boundary attribute")
    positions = float_array("samples.positions", samples.positions)
    if positions.ndim != 3:
        raise error("samples.positions", f"<array of shape {positions.shape}>", "shape (S, N, dim)")
    return rep.featurize(positions, box_length, boundary, p)
