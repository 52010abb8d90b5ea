"""The pieces of the latent-space minimization (vaepipe.latent_descent, vaepipe.models.functional): the keras.ops
energy against the C++ energy and the LJ dimer's analytic minimum, the exact gravity of a density, the symmetries
of the functional's augmentation against featurizing the transformed configuration, the density projection, and a
functional that learns a known energy of the density."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from vaepipe.energy import potential_energy  # noqa: E402
from vaepipe.features import voxel_grid  # noqa: E402
from vaepipe.latent_descent import decoded_energy, descend, grid_energy, project_density  # noqa: E402
from vaepipe.models.functional import (  # noqa: E402
    _augmented, build_energy_functional, cell_heights, gravity_energy, grid_symmetries, train_energy_functional)

BOX = 5.0


def _identity_decoder(n, dim=3):
    """A 'decoder' whose latent is the configuration itself, positions / L, flattened."""
    z = keras.Input(shape=(n * dim,))
    return keras.Model(z, keras.layers.Reshape((n, dim))(z))


def test_decoded_energy_is_the_sampler_energy():
    rng = np.random.default_rng(0)
    x = np.stack([rng.uniform(0.5, 4.5, (6, 3)) for _ in range(4)])
    x[:, :, 2] *= 0.8
    energy = decoded_energy(_identity_decoder(6), BOX, gamma=0.7)
    got = np.asarray(energy((x / BOX).reshape(4, -1).astype(np.float32)), dtype=np.float64)
    expected = potential_energy(x, BOX, gamma=0.7)
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)


def test_descent_of_the_decoded_energy_reaches_the_dimer_minimum():
    """Two particles at 1.5 sigma, no gravity: the exact minimum is r = 2^(1/6) sigma, U = -1 eps."""
    x = np.array([[[2.0, 2.5, 2.5], [3.5, 2.5, 2.5]]]) / BOX
    result = descend(decoded_energy(_identity_decoder(2), BOX, gamma=0.0), x.reshape(1, -1), steps=400,
                     learning_rate=2e-3, record_interval=50)
    final = result.final.reshape(2, 3) * BOX
    assert np.linalg.norm(final[0] - final[1]) == pytest.approx(2 ** (1 / 6), abs=2e-3)
    assert result.energy[-1, 0] == pytest.approx(-1.0, abs=1e-4)
    assert result.energy[0, 0] > -0.33 and list(result.steps) == list(range(0, 401, 50))
    assert result.best_energy[0] == pytest.approx(result.energy.min(), abs=1e-6)


@pytest.mark.parametrize("height", [0.9, 2.5, 4.1])
def test_gravity_of_a_density_is_four_gamma_z(height):
    """One particle's Gaussian deposit (narrow, away from the walls): sum_c 4 gamma z_c n_c = 4 gamma z."""
    grid = voxel_grid(np.array([[2.5, 2.5, height]]), BOX, 0.3125, method="gaussian", width=0.25, normalize="none")
    got = float(gravity_energy(grid[None], 0.5, BOX)[0])
    assert got == pytest.approx(4 * 0.5 * height, rel=2e-3)
    assert cell_heights(16, BOX)[0] == pytest.approx(0.15625)


def test_grid_symmetries_are_the_cube_symmetries_of_the_configuration():
    """Each augmentation of a grid is the grid of the configuration under the same symmetry of the box."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0.3, 4.7, (5, 3))
    grid = voxel_grid(x, BOX, 0.3125, method="gaussian", width=0.5, normalize="none")
    symmetries = grid_symmetries(3)
    assert len(symmetries) == 48 and len(set(symmetries)) == 48 and len(grid_symmetries(2)) == 8
    state = np.random.default_rng(7)
    batch = np.repeat(grid[None], 64, axis=0)
    out = _augmented(batch, state)
    pick = np.random.default_rng(7).integers(48, size=64)
    for k in range(64):
        perm, flips = symmetries[pick[k]]
        y = x[:, list(perm)].copy()
        for a in flips:
            y[:, a] = BOX - y[:, a]
        expected = voxel_grid(y, BOX, 0.3125, method="gaussian", width=0.5, normalize="none")
        np.testing.assert_allclose(out[k], expected, atol=1e-5)


def test_projected_grid_descent_keeps_a_density():
    """The direct route's constraint: every step leaves n >= 0 summing to N."""
    rng = np.random.default_rng(2)
    n = rng.uniform(0, 0.1, (2, 8, 8, 8)).astype(np.float32)
    n *= 10.0 / n.sum(axis=(1, 2, 3), keepdims=True)
    functional = build_energy_functional((8, 8, 8), (4,), energy_offset=-1.0, n_particles=10, seed=0)
    seen = []
    descend(grid_energy(functional, 4.0, gamma=1.0), n, steps=20, learning_rate=1e-3, optimizer="sgd",
            project=project_density(10), record_interval=5, on_record=lambda k, v, e: seen.append(v))
    for values in seen:
        assert values.min() >= 0
        np.testing.assert_allclose(values.sum(axis=(1, 2, 3)), 10.0, rtol=1e-4)
    # gravity pulls the density down: the mean height falls
    z = cell_heights(8, 4.0)
    heights = [float((v[0].sum(axis=(0, 1)) * z).sum() / 10.0) for v in seen]
    assert heights[-1] < heights[0]


def test_functional_starts_at_the_offset_and_learns_a_local_energy():
    """F_theta(n) = sum_c n_c v_c(n) starts at N * offset; trained on E = -sum_c n_c^2 (a local energy it can
    represent), its test error falls below 40 % of the target's spread (a constant predicts 100 %)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.3, 3.7, (400, 6, 3))
    grids = voxel_grid(x, 4.0, 0.5, method="gaussian", width=0.4, normalize="none").astype(np.float32)
    target = -np.sum(grids.astype(np.float64) ** 2, axis=(1, 2, 3)) * 10
    model = build_energy_functional(grids.shape[1:], (8, 8), energy_offset=-2.0, n_particles=6, seed=0)
    assert np.asarray(model(grids[:3]), dtype=np.float64) == pytest.approx(-12.0, abs=1e-4)
    params = {"filters": [8, 8], "learning_rate": 0.005, "epochs": 40, "batch_size": 32, "patience": 10}
    model, history = train_energy_functional((grids[:300], target[:300]), (grids[300:350], target[300:350]),
                                             params, seed=0)
    pred = np.asarray(model.predict(grids[350:], verbose=0), dtype=np.float64)
    assert np.sqrt(np.mean((pred - target[350:]) ** 2)) < 0.4 * np.std(target)
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_functional_round_trips_through_a_model_file(tmp_path):
    from vaepipe.io.models import read_model, write_model

    model = build_energy_functional((8, 8, 8), (4, 4), energy_offset=-1.5, seed=3)
    grids = np.random.default_rng(4).uniform(0, 0.05, (3, 8, 8, 8)).astype(np.float32)
    write_model(tmp_path / "f.keras", model)
    again = read_model(tmp_path / "f.keras")
    np.testing.assert_array_equal(np.asarray(model.predict(grids, verbose=0)),
                                  np.asarray(again.predict(grids, verbose=0)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer="lbfgs"), "optimizer"), (dict(steps=-1), "steps"), (dict(learning_rate=0.0), "learning_rate")])
def test_bad_descent_settings_are_value_errors(kwargs, match):
    args = dict(steps=1, learning_rate=0.1, optimizer="adam")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        descend(lambda z: z[:, 0], np.zeros((1, 2), np.float32), **args)


def test_bad_functional_shapes_are_value_errors():
    with pytest.raises(ValueError, match="grid_shape"):
        build_energy_functional((16,))
    with pytest.raises(ValueError, match="filters"):
        build_energy_functional((8, 8, 8), ())


def test_functional_graph_holds_no_pad_op():
    """TensorFlow's oneDNN rewrite (Intel AVX-512 CPUs) breaks a Pad op feeding a convolution (issue 10): the
    functional's training and inference graphs must hold none, whatever CPU traces them. Its dilated convolutions
    lower to SpaceToBatchND / Conv3D / BatchToSpaceND instead (asserted, so a change of lowering is seen)."""
    tf = pytest.importorskip("tensorflow")
    model = build_energy_functional((8, 8, 8), (4, 4), energy_offset=-1.0, n_particles=10, seed=0)
    spec = tf.TensorSpec((2, 8, 8, 8), tf.float32)

    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            energy = tf.reduce_sum(model(x, training=True))
        return tape.gradient(energy, [x, *model.trainable_variables])

    def inference(x):
        return model(x, training=False)

    ops = set()
    for function in (gradient, inference):
        graph = tf.function(function).get_concrete_function(spec).graph.as_graph_def()
        ops |= {node.op for node in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert {"Conv3D", "Conv3DBackpropInputV2", "SpaceToBatchND"} <= ops, sorted(ops)
    assert not {"Pad", "PadV2", "MirrorPad"} & ops, sorted(ops)
