"""``coordinates``: the seed's dense baseline input (:func:`vaepipe.features.sorted_coordinates`).

Features (S, N * dim) float32: particles ordered by coordinate ``sort_axis`` (0 = x), flattened particle-major
and divided by L, into [0, 1]. Error: ``mae_sigma`` of the coordinates. Model: the dense VAE.
"""

from __future__ import annotations

import numbers

import numpy as np

from vaepipe._validate import error
from vaepipe.features import sorted_coordinates
from vaepipe.representations._base import FeatureSet, Representation

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

    def errors(self, diff, original, attrs):
        mae = np.mean(np.abs(diff.reshape(original.shape[0], -1)), axis=1) * float(attrs["box_length"])
        return {"mae_sigma": mae, "recon_error": mae}

    def model_kwargs(self, params, attrs):
        kwargs = {k: params[k] for k in _DENSE_KEYS if k in params}
        if "hidden_units" in params:
            kwargs["hidden_units"] = tuple(params["hidden_units"])
        return kwargs

    def figure_args(self, attrs):
        return (float(attrs["box_length"]), int(attrs["dim"]))


COORDINATES = Coordinates()
