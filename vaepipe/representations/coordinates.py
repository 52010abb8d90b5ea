"""``coordinates``: the seed's dense baseline input (:func:`vaepipe.features.sorted_coordinates`).

Features (S, N * dim) float32: particles ordered by coordinate ``sort_axis`` (0 = x, dim - 1 = the height z),
flattened particle-major and divided by L, into [0, 1]. Error: ``rmsd_sigma``, the permutation-aware RMSD of the
particles in sigma (each decoded particle matched to one original, Hungarian assignment, no rotation: the box
fixes the frame); ``mae_sigma`` compares the coordinates in the stored order. Model: the seed's dense VAE.
"""

from __future__ import annotations

import numbers

import numpy as np

from vaepipe._validate import error
from vaepipe.boundary import apply_symmetry, box_symmetries
from vaepipe.features import sorted_coordinates
from vaepipe.representations._base import FeatureSet, Representation
from vaepipe.structure import matched_rmsd

_DENSE_KEYS = ("latent_dim", "beta", "reconstruction_loss", "free_bits")


class Coordinates(Representation):
    name = "coordinates"
    defaults = {"sort_axis": 0}
    file_attrs = {"sort_axis": "int"}
    extras = ("order",)
    model_builder = "build_dense_vae"
    figure = "coordinates_reconstruction_figure"

    def _canonical(self, full):
        sort_axis = full["sort_axis"]
        if isinstance(sort_axis, bool) or not isinstance(sort_axis, numbers.Integral) or sort_axis < 0:
            raise error("sort_axis", sort_axis, "an integer >= 0")
        return {"sort_axis": int(sort_axis)}

    def params_from_attrs(self, attrs):
        return {"sort_axis": int(attrs["sort_axis"])}

    def feature_shape(self, params, n_particles, dim, box_length):
        return (n_particles * dim,)

    def file_shape(self, attrs, num_anchors):
        return (int(attrs["n_particles"]) * int(attrs["dim"]),)

    def featurize(self, positions, box_length, boundary, params):
        coords, order = sorted_coordinates(positions, box_length, params["sort_axis"])
        return FeatureSet(self.name, coords, order=order, attrs={"sort_axis": params["sort_axis"]})

    def positions(self, features: np.ndarray, attrs) -> np.ndarray:
        """(S, N * dim) features -> (S, N, dim) positions in sigma."""
        n, dim = int(attrs["n_particles"]), int(attrs["dim"])
        return np.asarray(features, dtype=np.float64).reshape(-1, n, dim) * float(attrs["box_length"])

    def decode_positions(self, features, attrs):
        """Decoded features are coordinates / L: positions in sigma, clipped into the box."""
        return np.clip(self.positions(features, attrs), 0.0, float(attrs["box_length"]))

    def errors(self, diff, original, attrs):
        num = original.shape[0]
        mae = np.mean(np.abs(diff.reshape(num, -1)), axis=1) * float(attrs["box_length"])
        rmsd = matched_rmsd(self.positions(original + diff, attrs), self.positions(original, attrs))
        return {"mae_sigma": mae, "rmsd_sigma": np.atleast_1d(rmsd), "recon_error": np.atleast_1d(rmsd)}

    def augment(self, features, gamma, attrs, kind):
        """Each training configuration with its images under :func:`vaepipe.boundary.box_symmetries` of its
        state point (mirrors: 4 in 3D; all symmetries: 8 under gravity, 48 at gamma = 0), re-sorted by
        ``sort_axis`` so the stored convention holds. Returns (features, row of the original)."""
        if kind == "none":
            return features, np.arange(len(features))
        positions = self.positions(features, attrs)
        box, dim = float(attrs["box_length"]), int(attrs["dim"])
        boundary = str(attrs.get("boundary", "reflect"))
        parts, rows = [], []
        for value in np.unique(gamma):
            index = np.flatnonzero(gamma == value)
            for perm, flips in box_symmetries(dim, boundary, float(value), kind):
                image = apply_symmetry(positions[index], box, perm, flips)
                coords, _ = sorted_coordinates(image, box, int(attrs["sort_axis"]))
                parts.append(coords)
                rows.append(index)
        rows = np.concatenate(rows)
        order = np.argsort(rows, kind="stable")  # originals' images together, in the originals' order
        return np.concatenate(parts)[order], rows[order]

    def model_kwargs(self, params, attrs):
        kwargs = {k: params[k] for k in _DENSE_KEYS if k in params}
        if "hidden_units" in params:
            kwargs["hidden_units"] = tuple(params["hidden_units"])
        return kwargs

    def figure_args(self, attrs):
        return (float(attrs["box_length"]), int(attrs["dim"]))


COORDINATES = Coordinates()
