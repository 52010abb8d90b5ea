"""The Keras loop of the VAEs: thread pools, model building, training, encoding and decoding, evaluation.

    data = vaepipe.datasets.load_training_data(feature_files, seed=2024, validation_fraction=0.1, test_fraction=0.1)
    result = train_vae(data, params, seed=derive_seed(2024, "train", "voxel"), threads=2)
    result.model, result.history (DataFrame, one row per epoch), evaluate(result.model, data)

Each representation names its model builder and measures its own errors (vaepipe/representations/); the
workflow's stages are in :mod:`vaepipe.stages.train`.

Importing this module does not import Keras or TensorFlow; the functions that need them import them, after
:func:`configure_threads` has had its chance to set the thread pools.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from vaepipe import datasets, representations
from vaepipe.datasets import TrainingData, example_rows, stream_batches, streams
from vaepipe.seeds import seed_int

__all__ = [
    "TrainingResult",
    "configure_threads",
    "build_model",
    "train_vae",
    "decode",
    "encode",
    "evaluate",
    "reconstruction_errors",
    "sample_errors",
    "reconstruction_figure",
]

#: A latent dimension is "active" when its posterior mean varies over the data by more than this (Burda et al.
#: 2016: Cov_x(E_q[z_d]) > 0.01); a collapsed dimension's z_mean is the same for every input.
ACTIVE_UNIT_THRESHOLD = 0.01

# What train_vae needs from a model section of the config.
_TRAIN_KEYS = ("learning_rate", "epochs", "batch_size", "kl_warmup_epochs", "patience")


# --------------------------------------------------------------------------- threads


def configure_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in TensorFlow and oneDNN. Call before any TensorFlow op runs.

    Sets ``OMP_NUM_THREADS`` (oneDNN) and TensorFlow's intra-op pool to ``threads`` and the inter-op pool to
    at most 2 (independent ops; more only oversubscribes small machines).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # oneDNN's banner is noise; its speed is not (keep it on)
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:
            # TensorFlow was initialised already (e.g. a second call in one process): the pools stay as they are.
            pass


# --------------------------------------------------------------------------- models


def build_model(representation: str, input_shape: Sequence[int], params: Mapping[str, Any], seed: int | None = None,
                attrs: Mapping[str, Any] | None = None):
    """The VAE of a representation from its config section (latent_dim, beta, filters / hidden_units, decoder, ...).

    attrs : the features' attributes (n_particles, box_length, dim, anchor_points), needed by the rows
        distance architecture.
    """
    from vaepipe import models

    rep = representations.get(representation)
    builder = getattr(models, rep.builder_name(params))
    return builder(tuple(input_shape), seed=seed, **rep.model_kwargs(params, attrs or {}))


@dataclass
class TrainingResult:
    """A trained model, its per-epoch history and where it stopped."""

    model: Any
    history: pd.DataFrame
    best_epoch: int
    stopped_epoch: int


def _callbacks(name: str, warmup_epochs: int, patience: int, progress: bool):
    import keras

    class KLWarmup(keras.callbacks.Callback):
        """Ramp the KL weight linearly from 1/(warmup+1) to 1 over the first ``warmup`` epochs (Bowman et al.
        2016): the decoder learns to use z before the KL term pulls the posterior onto the prior."""

        def on_epoch_begin(self, epoch, logs=None):
            weight = 1.0 if warmup_epochs <= 0 else min(1.0, (epoch + 1) / (warmup_epochs + 1))
            self.model.kl_weight.assign(weight)

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["kl_weight"] = float(self.model.kl_weight.numpy())

    class StopOnNaN(keras.callbacks.Callback):
        """A non-finite loss stops training with an error naming the model, the epoch and the batch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def _check(self, logs, where):
            for key, value in (logs or {}).items():
                if key.endswith("loss") and not math.isfinite(float(value)):
                    raise FloatingPointError(
                        f"model {name}: {key} became {float(value)} at epoch {self.epoch + 1} ({where}); lower "
                        f"the learning_rate, raise kl_warmup_epochs, or check the features for NaN values")

        def on_train_batch_end(self, batch, logs=None):
            self._check(logs, f"batch {batch + 1}")

        def on_epoch_end(self, epoch, logs=None):
            self._check(logs, "end of epoch")

    class EpochLog(keras.callbacks.Callback):
        """One line per epoch on stderr (the job log): the objective, its two terms and the wall time."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            parts = [f"{k} {float(logs[k]):.5g}" for k in ("loss", "reconstruction", "kl", "energy", "local",
                                                             "val_loss", "val_reconstruction", "val_kl",
                                                             "val_energy", "kl_weight")
                     if k in logs]
            print(f"{name} epoch {epoch + 1}/{self.params.get('epochs')} ({time.perf_counter() - self.start:.1f} s): "
                  + ", ".join(parts), file=sys.stderr, flush=True)

    callbacks = [KLWarmup(), StopOnNaN()]
    if patience > 0:
        # The KL weight still rises during warm-up, so the validation loss rises with it: judge only after.
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                       start_from_epoch=warmup_epochs,
                                                       restore_best_weights=True))
    if progress:
        callbacks.append(EpochLog())
    return callbacks


def _dataset(x: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None, repeat: bool):
    """tf.data pipeline of (features, label) batches: shuffled index batches gathered from in-memory tensors (no
    per-sample slicing, and a shuffle buffer of integers, not of grids). The label is each sample's gamma, for
    the models whose loss holds the gravity energy (the others ignore it). The training set repeats forever,
    which removes the epoch-start stalls of finite datasets (see ../shared/keras-cpu-notes.md); ``fit`` counts
    steps."""
    import tensorflow as tf

    data = tf.convert_to_tensor(x)
    label = tf.convert_to_tensor(np.asarray(labels, dtype=np.float32))
    indices = tf.data.Dataset.range(x.shape[0])
    if repeat:
        indices = indices.shuffle(x.shape[0], seed=seed, reshuffle_each_iteration=True).repeat()
    indices = indices.batch(batch_size, drop_remainder=repeat)
    return indices.map(lambda i: (tf.gather(data, i), tf.gather(label, i)), num_parallel_calls=1,
                       deterministic=True).prefetch(2)


def _augmented(rep, x, gamma, attrs, kind):
    """The training samples with their images under the box's symmetries (``vae.{repr}.augment``), and their
    gamma labels."""
    x, rows = rep.augment(x, gamma, attrs, kind)
    return x, np.asarray(gamma)[rows]


def _streamed_dataset(features, rows, labels, sample_shape, batch_size, seed, transform):
    """tf.data of the endless streamed training batches (:func:`vaepipe.datasets.stream_batches`); the generator
    runs beside the training step (TensorFlow's ops release the GIL), two batches ahead."""
    import tensorflow as tf

    signature = (tf.TensorSpec((batch_size,) + tuple(sample_shape), tf.float32),
                 tf.TensorSpec((batch_size,), tf.float32))
    return tf.data.Dataset.from_generator(
        lambda: stream_batches(features, rows, labels, batch_size, seed, transform=transform),
        output_signature=signature).prefetch(2)


def _batched_rows(features, rows, labels, sample_shape, batch_size):
    """tf.data of the samples ``rows`` of ``features`` in order, read one batch at a time (validation)."""
    import tensorflow as tf

    def batches():
        for start in range(0, len(rows), batch_size):
            chosen = rows[start:start + batch_size]
            yield features[chosen], labels[chosen]

    signature = (tf.TensorSpec((None,) + tuple(sample_shape), tf.float32), tf.TensorSpec((None,), tf.float32))
    # A known length, so that Keras ends validation at the last batch instead of warning that the data ran out.
    num_batches = -(-len(rows) // batch_size)
    return (tf.data.Dataset.from_generator(batches, output_signature=signature)
            .apply(tf.data.experimental.assert_cardinality(num_batches)).prefetch(2))


def train_vae(data: TrainingData, params: Mapping[str, Any], seed: np.random.SeedSequence | int,
              threads: int | None = None, progress: bool = True, deterministic: bool = True,
              stream: str = "auto", max_steps_per_epoch: int | None = None) -> TrainingResult:
    """Train the representation's VAE on the train split, with early stopping on the validation split.

    params : the representation's config section: latent_dim, beta, reconstruction_loss, free_bits,
        learning_rate, epochs, batch_size, kl_warmup_epochs, patience (0 = no early stopping), and filters +
        dense_units (convolutional) or hidden_units (dense).
    seed : the stage's SeedSequence (or int); it seeds the weights, the shuffling and the sampling noise.
    deterministic : TensorFlow's op determinism, so the same seed gives the same weights (costs a little speed).
    stream : vae.stream: "auto" streams the training and validation splits from the feature files (``data`` loaded
        with ``lazy=True``) when the training split exceeds :data:`vaepipe.datasets.STREAM_THRESHOLD_BYTES`,
        "always" / "never" force it. Streamed, the job holds one window of samples
        (:func:`vaepipe.datasets.stream_batches`), whatever the data size; in memory, the batches are those of a
        shuffled, repeated tf.data set. Both are deterministic for a seed, but they draw different batches.
    max_steps_per_epoch : at most this many batches per epoch (None: one pass over the training split); for
        benchmarks and smoke runs.
    """
    missing = [k for k in _TRAIN_KEYS if k not in params]
    if missing:
        raise ValueError(f"training parameters lack {missing}; add them to the model's config section")
    if threads is not None:
        configure_threads(threads)
    import keras

    seed_value = seed_int(seed)
    keras.utils.set_random_seed(seed_value)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()

    split = data.labels["split"].to_numpy()
    num_train, num_val = int(np.sum(split == "train")), int(np.sum(split == "validation"))
    if num_train == 0:
        raise ValueError("no training samples: lower validation_fraction / test_fraction or sample more")
    batch_size = int(min(params["batch_size"], num_train))
    rep = representations.get(data.representation)
    augment = params.get("augment", "none")
    sample_shape = tuple(data.features.shape[1:])
    streamed = streams(stream, num_train * 4 * int(np.prod(sample_shape)))
    if streamed:
        # Features stay on disk; a window of chunks at a time is read, shuffled and batched (datasets.stream_batches).
        gamma = data.labels["gamma"].to_numpy(np.float32)
        transform = None if augment == "none" else (lambda x, y: _augmented(rep, x, y, data.attrs, augment))
        train_data = lambda: _streamed_dataset(data.features, np.flatnonzero(split == "train"), gamma,  # noqa: E731
                                               sample_shape, batch_size, seed_value, transform)
        val_data = lambda: (_batched_rows(data.features, np.flatnonzero(split == "validation"), gamma,  # noqa: E731
                                          sample_shape, batch_size) if num_val else None)
        x_init = None
    else:
        x_train, x_val = data.split("train"), data.split("validation")
        gamma_train, gamma_val = data.split_labels("train", "gamma"), data.split_labels("validation", "gamma")
        # The box's symmetries multiply the training set; an epoch stays num_train samples (same cost, more
        # variety).
        x_train, gamma_train = _augmented(rep, x_train, gamma_train, data.attrs, augment)
        train_data = lambda: _dataset(x_train, gamma_train, batch_size, seed_value, repeat=True)  # noqa: E731
        val_data = lambda: _dataset(x_val, gamma_val, batch_size, None, repeat=False) if num_val else None  # noqa: E731
        x_init = x_train
    model = build_model(data.representation, sample_shape, params, seed=seed_value, attrs=data.attrs)
    if hasattr(model, "initialize_from_data"):
        if x_init is None:  # streamed: the models that start from the data (particles) have small features
            x_init, _ = _augmented(rep, data.split("train"), data.split_labels("train", "gamma"), data.attrs, augment)
        model.initialize_from_data(x_init)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=params["learning_rate"]), jit_compile=False)
    if params.get("jit_compile", False) and keras.backend.backend() == "tensorflow":
        # XLA fuses the particle VAE's pairwise arithmetic; it is a trap for the convolutional VAEs
        # (../shared/keras-cpu-notes.md), so it is a per-model setting. Keras refuses XLA whenever TensorFlow's
        # op determinism is on, as a blanket rule; on the CPU the XLA-compiled step of this model is bitwise
        # reproducible across processes (tests/unit/test_particles.py), so it is switched on past that check.
        model._jit_compile = True
    warmup = int(params["kl_warmup_epochs"])
    patience = int(params["patience"]) if num_val else 0
    # The pipelines are made here, after the model, as they always were (the weights' seeds come first).
    fit = model.fit(
        train_data(),
        steps_per_epoch=min(max(1, num_train // batch_size), max_steps_per_epoch or num_train),
        validation_data=val_data(),
        epochs=int(params["epochs"]),
        callbacks=_callbacks(model.name, warmup, patience, progress),
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        verbose=0,
    )
    history = pd.DataFrame(fit.history)
    history.insert(0, "epoch", np.arange(1, len(history) + 1))
    stopped = len(history)
    if "val_loss" in history and patience > 0:
        eligible = history["val_loss"].where(history["epoch"] > warmup)
        best = int(history["epoch"][eligible.idxmin()]) if eligible.notna().any() else stopped
    else:
        best = stopped
    return TrainingResult(model=model, history=history, best_epoch=best, stopped_epoch=stopped)


# --------------------------------------------------------------------------- inference and metrics


def inference_batch(sample_shape, batch_size: int = 256) -> int:
    """The batch of encoding and decoding: ``batch_size``, fewer for large samples (at most
    :data:`vaepipe.datasets.INFERENCE_BATCH_BYTES` of inputs), so a batch's activations stay what a training batch
    needs (the demo's 16^3 grids: 256; the paper's 50^3 grids: 32)."""
    per_sample = max(1, int(np.prod(sample_shape)) * 4)
    return int(max(1, min(int(batch_size), datasets.INFERENCE_BATCH_BYTES // per_sample)))


def _slices(features, batch_size: int):
    """Row ranges to run through a model at once: everything for an array in memory; for features on disk
    (:class:`vaepipe.datasets.FeatureStore`) about STREAM_SLICE_BYTES at a time, a whole number of batches, so the
    memory stays flat whatever the number of samples."""
    num = len(features)
    if isinstance(features, np.ndarray):
        return [(0, num)]
    per_sample = max(1, int(np.prod(features.shape[1:])) * 4)
    step = max(batch_size, (datasets.STREAM_SLICE_BYTES // per_sample) // batch_size * batch_size)
    return [(a, min(a + step, num)) for a in range(0, num, step)]


def encode(model, features, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances, (S, latent_dim) float32 each. ``features``: an array, or features on
    disk (a :class:`vaepipe.datasets.FeatureStore`), read a slice at a time."""
    means, log_vars = [], []
    batch_size = inference_batch(features.shape[1:], batch_size)
    for a, b in _slices(features, batch_size):
        z_mean, z_log_var, _ = model.encoder.predict(features[a:b], batch_size=batch_size, verbose=0)
        means.append(np.asarray(z_mean))
        log_vars.append(np.asarray(z_log_var))
    return np.concatenate(means), np.concatenate(log_vars)


def decode(model, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Decoded posterior means, the deterministic reconstruction: same shape as ``features``."""
    z_mean, _ = encode(model, features, batch_size)
    batch_size = inference_batch(features.shape[1:], batch_size)
    return np.asarray(model.decoder.predict(z_mean, batch_size=batch_size, verbose=0))


def sample_errors(representation: str, original: np.ndarray, reconstructed: np.ndarray,
                  attrs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Per-sample errors of reconstructions against originals, (S,) float64 each, in physical units where they
    exist (see :func:`reconstruction_errors` for their meaning); ``recon_error`` is the headline error."""
    original = np.asarray(original, dtype=np.float64)
    reconstructed = np.asarray(reconstructed, dtype=np.float64)
    if original.shape != reconstructed.shape:
        raise ValueError(f"original {original.shape} and reconstruction {reconstructed.shape} differ in shape")
    diff = (reconstructed - original).reshape(original.shape[0], *original.shape[1:])
    num = original.shape[0]
    flat = diff.reshape(num, -1)
    errors = {"mse": np.mean(flat ** 2, axis=1)}
    errors.update(representations.get(representation).errors(diff, original, attrs))
    return errors


def reconstruction_errors(representation: str, original: np.ndarray, reconstructed: np.ndarray,
                          attrs: Mapping[str, Any]) -> dict[str, float]:
    """Errors of reconstructions against originals, averaged over samples, in physical units where they exist.

    voxel: ``density_error`` = sum|rho_hat - rho| / sum rho per sample (the DL-DFT paper's integrated absolute
    density difference; 0 is perfect, 2 is disjoint) and ``mse`` per voxel. distance: ``mae_sigma``, the mean
    absolute error of particle-particle distances in sigma (diagonal excluded), ``anchor_mae_sigma`` the same
    for particle-anchor distances (NaN without anchors), and ``mse`` of the normalised matrix.
    coordinates: ``mae_sigma`` of the coordinates, and ``mse`` of the normalised vector.
    ``recon_error`` repeats the representation's headline error (density_error or mae_sigma).
    """
    return {name: float(np.mean(values)) for name, values in
            sample_errors(representation, original, reconstructed, attrs).items()}


def evaluate(model, data: TrainingData, split: str = "test", seed: int = 0, batch_size: int = 256) -> dict:
    """Metrics of a trained model on one split, against the trivial baseline that predicts the training mean.

    Returns a dict: ``vae`` and ``baseline`` (see :func:`reconstruction_errors`), ``recon_error`` (and its
    median over samples, ``recon_error_median``),
    ``baseline_error`` and their ``error_ratio`` (< 1 means the VAE beats the mean), ``elbo`` (per sample,
    nats, one posterior draw per sample, beta = 1), ``reconstruction_loss`` and ``kl`` (per sample),
    ``kl_per_dim`` (mean over the split, nats), ``active_units`` (dimensions whose z_mean variance over the
    split exceeds 0.01) and ``num_samples``.
    """
    from vaepipe.models import kl_divergence

    mask = (data.labels["split"] == split).to_numpy()
    if not mask.any():
        raise ValueError(f"the {split} split is empty; raise its fraction or sample more")
    # Features on disk are read a slice at a time (the same numbers as in memory, where one slice is all).
    in_memory = isinstance(data.features, np.ndarray)
    x_split = data.split(split) if in_memory else data.features.take(np.flatnonzero(mask))
    if in_memory:
        mean = data.split("train").mean(axis=0, dtype=np.float64)
    else:
        train = data.features.take(np.flatnonzero((data.labels["split"] == "train").to_numpy()))
        total = np.zeros(train.shape[1:], dtype=np.float64)
        for a, b in _slices(train, batch_size):
            total += train[a:b].sum(axis=0, dtype=np.float64)
        mean = total / max(len(train), 1)
    z_mean, z_log_var = encode(model, x_split, batch_size)
    batch_size = inference_batch(data.features.shape[1:], batch_size)
    rng = np.random.default_rng(seed)
    z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape).astype(np.float32)
    per_sample, base_samples, recon = {}, {}, []
    for a, b in _slices(x_split, batch_size):
        x = x_split[a:b]
        x_hat = np.asarray(model.decoder.predict(z_mean[a:b], batch_size=batch_size, verbose=0))
        for name, values in sample_errors(data.representation, x, x_hat, data.attrs).items():
            per_sample.setdefault(name, []).append(values)
        baseline = np.broadcast_to(mean, x.shape)
        for name, values in sample_errors(data.representation, x, baseline, data.attrs).items():
            base_samples.setdefault(name, []).append(values)
        x_sampled = np.asarray(model.decoder.predict(z[a:b], batch_size=batch_size, verbose=0))
        recon.append(np.asarray(model.reconstruction_nll(x, x_sampled)))
    per_sample = {name: np.concatenate(parts) for name, parts in per_sample.items()}
    vae_errors = {name: float(np.mean(values)) for name, values in per_sample.items()}
    base_errors = {name: float(np.mean(np.concatenate(parts))) for name, parts in base_samples.items()}
    recon = np.concatenate(recon)
    kl_dims = np.asarray(kl_divergence(z_mean, z_log_var))
    kl = kl_dims.sum(axis=1)
    return {
        "split": split,
        "num_samples": int(mask.sum()),
        "vae": vae_errors,
        "baseline": base_errors,
        "recon_error": vae_errors["recon_error"],
        "recon_error_median": float(np.median(per_sample["recon_error"])),
        "baseline_error": base_errors["recon_error"],
        "error_ratio": vae_errors["recon_error"] / base_errors["recon_error"],
        "reconstruction_loss": float(recon.mean()),
        "kl": float(kl.mean()),
        "elbo": float(-(recon + kl).mean()),
        "kl_per_dim": kl_dims.mean(axis=0).astype(float).tolist(),
        "active_units": int(np.sum(z_mean.var(axis=0) > ACTIVE_UNIT_THRESHOLD)),
        "latent_dim": int(z_mean.shape[1]),
    }


def reconstruction_figure(model, data: TrainingData, split: str = "test"):
    """Originals next to their reconstructions for a few examples of the split: the representation's figure."""
    from vaepipe import plots

    rows = example_rows(data, split)
    labels = data.labels[data.labels["split"] == split].reset_index(drop=True)
    names = [f"{labels['state'][r]} #{labels['sample_index'][r]}" for r in rows]
    x = data.features[np.flatnonzero((data.labels["split"] == split).to_numpy())[rows]]
    rep = representations.get(data.representation)
    figure = getattr(plots, rep.figure)
    return figure(x, decode(model, x), *rep.figure_args(data.attrs), labels=names)
