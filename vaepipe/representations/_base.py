"""What every representation provides, and the container of its features.

A representation is one module of :mod:`vaepipe.representations` holding one :class:`Representation` instance:
its config defaults and parameter checks, its features (:meth:`Representation.featurize`), the attributes and
datasets it adds to a features file, how its errors are measured, and which model builder (a name in
:mod:`vaepipe.models`) and which example figure (a name in :mod:`vaepipe.plots`) serve it. The builder and the
figure are named, not imported, so that featurizing never imports Keras or matplotlib; the training stage,
which imports both, looks them up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from vaepipe._validate import error

__all__ = ["FeatureSet", "Representation"]


@dataclass(frozen=True)
class FeatureSet:
    """Output of :meth:`Representation.featurize`.

    features : float32 (S, ...), the representation (see each module for its shape).
    order : int64 (S, N) particle permutation applied (distance, coordinates), else None.
    anchors : float64 (A, dim) anchor points in sigma (distance), else None.
    attrs : the representation's parameters as stored in the features file (its :attr:`file_attrs`).
    """

    representation: str
    features: np.ndarray
    order: np.ndarray | None = None
    anchors: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return int(self.features.shape[0])


class Representation:
    """Base class: subclasses set the class attributes and implement the methods that raise here."""

    #: the name in the config (``features.{name}``, ``vae.{name}``) and in file paths
    name: str = ""
    #: every parameter of ``features.{name}`` with its default (the schema's; tests check they agree)
    defaults: Mapping[str, Any] = {}
    #: attributes it adds to a features file, name -> "float" | "int" | "str"
    file_attrs: Mapping[str, str] = {}
    #: datasets of a features file beyond features/energy/chain/sample_index ("order", "anchors")
    extras: tuple[str, ...] = ()
    #: builder in vaepipe.models, called with (input_shape, seed=..., **model_kwargs(...))
    model_builder: str = ""
    #: example figure in vaepipe.plots, called with (originals, reconstructions, *figure_args(attrs), labels=...)
    figure: str = ""

    # ----------------------------------------------------------------- parameters

    def canonical_params(self, params: Mapping[str, Any] | None) -> dict:
        """The parameters, checked, with defaults filled in and numbers as floats/ints: only what changes the
        features, so that nothing else triggers a rerun."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise ValueError(f"features.{self.name}: unknown parameter(s) {unknown}; expected keys "
                             f"{sorted(self.defaults)}")
        return self._canonical({**self.defaults, **params})

    def _canonical(self, full: dict) -> dict:
        raise NotImplementedError

    def params_from_attrs(self, attrs: Mapping[str, Any]) -> dict:
        """The parameters back from a features file's attributes (to featurize new configurations alike)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- features

    def feature_shape(self, params: Mapping[str, Any], n_particles: int, dim: int, box_length: float) -> tuple:
        """Shape of one configuration's features (without the leading S), from canonical params."""
        raise NotImplementedError

    def file_shape(self, attrs: Mapping[str, Any], num_anchors: int) -> tuple:
        """Shape of one configuration's features, from a features file's attributes."""
        raise NotImplementedError

    def featurize(self, positions: np.ndarray, box_length: float, boundary: str, params: dict) -> FeatureSet:
        """Features of (S, N, dim) positions in sigma, from canonical params."""
        raise NotImplementedError

    # ----------------------------------------------------------------- learning

    def errors(self, diff: np.ndarray, original: np.ndarray, attrs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Per-sample errors (S,) of reconstructions (diff = reconstruction - original, float64), in physical
        units; must hold ``recon_error``, the headline error."""
        raise NotImplementedError

    def decode_positions(self, features: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
        """Particle positions (S, N, dim) float64 in sigma, inside [0, L], from (decoded) features of this
        representation: what the energy of a decoded or generated configuration is computed on."""
        raise NotImplementedError

    def builder_name(self, params: Mapping[str, Any]) -> str:
        """The builder in :mod:`vaepipe.models` of the ``vae.{name}`` section (one per architecture)."""
        return self.model_builder

    def augment(self, features: np.ndarray, gamma: np.ndarray, attrs: Mapping[str, Any],
                kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Training features with their images under the box's symmetries (``kind``: "none", "mirror" or
        "symmetry", see :func:`vaepipe.features.box_symmetries`), and the row of the original of each."""
        if kind == "none":
            return features, np.arange(len(features))
        raise error(f"vae.{self.name}.augment", kind, "'none' (this representation has no augmentation)")

    def model_kwargs(self, params: Mapping[str, Any], attrs: Mapping[str, Any]) -> dict:
        """Keyword arguments of :attr:`model_builder` from the ``vae.{name}`` section and the features' attrs."""
        raise NotImplementedError

    def figure_args(self, attrs: Mapping[str, Any]) -> tuple:
        """Positional arguments of :attr:`figure` after the originals and reconstructions."""
        raise NotImplementedError


def check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise error(name, value, f"one of {tuple(choices)}")
