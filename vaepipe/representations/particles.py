"""``particles``: the configuration as a set of particles, in no particular order.

Features (S, N, dim) float32: the positions / L, in [0, 1], in the samples file's particle order (which carries no
meaning: the model sorts by height itself and matches its output to the input by an optimal assignment). Error:
``rmsd_sigma``, the permutation-aware RMSD in the box frame (Hungarian assignment, no rotation), sigma. Model:
the particle VAE (:mod:`vaepipe.models.particles`), whose decoder emits coordinates and whose loss holds the
energy. Augmentation (``vae.particles.augment``): the box's symmetries of each state point
(:func:`vaepipe.boundary.box_symmetries`).
"""

from __future__ import annotations

import math

import numpy as np

from vaepipe.boundary import apply_symmetry, box_symmetries
from vaepipe.representations._base import FeatureSet, Representation
from vaepipe.structure import matched_rmsd

_MODEL_KEYS = ("latent_dim", "profile_dim", "refinement_layers", "min_distance", "projection_steps",
               "post_refinement_layers", "beta",
               "free_bits", "noise", "energy_weight", "energy_tolerance", "energy_cap", "local_weight",
               "local_scale", "overlap_weight", "overlap_distance", "matching_epsilon", "matching_iterations")


def particle_pca(positions: np.ndarray, num_components: int, box_length: float, mirror: bool = True):
    """Mean (N * dim,) and the leading components (k, N * dim) with their standard deviations (k,) of
    height-sorted configurations (S, N, dim) in sigma; ``mirror`` adds the x (and y) mirror images, so the
    components respect the box's symmetry."""
    x = np.asarray(positions, dtype=np.float64)
    if mirror:
        copies = [x]
        for axis in range(x.shape[-1] - 1):
            flipped = np.concatenate([c.copy() for c in copies])
            flipped[..., axis] = box_length - flipped[..., axis]
            copies.append(flipped)
        x = np.concatenate(copies)
    order = np.argsort(x[..., -1], axis=1, kind="stable")
    flat = np.take_along_axis(x, order[..., None], axis=1).reshape(len(x), -1)
    mean = flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
    k = min(num_components, vt.shape[0])
    std = singular[:k] / math.sqrt(max(len(flat) - 1, 1))
    return mean, vt[:k], np.where(std > 1e-12, std, 1.0)


class Particles(Representation):
    name = "particles"
    defaults = {}
    file_attrs = {}
    extras = ()
    model_builder = "build_particle_vae"
    figure = "particles_reconstruction_figure"

    def _canonical(self, full):
        return {}

    def params_from_attrs(self, attrs):
        return {}

    def feature_shape(self, params, n_particles, dim, box_length):
        return (n_particles, dim)

    def file_shape(self, attrs, num_anchors):
        return (int(attrs["n_particles"]), int(attrs["dim"]))

    def featurize(self, positions, box_length, boundary, params):
        return FeatureSet(self.name, (np.asarray(positions, dtype=np.float64) / box_length).astype(np.float32))

    def positions(self, features, attrs) -> np.ndarray:
        """(S, N, dim) features -> positions in sigma, float64."""
        return np.asarray(features, dtype=np.float64) * float(attrs["box_length"])

    def decode_positions(self, features, attrs):
        """Decoded features are coordinates / L: positions in sigma, clipped into the box."""
        return np.clip(self.positions(features, attrs), 0.0, float(attrs["box_length"]))

    def errors(self, diff, original, attrs):
        rmsd = np.atleast_1d(matched_rmsd(self.positions(original + diff, attrs), self.positions(original, attrs)))
        return {"rmsd_sigma": rmsd, "recon_error": rmsd}

    def augment(self, features, gamma, attrs, kind):
        """Each training configuration with its images under the box's symmetries of its state point (4 mirror
        images; all symmetries: 8 under gravity, 48 at gamma = 0 in 3D). Returns (features, row of the
        original)."""
        if kind == "none":
            return features, np.arange(len(features))
        dim, boundary = int(attrs["dim"]), str(attrs.get("boundary", "reflect"))
        parts, rows = [], []
        for value in np.unique(gamma):
            index = np.flatnonzero(gamma == value)
            for perm, flips in box_symmetries(dim, boundary, float(value), kind):
                parts.append(apply_symmetry(features[index], 1.0, perm, flips).astype(np.float32))
                rows.append(index)
        rows = np.concatenate(rows)
        order = np.argsort(rows, kind="stable")
        return np.concatenate(parts)[order], rows[order]

    def model_kwargs(self, params, attrs):
        kwargs = {k: params[k] for k in _MODEL_KEYS if k in params}
        if "hidden_units" in params:
            kwargs["hidden_units"] = tuple(params["hidden_units"])
        kwargs.update(n_particles=int(attrs["n_particles"]), dim=int(attrs["dim"]),
                      box_length=float(attrs["box_length"]))
        return kwargs

    def figure_args(self, attrs):
        return (float(attrs["box_length"]), int(attrs["dim"]))


PARTICLES = Particles()
