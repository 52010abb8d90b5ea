"""Keras 3 VAEs of vaepipe (backend-agnostic model code; TensorFlow is the default backend).

Importing this package imports Keras. Stages that do not train or encode must not import it (it costs seconds
and half a gigabyte per process).
"""

from vaepipe.models.regressor import train_coordinate_regressor
from vaepipe.models.layers import ClipValues, PairwiseDistances, Sampling, Symmetrize
from vaepipe.models.particles import ExcludedVolume, PairRefinement, ParticleVAE, build_particle_vae
from vaepipe.models.vae import (
    DISTANCE_ARCHITECTURES,
    RECONSTRUCTION_LOSSES,
    VAE,
    build_dense_vae,
    build_distance_vae,
    build_voxel_vae,
    kl_divergence,
    reconstruction_loss,
)

__all__ = [
    "RECONSTRUCTION_LOSSES",
    "DISTANCE_ARCHITECTURES",
    "VAE",
    "Sampling",
    "ClipValues",
    "Symmetrize",
    "PairwiseDistances",
    "build_voxel_vae",
    "build_distance_vae",
    "build_dense_vae",
    "build_particle_vae",
    "ParticleVAE",
    "PairRefinement",
    "ExcludedVolume",
    "kl_divergence",
    "reconstruction_loss",
    "train_coordinate_regressor",
]
