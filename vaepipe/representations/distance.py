"""``distance``: sorted distance matrices with anchors (:func:`vaepipe.features.distance_matrix`).

Features (S, N + A, N + A) float32: particles sorted by distance from the origin corner, then the A anchor
points (``anchors``: "none", "corners" or explicit points in sigma), pairwise distances / box diagonal
L sqrt(dim), in [0, 1]. Error: ``mae_sigma``, the mean absolute error of particle-particle distances in sigma
(``anchor_mae_sigma`` for particle-anchor ones). Model: the Conv2D distance VAE (``architecture`` rows or conv).
"""

from __future__ import annotations

import json
import math

import numpy as np

from vaepipe.features import box_anchors, distance_matrix
from vaepipe.reconstruct import anchored_positions, classical_mds
from vaepipe.representations._base import FeatureSet, Representation
from vaepipe.representations.voxel import conv_model_kwargs


class Distance(Representation):
    name = "distance"
    defaults = {"anchors": "corners"}
    file_attrs = {"anchors": "str", "distance_scale": "float"}  # anchors: the JSON text of the spec
    extras = ("order", "anchors")
    model_builder = "build_distance_vae"
    figure = "distance_reconstruction_figure"

    def _canonical(self, full):
        spec = full["anchors"]
        if not isinstance(spec, str):
            spec = np.asarray(spec, dtype=np.float64).tolist()
        return {"anchors": spec}

    def params_from_attrs(self, attrs):
        return {"anchors": json.loads(attrs["anchors"])}

    def feature_shape(self, params, n_particles, dim, box_length):
        size = n_particles + len(box_anchors(box_length, dim, params["anchors"]))
        return (size, size)

    def file_shape(self, attrs, num_anchors):
        return (int(attrs["n_particles"]) + num_anchors,) * 2

    def featurize(self, positions, box_length, boundary, params):
        anchors = box_anchors(box_length, positions.shape[-1], params["anchors"])
        matrices, order = distance_matrix(positions, box_length, anchors=anchors, boundary=boundary)
        meta = {"anchors": json.dumps(params["anchors"], separators=(",", ":")),
                "distance_scale": box_length * math.sqrt(positions.shape[-1])}
        return FeatureSet(self.name, matrices, order=order, anchors=anchors, attrs=meta)

    def decode_positions(self, features, attrs):
        """Classical MDS of the (decoded) matrices placed absolutely by their anchor rows (Kabsch onto the known
        anchors; :func:`vaepipe.reconstruct.anchored_positions`), or centred in the box without anchors; clipped
        into the box."""
        n, dim, box = int(attrs["n_particles"]), int(attrs["dim"]), float(attrs["box_length"])
        matrices = np.asarray(features, dtype=np.float64) * float(attrs["distance_scale"])
        anchors = np.asarray(attrs.get("anchor_points") or [], dtype=np.float64)
        if len(anchors) >= dim + 1:
            positions, _ = anchored_positions(matrices, anchors, dim)
        else:
            positions = classical_mds(matrices[:, :n, :n], dim) + box / 2
        return np.clip(positions, 0.0, box)

    def errors(self, diff, original, attrs):
        num = original.shape[0]
        n = int(attrs["n_particles"])
        scale = float(attrs["distance_scale"])
        off_diagonal = ~np.eye(n, dtype=bool)
        mae = np.mean(np.abs(diff[:, :n, :n][:, off_diagonal]), axis=1) * scale
        anchor_mae = (np.mean(np.abs(diff[:, :n, n:]).reshape(num, -1), axis=1) * scale
                      if original.shape[-1] > n else np.full(num, np.nan))
        return {"mae_sigma": mae, "anchor_mae_sigma": anchor_mae, "recon_error": mae}

    def model_kwargs(self, params, attrs):
        kwargs = conv_model_kwargs(params)
        architecture = params.get("architecture", "conv")
        kwargs["architecture"] = architecture
        if architecture == "rows":
            missing = [k for k in ("n_particles", "box_length", "dim", "anchor_points") if k not in attrs]
            if missing:
                raise ValueError(f"the rows distance architecture needs the feature attributes {missing}")
            box_length = float(attrs["box_length"])
            kwargs.update(n_particles=int(attrs["n_particles"]), dim=int(attrs["dim"]),
                          anchors=[[float(v) / box_length for v in point] for point in attrs["anchor_points"]])
        return kwargs

    def figure_args(self, attrs):
        return (float(attrs["distance_scale"]), int(attrs["n_particles"]))


DISTANCE = Distance()
