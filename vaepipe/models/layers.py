"""Custom Keras layers of the VAEs. Backend-agnostic (``keras.ops`` only) and serializable.

Every layer is registered under the package name ``vaepipe``, so ``keras.models.load_model`` finds it once
``vaepipe.models`` is imported.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["Sampling", "ClipValues", "Symmetrize", "PairwiseDistances"]


@keras.saving.register_keras_serializable(package="vaepipe")
class Sampling(keras.layers.Layer):
    """Reparameterised draw ``z = z_mean + exp(z_log_var / 2) * eps``, eps ~ N(0, I).

    Inputs ``[z_mean, z_log_var]``, each (batch, latent_dim); output (batch, latent_dim). The noise comes from
    a seeded ``keras.random.SeedGenerator``, so training with a fixed seed is repeatable on every backend.
    Outside training (``training=False``) it returns ``z_mean``: encoding and reconstruction are then
    deterministic, which is what the metrics and the latent files use.
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        if not training:
            return z_mean
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="vaepipe")
class ClipValues(keras.layers.Layer):
    """Clamp to ``[min_value, max_value]``: keeps ``exp(z_log_var)`` finite however the encoder drifts."""

    def __init__(self, min_value: float = -10.0, max_value: float = 10.0, **kwargs):
        super().__init__(**kwargs)
        if not min_value < max_value:
            raise ValueError(f"ClipValues needs min_value < max_value, got {min_value} and {max_value}")
        self.min_value = float(min_value)
        self.max_value = float(max_value)

    def call(self, inputs):
        return ops.clip(inputs, self.min_value, self.max_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_value": self.min_value, "max_value": self.max_value}


@keras.saving.register_keras_serializable(package="vaepipe")
class Symmetrize(keras.layers.Layer):
    """``(A + A^T) / 2`` with a zero diagonal, for (batch, M, M, 1) distance matrices (channel last).

    Values stay in the input's range (an average of two values), so a sigmoid output stays in [0, 1].
    """

    def call(self, inputs):
        matrix = inputs[..., 0]
        size = ops.shape(matrix)[-1]
        off_diagonal = 1.0 - ops.eye(size, dtype=matrix.dtype)
        symmetric = 0.5 * (matrix + ops.transpose(matrix, (0, 2, 1))) * off_diagonal
        return ops.expand_dims(symmetric, -1)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="vaepipe")
class PairwiseDistances(keras.layers.Layer):
    """Normalised distance matrix of decoded coordinates, with fixed anchor points appended.

    Input (batch, N, dim): particle coordinates / box_length. Output (batch, N + A, N + A): Euclidean distances
    of the particles and the ``anchors`` (A, dim; also / box_length) times ``scale`` (1 / sqrt(dim) makes them
    distances / box diagonal, the distance features' normalisation). Every output is an exact Euclidean
    distance matrix: symmetric, zero diagonal, triangle inequality.
    """

    def __init__(self, anchors=(), scale: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.anchors = [[float(v) for v in point] for point in anchors]
        self.scale = float(scale)

    def call(self, inputs):
        points = inputs
        if self.anchors:
            anchors = ops.convert_to_tensor(self.anchors, dtype=inputs.dtype)
            anchors = ops.broadcast_to(anchors[None], (ops.shape(inputs)[0], *anchors.shape))
            points = ops.concatenate([inputs, anchors], axis=1)
        diff = points[:, :, None, :] - points[:, None, :, :]
        squared = ops.sum(ops.square(diff), axis=-1)
        size = ops.shape(squared)[-1]
        off_diagonal = 1.0 - ops.eye(size, dtype=squared.dtype)
        # sqrt has an infinite slope at 0: keep the diagonal away from it, then zero it exactly.
        return ops.sqrt(squared + (1.0 - off_diagonal)) * off_diagonal * self.scale

    def compute_output_shape(self, input_shape):
        size = input_shape[1] + len(self.anchors)
        return (input_shape[0], size, size)

    def get_config(self):
        return {**super().get_config(), "anchors": self.anchors, "scale": self.scale}
