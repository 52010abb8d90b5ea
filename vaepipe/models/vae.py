"""beta-VAEs of the three representations, built as functional encoder and decoder graphs.

    build_voxel_vae(input_shape=(16, 16, 16), latent_dim=32, filters=(16, 32, 64), ...)   Conv3D (Conv2D for 2D)
    build_distance_vae(input_shape=(38, 38), latent_dim=64, filters=(16, 32, 64), ...)   Conv2D, symmetric output
    build_dense_vae(input_shape=(90,), latent_dim=2, hidden_units=(45, 22), ...)          the seed's dense baseline

Each returns a :class:`VAE`, whose ``encoder`` maps a batch of inputs to ``[z_mean, z_log_var, z]`` and whose
``decoder`` maps latent vectors back to inputs in [0, 1] (sigmoid output). The loss (per sample, averaged over
the batch) is

    reconstruction + beta * kl_weight * KL(q(z|x) || N(0, I))

with the reconstruction summed over every input element (binary cross-entropy or squared error), so beta = 1 is
the true negative ELBO. ``kl_weight`` is a non-trainable scalar that a warm-up callback ramps from 0 to 1.
``free_bits`` > 0 floors the batch-mean KL of each latent dimension at that many nats (Kingma et al. 2016), a
guard against posterior collapse. The KL term lives in :meth:`VAE.compute_loss`, not in a GradientTape, so the
model trains with ``fit`` on the TensorFlow, JAX and PyTorch backends alike.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
from keras import layers, ops

from vaepipe.models.layers import ClipValues, PairwiseDistances, Sampling, Symmetrize

__all__ = [
    "RECONSTRUCTION_LOSSES",
    "DISTANCE_ARCHITECTURES",
    "VAE",
    "build_voxel_vae",
    "build_distance_vae",
    "build_dense_vae",
    "reconstruction_loss",
    "kl_divergence",
]

RECONSTRUCTION_LOSSES = ("bce", "mse")
DISTANCE_ARCHITECTURES = ("rows", "conv")

#: Bounds of the encoder's log-variance: exp(10) ~ 2e4 and exp(-10) ~ 5e-5 keep every term finite in float32.
LOG_VAR_BOUNDS = (-10.0, 10.0)

_EPSILON = 1e-7


def reconstruction_loss(x, x_hat, kind: str = "bce"):
    """Per-sample reconstruction loss, summed over every element: (batch, ...) x 2 -> (batch,).

    ``"bce"``: binary cross-entropy with targets in [0, 1] (the grids and matrices are such); ``"mse"``: the
    squared error (a unit-variance Gaussian likelihood up to a constant and a factor 2).
    """
    x = ops.cast(x, x_hat.dtype)
    if kind == "bce":
        p = ops.clip(x_hat, _EPSILON, 1.0 - _EPSILON)
        elementwise = -(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p))
    elif kind == "mse":
        elementwise = ops.square(x - x_hat)
    else:
        raise ValueError(f"reconstruction_loss must be one of {RECONSTRUCTION_LOSSES}, got {kind!r}")
    return ops.sum(ops.reshape(elementwise, (ops.shape(elementwise)[0], -1)), axis=-1)


def kl_divergence(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, 1)) per sample and latent dimension, in nats: (batch, latent_dim)."""
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_positive(name: str, value, integer: bool = False, allow_zero: bool = False) -> None:
    """ValueError unless ``value`` is a finite number (an int with ``integer``) > 0 (>= 0 with ``allow_zero``)."""
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else isinstance(value, (int, float))
    ok = ok and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "integer" if integer else "number"
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite {kind} {bound}, got {value!r}")


@keras.saving.register_keras_serializable(package="vaepipe")
class VAE(keras.Model):
    """A beta-VAE around a functional ``encoder`` (x -> [z_mean, z_log_var, z]) and ``decoder`` (z -> x_hat).

    Calling the model returns ``{"reconstruction", "z_mean", "z_log_var"}``; in training the reconstruction is
    decoded from a sampled z, otherwise from ``z_mean``. ``fit(x)`` needs no targets: the input is the target.
    Metrics in the history: ``loss`` (the objective), ``reconstruction`` and ``kl`` (per sample, nats; the KL
    unweighted), each also with a ``val_`` prefix.
    """

    def __init__(self, encoder, decoder, beta: float = 1.0, reconstruction_loss: str = "bce",
                 free_bits: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        check_positive("beta", beta, allow_zero=True)
        _check_choice("reconstruction_loss", reconstruction_loss, RECONSTRUCTION_LOSSES)
        check_positive("free_bits", free_bits, allow_zero=True)
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.reconstruction_loss = reconstruction_loss
        self.free_bits = float(free_bits)
        self.kl_weight = self.add_weight(name="kl_weight", shape=(), initializer="ones", trainable=False)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def latent_dim(self) -> int:
        return int(self.encoder.outputs[0].shape[-1])

    def call(self, inputs, training=None):
        z_mean, z_log_var, z = self.encoder(inputs, training=training)
        return {"reconstruction": self.decoder(z, training=training), "z_mean": z_mean, "z_log_var": z_log_var}

    def reconstruction_nll(self, x, x_hat):
        """The reconstruction term per sample, (batch,) nats: the model's negative log-likelihood of the input
        ``x`` given the decoded ``x_hat`` (binary cross-entropy or squared error, summed over the input)."""
        return reconstruction_loss(x, x_hat, self.reconstruction_loss)

    def kl_dims(self, z_mean, z_log_var):
        """KL(q(z|x) || N(0, I)) per sample and latent dimension, nats."""
        return kl_divergence(z_mean, z_log_var)

    def kl_term(self, kl_dims):
        """The batch's KL term of the objective (before beta and the warm-up weight), with free bits."""
        if self.free_bits > 0:
            return ops.sum(ops.maximum(ops.mean(kl_dims, axis=0), self.free_bits))
        return ops.mean(ops.sum(kl_dims, axis=-1))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # The input is the target; y (per-sample labels such as gamma) is for models whose loss needs them.
        recon = self.reconstruction_nll(x, y_pred["reconstruction"])
        kl_dims = self.kl_dims(y_pred["z_mean"], y_pred["z_log_var"])
        kl = ops.sum(kl_dims, axis=-1)
        kl_term = self.kl_term(kl_dims)
        self.reconstruction_tracker.update_state(recon)
        self.kl_tracker.update_state(kl)
        total = ops.mean(recon) + self.beta * ops.cast(self.kl_weight, kl_term.dtype) * kl_term
        for loss in self.losses:  # regularizers of the sub-models, if any
            total = total + ops.cast(loss, total.dtype)
        return total

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "reconstruction_loss": self.reconstruction_loss,
            "free_bits": self.free_bits,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)

    def build(self, input_shape=None):
        # Both sub-models are functional graphs, built at construction.
        self.built = True


def _encoder_head(features, latent_dim: int, seed: int | None, name: str):
    z_mean = layers.Dense(latent_dim, name="z_mean")(features)
    z_log_var = layers.Dense(latent_dim, name="z_log_var_raw")(features)
    z_log_var = ClipValues(*LOG_VAR_BOUNDS, name="z_log_var")(z_log_var)
    z = Sampling(seed=seed, name="z")([z_mean, z_log_var])
    return z_mean, z_log_var, z


def _flat_encoder(inputs, features, dense_units: int, latent_dim: int, seed, name: str):
    """Encoder model: flatten the feature maps, an optional dense layer, then the latent head."""
    x = layers.Flatten(name="flatten")(features)
    if dense_units:
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    return keras.Model(inputs, list(_encoder_head(x, latent_dim, seed, name)), name=f"{name}_encoder")


def _decoder_input(latent_dim: int, dense_units: int):
    """Decoder input and its optional dense layer (the mirror of :func:`_flat_encoder`'s)."""
    latent = keras.Input(shape=(latent_dim,), name="z")
    y = layers.Dense(dense_units, activation="relu", name="dense")(latent) if dense_units else latent
    return latent, y


def _conv_layers(rank: int):
    if rank == 3:
        return layers.Conv3D, layers.MaxPooling3D, layers.UpSampling3D, layers.Cropping3D
    if rank == 2:
        return layers.Conv2D, layers.MaxPooling2D, layers.UpSampling2D, layers.Cropping2D
    raise ValueError(f"input_shape must have 2 or 3 spatial axes (a pixel or voxel grid), got {rank}")


def _check_shape(name: str, shape: Sequence[int], ranks: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(shape)
    if len(shape) not in ranks or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"{name}: input_shape must be {' or '.join(str(r) for r in ranks)} positive integers "
                         f"(without the channel axis), got {shape!r}")
    return shape


def _check_layers(name: str, values: Sequence[int]) -> tuple[int, ...]:
    values = tuple(values)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {list(values)!r}")
    return values


def _build_conv_vae(input_shape, latent_dim, filters, dense_units, beta, reconstruction_loss, free_bits, seed,
                    name, symmetric):
    """Conv encoder (blocks of conv 3^rank + 2x max pooling), dense latent head, mirrored decoder (stride-2
    upsampling + convolutions, the last one to a single sigmoid channel)."""
    rank = len(input_shape)
    conv, pool, upsample, crop = _conv_layers(rank)
    check_positive("latent_dim", latent_dim, integer=True)
    filters = _check_layers("filters", filters)
    check_positive("dense_units", dense_units, integer=True, allow_zero=True)
    factor = 2 ** len(filters)
    # Any grid side works (50^3, a 38 x 38 matrix): each pooling takes ceil(size / 2) ("same" pooling), so the
    # bottleneck is ceil(size / 2^blocks) per axis, and the decoder, which doubles it back blocks times, crops
    # its far end to the input size. On sides that are multiples of 2^blocks this is the plain model. The input
    # is never padded: TensorFlow 2.21's oneDNN graph rewrite (Intel AVX-512 CPUs) breaks a Pad op that feeds a
    # convolution, in fit and predict alike; max pooling's own "same" padding is no separate op.
    bottleneck = tuple(-(-size // factor) for size in input_shape)
    cropping = tuple(b * factor - size for b, size in zip(bottleneck, input_shape))

    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Reshape((*input_shape, 1), name="channel")(inputs)
    for i, f in enumerate(filters):
        x = conv(f, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = pool(2, padding="same", name=f"pool{i}")(x)
    encoder = _flat_encoder(inputs, x, dense_units, latent_dim, seed, name)
    latent, y = _decoder_input(latent_dim, dense_units)
    y = layers.Dense(math.prod(bottleneck) * filters[-1], activation="relu", name="expand")(y)
    y = layers.Reshape((*bottleneck, filters[-1]), name="reshape")(y)
    # Upsampling + convolution undoes each pooling block, channels mirrored: the decoder's convolution at each
    # resolution maps the encoder's output channels there back to its input channels (64 -> 32 -> 16 -> 1 for
    # the default filters), the last one to the single sigmoid channel. Transposed convolutions would be the
    # textbook mirror, but TensorFlow's CPU kernels for them are 4-15x slower than these (benchmarks/bench_vae.py).
    channels = [*reversed(filters[:-1]), 1]
    for i, f in enumerate(channels):
        y = upsample(2, name=f"upsample{i}")(y)
        last = i == len(channels) - 1
        y = conv(f, 3, padding="same", activation="sigmoid" if last else "relu",
                 name="output_conv" if last else f"deconv{i}", dtype="float32" if last else None)(y)
    if any(cropping):
        y = crop(tuple((0, c) for c in cropping), name="crop")(y)
    if symmetric:
        y = Symmetrize(name="symmetrize", dtype="float32")(y)
    y = layers.Reshape(input_shape, name="output", dtype="float32")(y)
    decoder = keras.Model(latent, y, name=f"{name}_decoder")
    return VAE(encoder, decoder, beta=beta, reconstruction_loss=reconstruction_loss, free_bits=free_bits,
               name=name)


def build_voxel_vae(input_shape, latent_dim: int = 32, filters: Sequence[int] = (16, 32, 64),
                    dense_units: int = 256, beta: float = 1.0, reconstruction_loss: str = "bce",
                    free_bits: float = 0.0, seed: int | None = None, name: str = "voxel_vae") -> VAE:
    """Conv3D VAE of (n, n, n) voxel grids (Conv2D for (n, n) pixel grids of 2D systems).

    The encoder is ``len(filters)`` blocks of convolution (3^rank kernel, ReLU) + (2, 2, 2) max pooling, as in
    the seed, then flatten, an optional dense layer, and ``z_mean`` / ``z_log_var``; the decoder mirrors it with
    upsampling + convolution blocks, the last of which gives the single sigmoid output channel. Inputs and outputs are (batch, *input_shape), values in [0, 1].
    """
    input_shape = _check_shape("build_voxel_vae", input_shape, (2, 3))
    return _build_conv_vae(input_shape, latent_dim, filters, dense_units, beta, reconstruction_loss, free_bits,
                           seed, name, symmetric=False)


def build_distance_vae(input_shape, latent_dim: int = 64, filters: Sequence[int] = (16, 32, 64),
                       dense_units: int = 256, beta: float = 1.0, reconstruction_loss: str = "bce",
                       free_bits: float = 0.0, seed: int | None = None, name: str = "distance_vae",
                       architecture: str = "conv", n_particles: int | None = None, anchors=(),
                       dim: int = 3) -> VAE:
    """Conv2D VAE of (M, M) normalised distance matrices (M = particles + anchors). Two architectures:

    - ``"conv"`` (the seed's): the encoder of :func:`build_voxel_vae` in 2D (3x3 convolutions + pooling) and the
      mirrored convolutional decoder, its output symmetrised with a zero diagonal: a symmetric dissimilarity
      matrix in [0, 1], not always a Euclidean one.
    - ``"rows"``: each row of the matrix is one particle's (or anchor's) distance profile, which fixes where it
      is (trilateration from the anchors). The encoder's first Conv2D spans a whole row (kernel 1 x M,
      ``filters[0]`` channels), then 1 x 1 Conv2Ds (``filters[1:]``), so every row becomes a feature vector
      in the matrix's order; flatten, dense, latent. The decoder's dense layers return the ``n_particles``
      coordinates (sigmoid, / box_length) and :class:`PairwiseDistances` their distance matrix with the fixed
      ``anchors`` (A, dim, / box_length): every decoded matrix is exactly Euclidean in ``dim`` dimensions.
    """
    input_shape = _check_shape("build_distance_vae", input_shape, (2,))
    if input_shape[0] != input_shape[1]:
        raise ValueError(f"build_distance_vae: distance matrices are square, got input_shape {input_shape}")
    _check_choice("architecture", architecture, DISTANCE_ARCHITECTURES)
    if architecture == "conv":
        return _build_conv_vae(input_shape, latent_dim, filters, dense_units, beta, reconstruction_loss, free_bits,
                               seed, name, symmetric=True)
    check_positive("latent_dim", latent_dim, integer=True)
    filters = _check_layers("filters", filters)
    check_positive("dense_units", dense_units, integer=True, allow_zero=True)
    anchors = [list(point) for point in anchors]
    if n_particles is None or n_particles + len(anchors) != input_shape[0]:
        raise ValueError(f"build_distance_vae: the rows architecture needs n_particles + len(anchors) = "
                         f"{input_shape[0]} (the matrix size), got n_particles={n_particles} and "
                         f"{len(anchors)} anchors")
    if dim not in (2, 3) or any(len(point) != dim for point in anchors):
        raise ValueError(f"build_distance_vae: dim must be 2 or 3 and every anchor must have dim coordinates, "
                         f"got dim={dim} and anchors {anchors}")
    size = input_shape[0]
    inputs = keras.Input(shape=input_shape, name="input")
    x = layers.Reshape((size, size, 1), name="channel")(inputs)
    x = layers.Conv2D(filters[0], (1, size), activation="relu", name="row_conv")(x)
    for i, f in enumerate(filters[1:]):
        x = layers.Conv2D(f, 1, activation="relu", name=f"row_mix{i}")(x)
    encoder = _flat_encoder(inputs, x, dense_units, latent_dim, seed, name)
    latent, y = _decoder_input(latent_dim, dense_units)
    y = layers.Dense(n_particles * dim, activation="sigmoid", name="coordinates", dtype="float32")(y)
    y = layers.Reshape((n_particles, dim), name="points")(y)
    y = PairwiseDistances(anchors=anchors, scale=1.0 / math.sqrt(dim), name="distances", dtype="float32")(y)
    decoder = keras.Model(latent, y, name=f"{name}_decoder")
    return VAE(encoder, decoder, beta=beta, reconstruction_loss=reconstruction_loss, free_bits=free_bits,
               name=name)


def build_dense_vae(input_shape, latent_dim: int = 2, hidden_units: Sequence[int] = (45, 22),
                    beta: float = 1.0, reconstruction_loss: str = "bce", free_bits: float = 0.0,
                    seed: int | None = None, name: str = "dense_vae") -> VAE:
    """The seed's first model: a dense VAE of flattened sorted coordinates, (D,) -> hidden layers -> latent.

    Kept as a baseline that shows why the convolutional models win (the seed: 60 -> 45 -> 22 -> 2).
    """
    input_shape = _check_shape("build_dense_vae", input_shape, (1,))
    check_positive("latent_dim", latent_dim, integer=True)
    hidden_units = _check_layers("hidden_units", hidden_units)
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, activation="relu", name=f"dense{i}")(x)
    encoder = keras.Model(inputs, list(_encoder_head(x, latent_dim, seed, name)), name=f"{name}_encoder")
    latent = keras.Input(shape=(latent_dim,), name="z")
    y = latent
    for i, units in enumerate(reversed(hidden_units)):
        y = layers.Dense(units, activation="relu", name=f"dense{i}")(y)
    y = layers.Dense(input_shape[0], activation="sigmoid", name="output", dtype="float32")(y)
    decoder = keras.Model(latent, y, name=f"{name}_decoder")
    return VAE(encoder, decoder, beta=beta, reconstruction_loss=reconstruction_loss, free_bits=free_bits,
               name=name)
