"""A learned energy functional on densities: Costa, Scriva & Pilati's deep-learning functional, on this system.

    model = build_energy_functional((16, 16, 16), filters=(16, 32, 64), seed=0)
    model(n)                            # (batch, n, n, n) densities (normalize "none": each sums to N) -> (batch,) U_LJ
    gravity_energy(n, gamma, box_length)   # the external potential, exactly: sum_c 4 gamma z_c n_c
    model, history = train_energy_functional(train, validation, params, seed)

The density ``n`` is the voxel grid of :func:`vaepipe.features.voxel_grid` with ``normalize="none"``: the
expected number of particles in each cell, summing to N. The functional F_theta(n) approximates the Lennard-Jones
energy U_LJ (eps) of the configurations behind the density; gravity, an external potential linear in the density,
is never learned: :func:`gravity_energy` computes it from the grid. Units: lengths in sigma, energies in eps.

The network is extensive by construction (a fully convolutional map to an energy per coarse cell, summed), so a
denser or a larger system adds cells and energy rather than leaving the range it was trained on: the property a
functional transferred to new potentials needs.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import keras
import numpy as np
from keras import layers, ops

__all__ = ["FUNCTIONAL_KEYS", "build_energy_functional", "cell_heights", "gravity_energy", "grid_symmetries",
           "train_energy_functional"]

#: What :func:`train_energy_functional` reads from its params (config ``minimization.functional``).
FUNCTIONAL_KEYS = ("filters", "learning_rate", "epochs", "batch_size", "patience")


@keras.saving.register_keras_serializable(package="vaepipe")
class SumCells(layers.Layer):
    """(batch, ..., 1) energy per cell -> (batch,) their sum: the total energy."""

    def call(self, x):
        return ops.sum(ops.reshape(x, (ops.shape(x)[0], -1)), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)


def build_energy_functional(grid_shape: Sequence[int], filters: Sequence[int] = (16, 16, 16),
                            energy_offset: float = 0.0, n_particles: float = 1.0, seed: int | None = None,
                            name: str = "energy_functional") -> keras.Model:
    """F_theta: (batch, n, n, n) (or (batch, n, n) in 2D) densities -> (batch,) U_LJ in eps.

    U = sum_c n_c v_c(n): each cell's density times a potential that a stack of 3^rank convolutions computes from
    the density around it (dilations 1, 2, 4, ...: entry i of ``filters`` sees 2^(i+1) - 1 cells further). A pair
    potential has exactly this form (v = phi * n); the network learns phi and what a blurred density hides. The
    sum makes F extensive. ``energy_offset`` (eps per particle) initialises F at N times that value for every density, so
   
    training starts at the right scale; ``n_particles`` (N) sets that total and the density's mean, cells / N. The
    input is never padded by a separate op ("same" convolutions only:
    see vaepipe.models.vae on TensorFlow's oneDNN rewrite)."""
    shape = tuple(int(s) for s in grid_shape)
    density_scale = math.prod(shape) / float(n_particles)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"grid_shape must be 2 or 3 positive sides (a pixel or voxel grid), got {tuple(grid_shape)!r}")
    filters = tuple(int(f) for f in filters)
    if not filters or min(filters) < 1:
        raise ValueError(f"filters must be a non-empty list of positive integers, got {list(filters)!r}; e.g. "
                         f"[16, 16, 16]")
    conv = layers.Conv3D if len(shape) == 3 else layers.Conv2D
    inputs = keras.Input(shape=shape, name="density")
    x = layers.Reshape((*shape, 1), name="channel")(inputs)
    # The convolutions see the density's deviation from its mean, in units of the mean (density_scale = cells /
    # N): centred inputs of order 1.
    h = layers.Rescaling(float(density_scale), offset=-1.0, name="relative_density")(x)
    for i, f in enumerate(filters):
        h = conv(f, 3, padding="same", dilation_rate=2 ** i, activation="softplus",
                 kernel_initializer=keras.initializers.GlorotUniform(seed=None if seed is None else seed + i),
                 name=f"conv{i}")(h)
    # v starts at 0, F at the offset: training begins from the mean energy.
    potential = conv(1, 1, kernel_initializer="zeros", name="potential")(h)
    # The mean energy is a fixed offset: the network learns the variation about it (learning a large mean and a
    # small variation at once is an ill-conditioned fit that plain Adam crawls through).
    energy = SumCells(name="energy_sum")(layers.Multiply(name="energy_density")([x, potential]))
    energy = layers.Rescaling(1.0, offset=float(energy_offset) * float(n_particles), name="energy")(energy)
    return keras.Model(inputs, energy, name=name)


def cell_heights(num_cells: int, box_length: float) -> np.ndarray:
    """(n,) heights of the cell centres along z, sigma: (k + 1/2) L / n."""
    return (np.arange(int(num_cells)) + 0.5) * float(box_length) / int(num_cells)


def gravity_energy(density, gamma, box_length: float):
    """The external potential of the density, exactly: 4 gamma sum_c z_c n_c (eps), z_c the cell centre's height
    (the last grid axis). ``density`` (batch, n, ..., n) in keras or numpy; ``gamma`` a float or (batch,)."""
    n = int(density.shape[-1])
    z = ops.convert_to_tensor(cell_heights(n, box_length).astype(np.float32))
    axes = tuple(range(1, len(density.shape)))
    return 4.0 * ops.cast(gamma, "float32") * ops.sum(density * z, axis=axes)


def grid_symmetries(dim: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The symmetries of the cube (48, dim 3) or square (8, dim 2) as (axis permutation, flipped axes) of a grid:
    the Lennard-Jones energy of a configuration in the box is invariant under each of them."""
    return [(perm, flips) for perm in itertools.permutations(range(dim))
            for r in range(dim + 1) for flips in itertools.combinations(range(dim), r)]


def _augmented(grids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each grid under a random symmetry of the cube (seeded)."""
    dim = grids.ndim - 1
    ops_list = grid_symmetries(dim)
    pick = rng.integers(len(ops_list), size=grids.shape[0])
    out = np.empty_like(grids)
    for k in np.unique(pick):
        perm, flips = ops_list[k]
        rows = pick == k
        g = np.transpose(grids[rows], (0, *(p + 1 for p in perm)))
        out[rows] = np.flip(g, axis=tuple(a + 1 for a in flips)) if flips else g
    return out


def train_energy_functional(train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray],
                            params: Mapping[str, Any], seed: int, model: keras.Model | None = None,
                            progress=None) -> tuple[keras.Model, list[dict]]:
    """Fit F_theta to (densities (S, n, n, n), U_LJ (S,) in eps), each epoch under fresh random symmetries of the
    cube, with early stopping on the validation mean squared error (best weights restored). ``model``: continue
    from this one (fine-tuning) instead of a new :func:`build_energy_functional`. ``progress``: called with each
    epoch's record. Returns (model, history: one dict per epoch with loss and val_loss, in eps^2 per particle^2).
    """
    missing = [k for k in FUNCTIONAL_KEYS if k not in params]
    if missing:
        raise ValueError(f"minimization.functional lacks {missing}; add them to the config")
    x_train, y_train = (np.asarray(a, dtype=np.float32) for a in train)
    x_val, y_val = (np.asarray(a, dtype=np.float32) for a in validation)
    if x_train.shape[0] == 0:
        raise ValueError("the energy functional has no training densities; sample more or quench more")
    n_particles = float(np.round(x_train[0].sum()))
    keras.utils.set_random_seed(int(seed))
    rng = np.random.default_rng(int(seed))
    if model is None:
        model = build_energy_functional(x_train.shape[1:], params["filters"],
                                        energy_offset=float(np.mean(y_train)) / max(n_particles, 1.0),
                                        n_particles=n_particles, seed=int(seed))
    # The loss is the squared error of the total energy (Adam does not see its scale); the history reports it per
    # particle, the unit of the test error.
    scale = 1.0 / max(n_particles, 1.0)
    batch = int(min(params["batch_size"], x_train.shape[0]))
    # Cosine decay to 5 % of the learning rate over the epochs: the late epochs settle instead of rattling.
    schedule = keras.optimizers.schedules.CosineDecay(
        float(params["learning_rate"]), decay_steps=int(params["epochs"]) * -(-x_train.shape[0] // batch), alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse", jit_compile=False)
    patience, best, best_weights, waited, history = int(params["patience"]), math.inf, None, 0, []
    for epoch in range(int(params["epochs"])):
        fit = model.fit(_augmented(x_train, rng), y_train, batch_size=batch, epochs=1, verbose=0,
                        shuffle=True)
        record = {"epoch": epoch + 1, "loss": float(fit.history["loss"][-1]) * scale ** 2}
        if x_val.shape[0]:
            pred = np.asarray(model.predict(x_val, batch_size=256, verbose=0))
            record["val_loss"] = float(np.mean(((pred - y_val) * scale) ** 2))
        history.append(record)
        if progress is not None:
            progress(record)
        current = record.get("val_loss", record["loss"])
        if current < best:
            best, best_weights, waited = current, model.get_weights(), 0
        else:
            waited += 1
            if patience and waited >= patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    return model, history
