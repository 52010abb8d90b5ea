"""Energy minimization in a VAE's latent space (Costa, Scriva & Pilati 2024), and the direct route it replaces.

Three energies of a batch of variables, each descended by gradient steps with TensorFlow's autodiff:

- :func:`decoded_energy` (route A): z -> the decoded configuration of a coordinate decoder (the particle VAE)
  -> its exact energy U_LJ + 4 gamma sum z, in ``keras.ops`` (:func:`vaepipe.models.physics.capped_energy`, no
  cap: the sampler's energy, float32).
- :func:`functional_energy` (route B, Costa's setting): z -> the voxel VAE's decoded grid g, normalised to a
  density n = N g / sum(g) -> F_theta(n) + 4 gamma sum_c z_c n_c (the learned functional plus the exact external
  potential).
- :func:`grid_energy`: the same functional on a density descended directly (each step projected back onto
  n >= 0, sum n = N): the route the paper calls unstable.

:func:`descend` runs Adam (or plain gradient descent) on every start at once (each start's steps are
independent: the loss is a sum over starts and both optimizers act per coordinate) and records the energy
along each path every ``record_interval`` steps. Lengths in sigma, energies in eps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["DescentResult", "OPTIMIZERS", "descend", "decoded_energy", "functional_energy", "grid_energy",
           "project_density"]

OPTIMIZERS = ("adam", "sgd")


@dataclass
class DescentResult:
    """final : (B, ...) the variables at the last step. best : (B, ...) the variables at each path's lowest
    recorded energy, with ``best_energy`` (B,) and ``best_step`` (B,). steps : (R,) recorded step numbers (0 is
    the start); energy : (R, B) the descended energy at each of them. evaluations : energy-and-gradient
    evaluations per start (= steps)."""

    final: np.ndarray
    best: np.ndarray
    best_energy: np.ndarray
    best_step: np.ndarray
    steps: np.ndarray
    energy: np.ndarray
    evaluations: int


def decoded_energy(decoder, box_length: float, gamma: float) -> Callable:
    """Route A: z (B, D) -> exact energy (B,) of the decoded configurations (decoder output: positions / L)."""
    from keras import ops

    from vaepipe.models.physics import capped_energy

    length = float(box_length)

    def energy(z):
        x = decoder(z, training=False)
        positions = ops.reshape(x, (ops.shape(x)[0], -1, _dim(decoder))) * length
        return capped_energy(positions, float(gamma), r_cap=0.0)

    return energy


def _dim(decoder) -> int:
    shape = decoder.output.shape
    return int(shape[-1]) if len(shape) == 3 else 3


def _density(grid, n_particles: float):
    from keras import ops

    axes = tuple(range(1, len(grid.shape)))
    return grid * (float(n_particles) / ops.sum(grid, axis=axes, keepdims=True))


def functional_energy(decoder, functional, n_particles: int, box_length: float, gamma: float,
                      prior_weight: float = 0.0) -> Callable:
    """Route B: z (B, D) -> F_theta(n) + 4 gamma sum_c z_c n_c (B,), n = N D(z) / sum D(z); ``prior_weight``
    (eps) > 0 adds prior_weight |z|^2 / 2, the VAE prior's pull towards where the decoder was trained."""
    from keras import ops

    from vaepipe.models.functional import gravity_energy

    def energy(z):
        n = _density(decoder(z, training=False), n_particles)
        out = functional(n, training=False) + gravity_energy(n, gamma, box_length)
        if prior_weight > 0:
            out = out + 0.5 * float(prior_weight) * ops.sum(z * z, axis=1)
        return out

    return energy


def grid_energy(functional, box_length: float, gamma: float) -> Callable:
    """The direct route: a density n (B, n, n, n) -> F_theta(n) + 4 gamma sum_c z_c n_c (B,)."""
    from vaepipe.models.functional import gravity_energy

    def energy(n):
        return functional(n, training=False) + gravity_energy(n, gamma, box_length)

    return energy


def project_density(n_particles: int) -> Callable:
    """The constraint of the direct route: after each step, n -> max(n, 0) rescaled to sum N."""
    from keras import ops

    def project(n):
        return _density(ops.maximum(n, 0.0) + 1e-12, n_particles)

    return project


def descend(energy: Callable, start: np.ndarray, steps: int, learning_rate: float, optimizer: str = "adam",
            record_interval: int = 10, project: Callable | None = None,
            on_record: Callable[[int, np.ndarray, np.ndarray], Any] | None = None) -> DescentResult:
    """Gradient descent of ``energy`` (a keras.ops function of a (B, ...) batch, -> (B,)) from ``start``.

    ``optimizer``: "adam" or "sgd" (plain gradient descent, Costa et al.'s); ``project``: applied to the
    variables after every step (a constraint). Every ``record_interval`` steps, and at the start and the end,
    the energy of each path is recorded and ``on_record(step, variables, energy)`` is called (e.g. to evaluate
    the exact energy of what the variables decode to). A path whose energy turns non-finite stops moving."""
    import keras
    import tensorflow as tf

    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}; set minimization.optimizer")
    if not (isinstance(steps, (int, np.integer)) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}; set minimization.steps")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}; set "
                         f"minimization.learning_rate")
    record_interval = max(1, int(record_interval))
    x = tf.Variable(np.asarray(start, dtype=np.float32))
    opt = (keras.optimizers.Adam(float(learning_rate)) if optimizer == "adam"
           else keras.optimizers.SGD(float(learning_rate)))
    opt.build([x])

    @tf.function(reduce_retracing=True)
    def evaluate():
        return energy(tf.convert_to_tensor(x))

    @tf.function(reduce_retracing=True)
    def step():
        with tf.GradientTape() as tape:
            e = energy(tf.convert_to_tensor(x))
            total = tf.reduce_sum(tf.where(tf.math.is_finite(e), e, tf.zeros_like(e)))
        grad = tape.gradient(total, x)
        grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))
        opt.apply_gradients([(grad, x)])
        if project is not None:
            x.assign(project(tf.convert_to_tensor(x)))
        return e

    if project is not None:
        x.assign(project(tf.convert_to_tensor(x)))
    recorded, energies = [], []
    current = np.asarray(evaluate(), dtype=np.float64)
    best, best_energy = x.numpy().copy(), np.where(np.isfinite(current), current, np.inf)
    best_step = np.zeros(len(best_energy), dtype=np.int64)

    def record(k, e):
        recorded.append(k)
        energies.append(e)
        values = x.numpy()
        lower = np.isfinite(e) & (e < best_energy)
        best[lower], best_energy[lower], best_step[lower] = values[lower], e[lower], k
        if on_record is not None:
            on_record(k, values, e)

    record(0, current)
    for k in range(1, int(steps) + 1):
        step()
        if k % record_interval == 0 or k == steps:
            record(k, np.asarray(evaluate(), dtype=np.float64))
    return DescentResult(final=x.numpy(), best=best, best_energy=best_energy, best_step=best_step,
                         steps=np.asarray(recorded, dtype=np.int64), energy=np.stack(energies),
                         evaluations=int(steps))
