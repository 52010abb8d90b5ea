"""The particle VAE: a beta-VAE of particle coordinates whose loss knows the physics (architecture ``particles``
of the ``coordinates`` representation).

    vae = build_particle_vae((30, 3), n_particles=30, dim=3, box_length=5.0, latent_dim=68, profile_dim=4)
    vae.initialize_from_data(x_train)          # the linear paths from the PCA of the training configurations
    vae.compile(optimizer="adam"); vae.fit(x_train, gamma_train)   # gamma (S,) for the gravity energy

Inputs are the particles features, (batch, N, dim) positions / L in any particle order (or flattened to N * dim);
the encoder sorts the particles by height itself. The decoder returns the same shape. The latent has two blocks:

- ``profile_dim`` dimensions encoded from the sorted heights alone (a permutation-invariant function of the
  configuration that holds sum(z), the statistic that tells gravities apart), and
- ``latent_dim - profile_dim`` dimensions encoded from the whole height-sorted configuration.

Encoder and decoder each have a linear path, initialised from the principal components of the training
configurations (a 64-dimensional linear code reconstructs them to about 0.08 sigma), plus a ReLU network that
starts at zero and learns the rest. The decoder's coordinates then pass ``refinement_layers`` learned pair
updates (:class:`PairRefinement`, a radial function learned from the data) and an excluded-volume projection
(:class:`ExcludedVolume`: pairs closer than ``min_distance`` pushed apart, ``projection_steps`` times; 0 turns it
off). The loss per sample, in nats and ramped in with the KL weight where noted:

    |x_hat - x|^2 matched / (2 noise^2)                       (permutation-aware, :func:`matched_squared_error`)
  + beta * kl_weight * KL
  + kl_weight * energy_weight * huber((U(x_hat) - U(x)) / (N energy_tolerance))   (U: capped LJ + gravity;
                                                         huber(d) = sqrt(1 + d^2) - 1: quadratic, then linear)
  + kl_weight * local_weight * [the same energy term + overlap_weight * hinge] of decodings of latents
    perturbed around the batch's posterior means by local_scale aggregate standard deviations

The last term trains what generation needs: draws from a Gaussian mixture of the posterior means land between
training samples, and there the decoder must still produce configurations of the right energy.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
from keras import layers, ops

from vaepipe.models.layers import ClipValues, Sampling
from vaepipe.models.physics import capped_energy, matched_squared_error, overlap_hinge, pair_distances
from vaepipe.models.vae import VAE, check_positive
from vaepipe.representations.particles import particle_pca

__all__ = ["ParticleVAE", "HeightSorted", "PairRefinement", "ExcludedVolume", "build_particle_vae"]


def _register(cls):
    return keras.saving.register_keras_serializable(package="vaepipe")(cls)


@_register
class HeightSorted(keras.layers.Layer):
    """(batch, N, dim) or (batch, N * dim) positions / L -> (batch, N, dim) positions in sigma, sorted by height
    (the last coordinate)."""

    def __init__(self, n_particles: int, dim: int, box_length: float, **kwargs):
        super().__init__(**kwargs)
        self.n_particles, self.dim, self.box_length = int(n_particles), int(dim), float(box_length)

    def call(self, inputs):
        x = ops.reshape(inputs, (-1, self.n_particles, self.dim)) * self.box_length
        order = ops.argsort(x[..., -1], axis=1)
        return ops.take_along_axis(x, order[..., None], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n_particles, self.dim)

    def get_config(self):
        return {**super().get_config(), "n_particles": self.n_particles, "dim": self.dim,
                "box_length": self.box_length}


@_register
class Heights(keras.layers.Layer):
    """(batch, N, dim) -> (batch, N): the last coordinate divided by ``scale``."""

    def __init__(self, scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        return inputs[..., -1] / self.scale

    def compute_output_shape(self, input_shape):
        return input_shape[:-1]

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@_register
class PairRefinement(keras.layers.Layer):
    """A learned, permutation- and rotation-equivariant update of particle positions:
    ``x_i += sum_j f(r_ij) (x_i - x_j) / r_ij``, then clipped into [0, L].

    f is a small network of a Gaussian radial-basis expansion of r (``num_rbf`` centres from ``r_min`` to
    ``r_max`` sigma), zero at initialisation (the layer starts as the identity), and fades out beyond ``r_max``.
    It learns a pair "force" from the data: how decoded particles at distance r must move to look like the
    training configurations.
    """

    def __init__(self, box_length: float, num_rbf: int = 16, r_min: float = 0.5, r_max: float = 2.5,
                 units: int = 32, max_step: float = 0.25, **kwargs):
        super().__init__(**kwargs)
        self.box_length, self.num_rbf, self.units = float(box_length), int(num_rbf), int(units)
        self.max_step = float(max_step)
        self.r_min, self.r_max = float(r_min), float(r_max)
        self.hidden = layers.Dense(self.units, activation="silu", name="hidden")
        self.out = layers.Dense(1, kernel_initializer="zeros", name="out")

    def build(self, input_shape):
        self.hidden.build((None, self.num_rbf))
        self.out.build((None, self.units))
        self.built = True

    def call(self, x):
        n = ops.shape(x)[1]
        off_diagonal = 1.0 - ops.eye(n, dtype=x.dtype)
        diff = x[:, :, None, :] - x[:, None, :, :]
        r = pair_distances(x)
        centres = ops.linspace(self.r_min, self.r_max, self.num_rbf)
        width = (self.r_max - self.r_min) / (self.num_rbf - 1)
        rbf = ops.exp(-ops.square((r[..., None] - ops.cast(centres, x.dtype)) / width))
        fade = ops.exp(-ops.square(ops.relu(r - self.r_max)) / 0.1)
        f = self.out(self.hidden(rbf))[..., 0] * off_diagonal * fade
        step = ops.sum((f / r)[..., None] * diff, axis=2)
        # At most max_step sigma per particle and layer (a smooth saturation): one wild pair cannot fling a
        # particle across the box, or the gradients with it.
        length = ops.sqrt(ops.sum(ops.square(step), axis=-1, keepdims=True) + 1e-12)
        step = step * (self.max_step * ops.tanh(length / self.max_step) / length)
        return ops.clip(x + step, 0.0, self.box_length)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "box_length": self.box_length, "num_rbf": self.num_rbf,
                "r_min": self.r_min, "r_max": self.r_max, "units": self.units, "max_step": self.max_step}


@_register
class ExcludedVolume(keras.layers.Layer):
    """Excluded-volume projection: ``steps`` times, every pair closer than ``min_distance`` is pushed apart along
    its separation by half the shortfall (summed over a particle's overlaps), then clipped into [0, L]. Pairs at
    ``min_distance`` or more never move it: on Monte Carlo configurations (no pair below 0.88 sigma in the demo)
    it is the identity for min_distance <= 0.88."""

    def __init__(self, box_length: float, min_distance: float = 0.9, steps: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.box_length, self.min_distance, self.steps = float(box_length), float(min_distance), int(steps)

    def call(self, x):
        n = ops.shape(x)[1]
        off_diagonal = 1.0 - ops.eye(n, dtype=x.dtype)
        for _ in range(self.steps):
            diff = x[:, :, None, :] - x[:, None, :, :]
            r = pair_distances(x)
            push = 0.5 * ops.relu(self.min_distance - r) * off_diagonal
            x = ops.clip(x + ops.sum((push / r)[..., None] * diff, axis=2), 0.0, self.box_length)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "box_length": self.box_length, "min_distance": self.min_distance,
                "steps": self.steps}


@_register
class ParticleVAE(VAE):
    """A :class:`VAE` of particle coordinates with the physics-aware loss of this module's docstring.

    ``fit(x, gamma)``: the second array is each sample's gravity strength (for the energy terms); ``fit(x)``
    leaves gravity out of them. Metrics: ``loss``, ``reconstruction`` (matched, nats), ``kl``, ``energy`` and
    ``local`` (their penalties before weighting).
    """

    def __init__(self, encoder, decoder, beta=1.0, reconstruction_loss="matched", free_bits=0.0, *,
                 n_particles: int, dim: int, box_length: float, noise: float = 0.1, energy_weight: float = 1.0,
                 energy_tolerance: float = 0.25, energy_cap: float = 0.85, local_weight: float = 1.0,
                 local_scale: float = 1.0, overlap_weight: float = 100.0, overlap_distance: float = 0.9,
                 matching_epsilon: float = 0.01, matching_iterations: int = 30, seed: int | None = None,
                 **kwargs):
        super().__init__(encoder, decoder, beta=beta, reconstruction_loss="mse", free_bits=free_bits, **kwargs)
        self.reconstruction_loss = "matched"
        for name, value in (("noise", noise), ("energy_tolerance", energy_tolerance), ("energy_cap", energy_cap),
                            ("overlap_distance", overlap_distance), ("matching_epsilon", matching_epsilon)):
            check_positive(name, value)
        for name, value in (("energy_weight", energy_weight), ("local_weight", local_weight),
                            ("local_scale", local_scale), ("overlap_weight", overlap_weight)):
            check_positive(name, value, allow_zero=True)
        check_positive("matching_iterations", matching_iterations, integer=True, allow_zero=True)
        self.n_particles, self.dim, self.box_length = int(n_particles), int(dim), float(box_length)
        self.noise, self.energy_weight, self.energy_tolerance = float(noise), float(energy_weight), \
            float(energy_tolerance)
        self.energy_cap, self.local_weight, self.local_scale = float(energy_cap), float(local_weight), \
            float(local_scale)
        self.overlap_weight, self.overlap_distance = float(overlap_weight), float(overlap_distance)
        self.matching_epsilon, self.matching_iterations = float(matching_epsilon), int(matching_iterations)
        self.seed = seed
        self.local_noise = keras.random.SeedGenerator(seed)
        self.energy_tracker = keras.metrics.Mean(name="energy")
        self.local_tracker = keras.metrics.Mean(name="local")

    @property
    def profile_dim(self) -> int:
        """Leading latent dimensions encoded from the sorted heights alone (0 without a profile block)."""
        try:
            return int(self.encoder.get_layer("profile_mean").units)
        except ValueError:
            return 0

    # ------------------------------------------------------------------ geometry

    def positions(self, features):
        """(batch, N * dim) features -> (batch, N, dim) positions in sigma."""
        return ops.reshape(ops.cast(features, "float32"), (-1, self.n_particles, self.dim)) * self.box_length

    def reconstruction_nll(self, x, x_hat):
        """-log p(x | x_hat) per sample, nats: a Gaussian of standard deviation ``noise`` sigma per coordinate
        around the decoded particles, matched to the input's (permutation-aware)."""
        target, predicted = self.positions(x), self.positions(x_hat)
        if self.matching_iterations == 0:  # the decoder's slots follow the encoder's height order
            order = ops.argsort(target[..., -1], axis=1)
            target = ops.take_along_axis(target, order[..., None], axis=1)
        squared = matched_squared_error(predicted, target, self.matching_epsilon, self.matching_iterations)
        constant = self.n_particles * self.dim * 0.5 * math.log(2.0 * math.pi * self.noise ** 2)
        return squared / (2.0 * self.noise ** 2) + constant

    def _energy_penalty(self, predicted, target_energy, gamma):
        """Pseudo-Huber penalty of the energy error in units of N * energy_tolerance: quadratic within the
        tolerance, linear beyond, so that a decoded overlap's huge energy cannot blow up the gradients."""
        energy = capped_energy(predicted, gamma, self.energy_cap)
        scaled = (energy - target_energy) / (self.n_particles * self.energy_tolerance)
        return ops.sqrt(1.0 + ops.square(scaled)) - 1.0

    # ------------------------------------------------------------------ loss

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        recon = self.reconstruction_nll(x, y_pred["reconstruction"])
        kl_dims = self.kl_dims(y_pred["z_mean"], y_pred["z_log_var"])
        kl, kl_term = ops.sum(kl_dims, axis=-1), self.kl_term(kl_dims)
        weight = ops.cast(self.kl_weight, recon.dtype)
        total = ops.mean(recon) + self.beta * weight * kl_term
        gamma = None if y is None else ops.cast(ops.reshape(y, (-1,)), recon.dtype)
        target = self.positions(x)
        target_energy = capped_energy(target, gamma, self.energy_cap)
        predicted = self.positions(y_pred["reconstruction"])
        energy = self._energy_penalty(predicted, target_energy, gamma)
        if self.energy_weight > 0:
            total = total + weight * self.energy_weight * ops.mean(energy)
        local = ops.zeros_like(energy)
        if self.local_weight > 0:
            z_mean = y_pred["z_mean"]
            spread = ops.std(z_mean, axis=0, keepdims=True)
            noise = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.local_noise)
            perturbed = ops.stop_gradient(z_mean + self.local_scale * spread * noise)
            decoded = self.positions(self.decoder(perturbed, training=training))
            local = self._energy_penalty(decoded, target_energy, gamma) + self.overlap_weight * overlap_hinge(
                decoded, self.overlap_distance)
            total = total + weight * self.local_weight * ops.mean(local)
        self.reconstruction_tracker.update_state(recon)
        self.kl_tracker.update_state(kl)
        self.energy_tracker.update_state(energy)
        self.local_tracker.update_state(local)
        for loss in self.losses:
            total = total + ops.cast(loss, total.dtype)
        return total

    # ------------------------------------------------------------------ initialisation and config

    def initialize_from_data(self, features, mirror: bool = False) -> None:
        """Set the encoder's and decoder's linear paths from the principal components of the training
        configurations (features (S, N, dim), positions / L): the encoder projects onto the leading components, whitened; the
        decoder maps back. The networks beside them start at zero, so the untrained model is that PCA."""
        x = np.asarray(features, dtype=np.float64).reshape(-1, self.n_particles, self.dim) * self.box_length
        encoder_linear = self.encoder.get_layer("local_linear")
        decoder_linear = self.decoder.get_layer("decoder_linear")
        k = int(encoder_linear.units)
        profile = self.latent_dim - k
        mean, components, std = particle_pca(x, k, self.box_length, mirror)
        found = components.shape[0]
        kernel = np.zeros((components.shape[1], k))
        kernel[:, :found] = (components / std[:, None]).T
        encoder_linear.set_weights([kernel.astype("float32"), (-(mean @ kernel)).astype("float32")])
        weights = np.zeros((self.latent_dim, components.shape[1]))
        weights[profile:profile + found] = components * std[:, None]
        decoder_linear.set_weights([weights.astype("float32"), mean.astype("float32")])

    def get_config(self):
        config = super().get_config()
        config.pop("reconstruction_loss", None)
        config.update({k: getattr(self, k) for k in (
            "n_particles", "dim", "box_length", "noise", "energy_weight", "energy_tolerance", "energy_cap",
            "local_weight", "local_scale", "overlap_weight", "overlap_distance", "matching_epsilon",
            "matching_iterations", "seed")})
        return config


def _mlp(x, units: Sequence[int], prefix: str):
    for i, u in enumerate(units):
        x = layers.Dense(u, activation="relu", name=f"{prefix}{i}")(x)
    return x


def build_particle_vae(input_shape, n_particles: int, dim: int, box_length: float, latent_dim: int = 64,
                       profile_dim: int = 4, hidden_units: Sequence[int] = (256,), refinement_layers: int = 3,
                       min_distance: float = 0.9, projection_steps: int = 5, post_refinement_layers: int = 0,
                       beta: float = 1.0,
                       free_bits: float = 0.0, seed: int | None = None, name: str = "particle_vae",
                       **loss) -> ParticleVAE:
    """The particle VAE (module docstring). ``loss``: the keyword arguments of :class:`ParticleVAE` (noise,
    energy_weight, energy_tolerance, energy_cap, local_weight, local_scale, overlap_weight, overlap_distance,
    matching_epsilon, matching_iterations)."""
    n, dim, box = int(n_particles), int(dim), float(box_length)
    input_shape = tuple(int(v) for v in input_shape)
    if input_shape not in ((n, dim), (n * dim,)):
        raise ValueError(f"build_particle_vae: input_shape must be (n_particles, dim) = ({n}, {dim}) or "
                         f"({n * dim},), got {input_shape}")
    check_positive("latent_dim", latent_dim, integer=True)
    check_positive("profile_dim", profile_dim, integer=True, allow_zero=True)
    if profile_dim >= latent_dim:
        raise ValueError(f"profile_dim must be smaller than latent_dim, got {profile_dim} and {latent_dim}; "
                         f"the rest of the latent encodes the horizontal placement")
    check_positive("refinement_layers", refinement_layers, integer=True, allow_zero=True)
    check_positive("projection_steps", projection_steps, integer=True, allow_zero=True)
    check_positive("post_refinement_layers", post_refinement_layers, integer=True, allow_zero=True)
    check_positive("min_distance", min_distance)
    hidden = tuple(int(u) for u in hidden_units)
    local_dim = latent_dim - profile_dim

    inputs = keras.Input(shape=input_shape, name="input")
    ordered = HeightSorted(n, dim, box, name="height_sorted")(inputs)
    flat = layers.Reshape((n * dim,), name="flat")(ordered)
    scaled = layers.Rescaling(1.0 / box, name="scaled")(flat)
    h = _mlp(scaled, hidden, "local_hidden")
    local_mean = layers.Add(name="local_mean")([
        layers.Dense(local_dim, name="local_linear")(flat),
        layers.Dense(local_dim, kernel_initializer="zeros", name="local_residual")(h)])
    local_log_var = layers.Dense(local_dim, name="local_log_var")(h)
    if profile_dim:
        heights = Heights(box, name="heights")(ordered)
        p = _mlp(heights, (64,), "profile_hidden")
        z_mean = layers.Concatenate(name="z_mean")([layers.Dense(profile_dim, name="profile_mean")(p), local_mean])
        z_log_var = layers.Concatenate(name="z_log_var_raw")([layers.Dense(profile_dim, name="profile_log_var")(p),
                                                               local_log_var])
    else:
        z_mean, z_log_var = local_mean, local_log_var
    z_log_var = ClipValues(-10.0, 10.0, name="z_log_var")(z_log_var)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    encoder = keras.Model(inputs, [z_mean, z_log_var, z], name=f"{name}_encoder")

    latent = keras.Input(shape=(latent_dim,), name="z")
    y = layers.Add(name="coordinates")([
        layers.Dense(n * dim, name="decoder_linear")(latent),
        layers.Dense(n * dim, kernel_initializer="zeros", name="decoder_residual")(_mlp(latent, hidden, "decoder_hidden"))])
    y = layers.Reshape((n, dim), name="points")(y)
    for i in range(refinement_layers):
        y = PairRefinement(box, name=f"refinement{i}")(y)
    if projection_steps:
        y = ExcludedVolume(box, min_distance, projection_steps, name="excluded_volume")(y)
    else:
        y = ClipValues(0.0, box, name="in_box")(y)
    for i in range(post_refinement_layers):
        y = PairRefinement(box, name=f"post_refinement{i}")(y)
    y = layers.Rescaling(1.0 / box, name="normalized")(layers.Reshape(input_shape, name="output_shape")(y))
    decoder = keras.Model(latent, y, name=f"{name}_decoder")
    model = ParticleVAE(encoder, decoder, beta=beta, free_bits=free_bits, n_particles=n, dim=dim, box_length=box,
                        seed=seed, name=name, **loss)
    return model
