"""``voxel``: density grids, n = L / voxel_size cells per side (:func:`vaepipe.features.voxel_grid`).

Features (S, n, n(, n)) float32, the last axis the height z (cell 0 at the floor). ``method`` "count" (the
seed's, the schema default) counts particles per cell; "gaussian" deposits a normalized Gaussian of standard
deviation ``width`` (sigma) per particle. ``normalize`` "max" divides each grid by its maximum, into [0, 1].
Error: ``density_error`` = sum |rho_hat - rho| / sum rho per grid (the DL-DFT paper's integrated absolute density
difference). Model: the Conv3D VAE (Conv2D for 2D pixel grids).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from vaepipe._validate import error
from vaepipe.features import NORMALIZATIONS, VOXEL_METHODS, num_cells, voxel_grid
from vaepipe.gaussfit import fit_gaussian_deposits
from vaepipe.representations._base import FeatureSet, Representation, check_choice

#: The Gaussian-deposit fit of decoded grids: a decoded grid is a blurred density that no set of deposits fits to
#: rounding, so the fit stops at a relative improvement of 1e-4 and tries at most 3 repair moves (the defaults,
#: 1e-6 and N, cost about 4x the time for a median RMSD change below 0.01 sigma; benchmarks/bench_gaussfit.py).
DECODE_MAX_ITER, DECODE_TOL, DECODE_REPAIRS = 100, 1e-4, 3

_CONV_KEYS = ("latent_dim", "beta", "reconstruction_loss", "free_bits", "filters", "dense_units")


def conv_model_kwargs(params: Mapping[str, Any]) -> dict:
    """The builder arguments shared by the convolutional VAEs, from a ``vae.*`` section."""
    kwargs = {k: params[k] for k in _CONV_KEYS if k in params}
    if "filters" in kwargs:
        kwargs["filters"] = tuple(kwargs["filters"])
    return kwargs


class Voxel(Representation):
    name = "voxel"
    defaults = {"voxel_size": 0.3125, "method": "count", "width": 0.5, "normalize": "max"}
    file_attrs = {"voxel_size": "float", "num_cells": "int", "method": "str", "width": "float", "normalize": "str"}
    extras = ()
    model_builder = "build_voxel_vae"
    figure = "voxel_reconstruction_figure"

    def _canonical(self, full: dict) -> dict:
        # The Gaussian width does not change a count grid: dropped there, so that it triggers no rerun.
        check_choice("method", full["method"], VOXEL_METHODS)
        check_choice("normalize", full["normalize"], NORMALIZATIONS)
        out = {"voxel_size": float(full["voxel_size"]), "method": full["method"], "normalize": full["normalize"]}
        if full["method"] == "gaussian":
            if full["width"] is None:
                raise error("width", None, "a positive number (sigma) with method 'gaussian'")
            out["width"] = float(full["width"])
        return out

    def params_from_attrs(self, attrs):
        out = {k: attrs[k] for k in ("voxel_size", "method", "normalize")}
        if attrs["method"] == "gaussian":
            out["width"] = attrs["width"]
        return out

    def feature_shape(self, params, n_particles, dim, box_length):
        return (num_cells(box_length, params["voxel_size"]),) * dim

    def file_shape(self, attrs, num_anchors):
        return (int(attrs["num_cells"]),) * int(attrs["dim"])

    def featurize(self, positions, box_length, boundary, params):
        grids = voxel_grid(positions, box_length, params["voxel_size"], method=params["method"],
                           width=params.get("width"), normalize=params["normalize"], boundary=boundary)
        meta = {"voxel_size": params["voxel_size"], "num_cells": num_cells(box_length, params["voxel_size"]),
                "method": params["method"], "width": params.get("width", math.nan), "normalize": params["normalize"]}
        return FeatureSet(self.name, grids, attrs=meta)

    def decode_positions(self, features, attrs):
        """N Gaussian deposits fitted to each (decoded) grid with the featurizer's own forward model
        (:func:`vaepipe.gaussfit.fit_gaussian_deposits`). Count grids have no Gaussian: they are fitted with
        Gaussians of the standard deviation of a uniform cell, voxel_size / sqrt(12), an approximation."""
        width = float(attrs.get("width", math.nan))
        if attrs.get("method") != "gaussian" or not math.isfinite(width):
            width = float(attrs["voxel_size"]) / math.sqrt(12.0)
        grids = np.clip(np.asarray(features, dtype=np.float64), 0.0, None)
        return fit_gaussian_deposits(grids, int(attrs["n_particles"]), float(attrs["box_length"]), width,
                                     normalize=str(attrs.get("normalize", "max")),
                                     boundary=str(attrs.get("boundary", "reflect")), dim=int(attrs["dim"]),
                                     max_iter=DECODE_MAX_ITER, tol=DECODE_TOL, max_repairs=DECODE_REPAIRS)

    def errors(self, diff, original, attrs):
        num = original.shape[0]
        density_error = np.abs(diff.reshape(num, -1)).sum(axis=1) / original.reshape(num, -1).sum(axis=1)
        return {"density_error": density_error, "recon_error": density_error}

    def model_kwargs(self, params, attrs):
        return conv_model_kwargs(params)

    def figure_args(self, attrs):
        return (float(attrs["box_length"]),)


VOXEL = Voxel()
