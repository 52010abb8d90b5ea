"""The particle VAE and the physics in its loss: the keras.ops energy against the sampler's C++ energy, the
permutation-aware matching against the Hungarian optimum, the decoder's layers, the box's symmetries, training
(determinism, XLA), and the short Metropolis relaxation of decoded configurations."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops
from scipy.optimize import linear_sum_assignment

from vaepipe import representations, training
from vaepipe.boundary import apply_symmetry, box_symmetries
from vaepipe.datasets import TrainingData, assign_splits
from vaepipe.energy import potential_energy
from vaepipe.mc import Sampler
from vaepipe.models import ExcludedVolume, PairRefinement, build_particle_vae
from vaepipe.models.physics import capped_energy, lj_pair_energy, matched_squared_error, overlap_hinge
from vaepipe.sampling import relax
from vaepipe.structure import matched_rmsd, min_pair_distance

L = 5.0


@pytest.fixture(scope="module")
def liquid():
    """Metropolis configurations of 20 particles at gamma = 0.5, T = 1 (no pair closer than about 0.9 sigma)."""
    sampler = Sampler(20, L, 1.0, gamma=0.5, seed=4, step_size=0.3)
    sampler.run(2000)
    positions, _ = sampler.sample(40, interval=50)
    return positions


def _tensor(x):
    return ops.convert_to_tensor(np.asarray(x, dtype=np.float32))


def test_keras_energy_is_the_samplers_energy(liquid):
    gamma = np.linspace(0.0, 1.0, len(liquid))
    reference = np.array([potential_energy(p, L, g) for p, g in zip(liquid, gamma)])
    ours = np.asarray(capped_energy(_tensor(liquid), _tensor(gamma), r_cap=0.85))
    assert min_pair_distance(liquid).min() > 0.85  # the cap does not act on these
    np.testing.assert_allclose(ours, reference, rtol=2e-5, atol=2e-4)
    lj_only = np.asarray(capped_energy(_tensor(liquid), None, r_cap=0.0))
    np.testing.assert_allclose(lj_only, [potential_energy(p, L, 0.0) for p in liquid], rtol=2e-5, atol=2e-4)


def test_capped_pair_energy_continues_the_tangent_and_keeps_gradients_finite():
    r = np.array([0.3, 0.6, 0.85, 1.0, 2 ** (1 / 6)], dtype=np.float32)
    capped = np.asarray(lj_pair_energy(_tensor(r), 0.85))
    value, slope = 4 * (0.85 ** -12 - 0.85 ** -6), 4 * (-12 * 0.85 ** -13 + 6 * 0.85 ** -7)
    np.testing.assert_allclose(capped[:3], value + slope * (r[:3] - 0.85), rtol=1e-5)
    np.testing.assert_allclose(capped[3:], [0.0, -1.0], atol=1e-5)
    # two particles on top of each other: a finite energy and a finite gradient
    import tensorflow as tf

    x = tf.Variable(np.array([[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [2.0, 1.0, 1.0]]], dtype=np.float32))
    with tf.GradientTape() as tape:
        energy = capped_energy(x, None, 0.85)
    assert np.isfinite(float(energy[0])) and np.all(np.isfinite(tape.gradient(energy, x).numpy()))


def test_overlap_hinge_counts_only_pairs_closer_than_r_min():
    x = np.array([[[0, 0, 0], [0.5, 0, 0], [3, 0, 0]]], dtype=np.float32)
    assert float(overlap_hinge(_tensor(x), 0.9)[0]) == pytest.approx(0.4 ** 2, rel=1e-5)
    assert float(overlap_hinge(_tensor(x * 2), 0.9)[0]) == 0.0


def test_matching_finds_the_optimal_assignment_whatever_the_order(liquid):
    rng = np.random.default_rng(0)
    target = liquid[:8]
    perm = np.array([rng.permutation(target.shape[1]) for _ in target])
    predicted = np.take_along_axis(target, perm[..., None], axis=1) + rng.normal(0, 0.05, target.shape)
    cost = np.asarray(matched_squared_error(_tensor(predicted), _tensor(target), 0.01, 50))
    for k in range(len(target)):
        c = ((predicted[k][:, None] - target[k][None]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(c)
        assert cost[k] == pytest.approx(c[rows, cols].sum(), rel=1e-3)
    in_order = np.asarray(matched_squared_error(_tensor(predicted), _tensor(target), 0.01, 0))
    assert np.all(in_order > 10 * cost)  # the plain squared error punishes the reordering


def test_excluded_volume_removes_overlaps_and_leaves_valid_configurations_alone(liquid):
    layer = ExcludedVolume(L, min_distance=0.9, steps=8)
    assert np.array_equal(np.asarray(layer(_tensor(liquid))), liquid.astype(np.float32))
    squeezed = np.clip(L / 2 + 0.8 * (liquid - L / 2), 0, L)  # 20 % denser: overlaps
    assert min_pair_distance(squeezed).min() < 0.8
    out = np.asarray(layer(_tensor(squeezed)), dtype=np.float64)
    assert min_pair_distance(out).min() > 0.85
    assert out.min() >= 0 and out.max() <= L


def test_pair_refinement_starts_as_the_identity_and_is_permutation_equivariant(liquid):
    layer = PairRefinement(L)
    x = liquid[:4].astype(np.float32)
    assert np.array_equal(np.asarray(layer(_tensor(x))), x)
    layer.out.kernel.assign(np.full((32, 1), 0.01, dtype=np.float32))
    moved = np.asarray(layer(_tensor(x)))
    assert not np.allclose(moved, x)
    perm = np.random.default_rng(1).permutation(x.shape[1])
    np.testing.assert_allclose(np.asarray(layer(_tensor(x[:, perm]))), moved[:, perm], atol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.5])
def test_box_symmetries_keep_the_energy(liquid, gamma):
    maps = box_symmetries(3, "reflect", gamma, "symmetry")
    assert len(maps) == (48 if gamma == 0 else 8) and maps[0] == ((0, 1, 2), (False, False, False))
    x = liquid[:3]
    if gamma == 0:  # the gravity-free liquid: every symmetry of the cube
        x = x.copy()
    energy = [potential_energy(p, L, gamma) for p in x]
    for perm, flips in maps:
        image = apply_symmetry(x, L, perm, flips)
        np.testing.assert_allclose([potential_energy(p, L, gamma) for p in image], energy, rtol=1e-10)
    assert len(box_symmetries(3, "reflect", 0.5, "mirror")) == 4 and len(box_symmetries(2, "reflect", 1.0)) == 2
    assert len(box_symmetries(3, "slab", 0.0)) == 8  # the slab's walls single out the height even without gravity


def test_particles_augmentation_gives_every_image_with_its_original_row(liquid):
    rep = representations.get("particles")
    features = (liquid[:5] / L).astype(np.float32)
    gamma = np.array([0.0, 0.0, 0.5, 0.5, 0.5])
    images, rows = rep.augment(features, gamma, {"dim": 3, "box_length": L, "boundary": "reflect"}, "symmetry")
    assert len(images) == 2 * 48 + 3 * 8 and np.array_equal(np.bincount(rows), [48, 48, 8, 8, 8])
    for image, row in zip(images[::7], rows[::7]):
        e = potential_energy(image.astype(np.float64) * L, L, gamma[row])
        assert e == pytest.approx(potential_energy(features[row].astype(np.float64) * L, L, gamma[row]), rel=1e-5)


def _data(liquid, gamma=0.5):
    features = (liquid / L).astype(np.float32)
    labels = __import__("pandas").DataFrame({
        "state": np.repeat(["a", "b"], len(liquid) // 2), "gamma": gamma, "temperature": 1.0, "energy": 0.0,
        "chain": 0, "sample_index": np.arange(len(liquid))})
    labels["split"] = assign_splits(labels["state"].to_numpy(), 1, 0.2, 0.2)
    attrs = {"representation": "particles", "n_particles": liquid.shape[1], "dim": 3, "box_length": L,
             "boundary": "reflect"}
    return TrainingData(features, labels, attrs)


PARAMS = dict(latent_dim=12, profile_dim=2, hidden_units=[16], refinement_layers=1, projection_steps=2,
              matching_iterations=5, learning_rate=1e-3, epochs=2, batch_size=8, kl_warmup_epochs=1, patience=0,
              augment="mirror")


@pytest.mark.parametrize("jit_compile", [False, True])
def test_particle_vae_trains_deterministically_with_and_without_xla(liquid, jit_compile):
    data = _data(liquid)
    params = {**PARAMS, "jit_compile": jit_compile}
    runs = [training.train_vae(data, params, seed=5, progress=False) for _ in range(2)]
    assert runs[0].model.jit_compile is jit_compile  # XLA really on (Keras alone refuses it under determinism)
    for a, b in zip(runs[0].model.get_weights(), runs[1].model.get_weights()):
        np.testing.assert_array_equal(a, b)
    history = runs[0].history
    assert {"loss", "reconstruction", "kl", "energy", "local", "val_loss"} <= set(history)
    assert np.all(np.isfinite(history["loss"]))
    metrics = training.evaluate(runs[0].model, data)
    assert np.isfinite(metrics["elbo"]) and metrics["recon_error"] > 0
    assert runs[0].model.profile_dim == 2


def test_untrained_particle_vae_is_the_principal_component_code(liquid):
    model = build_particle_vae((20, 3), 20, 3, L, latent_dim=44, profile_dim=2, refinement_layers=1,
                               projection_steps=0, seed=0)
    features = (liquid / L).astype(np.float32)
    model.initialize_from_data(features)
    z_mean, _, _ = model.encoder.predict(features, verbose=0)
    decoded = model.decoder.predict(z_mean, verbose=0) * L
    # 42 components (39 found) of 40 configurations span them exactly: the code reconstructs them
    assert np.median(matched_rmsd(decoded.astype(np.float64), liquid)) < 1e-3


def test_builder_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"input_shape must be \(n_particles, dim\) = \(4, 3\)"):
        build_particle_vae((5, 3), 4, 3, L)
    with pytest.raises(ValueError, match="profile_dim must be smaller than latent_dim"):
        build_particle_vae((4, 3), 4, 3, L, latent_dim=4, profile_dim=4)
    with pytest.raises(ValueError, match="noise must be a finite number > 0"):
        build_particle_vae((4, 3), 4, 3, L, latent_dim=6, noise=0.0)


def test_relaxation_lowers_a_strained_configuration_and_is_seeded(liquid):
    squeezed = np.clip(L / 2 + 0.85 * (liquid[:3] - L / 2), 0, L)
    system = {"n_particles": 20, "box_length": L, "dim": 3, "boundary": "reflect", "cutoff": None,
              "tail_correction": False}
    state = {"gamma": 0.5, "temperature": 1.0}
    out = relax(squeezed, [1, 10], system, state, 0.3, np.random.SeedSequence(7))
    again = relax(squeezed, [1, 10], system, state, 0.3, np.random.SeedSequence(7))
    start = np.array([potential_energy(p, L, 0.5) for p in squeezed])
    assert np.all(out[10][1] < start) and np.array_equal(out[10][0], again[10][0])
    np.testing.assert_allclose(out[10][1], [potential_energy(p, L, 0.5) for p in out[10][0]], rtol=1e-9)
    coincident = squeezed[:1].copy()
    coincident[0, 1] = coincident[0, 0]
    stuck = relax(coincident, [1], system, state, 0.3, np.random.SeedSequence(7))
    assert np.isinf(stuck[1][1][0])  # the sampler cannot start there: reported, not crashed


@pytest.mark.parametrize("name", ["particles", "coordinates", "distance", "voxel"])
def test_every_representation_decodes_exact_features_back_to_the_particles(liquid, name):
    rep = representations.get(name)
    params = rep.canonical_params({"method": "gaussian", "width": 0.5} if name == "voxel" else {})
    positions = liquid[:3]
    features = rep.featurize(positions, L, "reflect", params)
    attrs = {"n_particles": 20, "dim": 3, "box_length": L, "boundary": "reflect", **features.attrs}
    if features.anchors is not None:
        attrs["anchor_points"] = features.anchors.tolist()
    back = rep.decode_positions(features.features, attrs)
    assert back.shape == positions.shape
    assert np.max(matched_rmsd(back, positions)) < (0.02 if name == "voxel" else 1e-4)


def test_every_pair_is_compared():
    # the matched cost's plan is a permutation for well-separated particles: each row and column sums to one
    x = np.array(list(itertools.product([0.5, 2.0, 3.5], repeat=2)), dtype=np.float32)
    x = np.concatenate([x, np.full((9, 1), 1.0, dtype=np.float32)], axis=1)[None]
    shifted = x[:, ::-1] + 0.01
    assert float(matched_squared_error(_tensor(shifted), _tensor(x), 0.01, 30)[0]) == pytest.approx(
        9 * 3 * 0.01 ** 2, rel=1e-2)


def test_generation_metrics_of_monte_carlo_against_itself_are_at_the_noise_floor():
    from vaepipe.stages.generate import generation_metrics

    sampler = Sampler(20, L, 1.0, gamma=0.5, seed=9, step_size=0.3)
    sampler.run(2000)
    positions, energy = sampler.sample(200, interval=100)
    generated = {0: (positions[:100], energy[:100]), 10: (positions[:100], energy[:100])}
    metrics = generation_metrics(generated, positions[100:], energy[100:], 20, L, 0.8)
    assert metrics["valid_fraction"] == 1.0 and metrics["valid_fraction_relaxed10"] == 1.0
    assert metrics["energy_w1_over_std"] < 0.5 and metrics["pair_distance_w1"] < 0.05
    assert metrics["density_profile_w1"] < 0.1
    # one configuration with an overlap: the W1 over all samples sees it, the valid-only one does not
    broken = positions[:100].copy()
    broken[0, 1] = broken[0, 0] + 0.3
    broken_energy = energy[:100].copy()
    broken_energy[0] = potential_energy(broken[0], L, 0.5)
    worse = generation_metrics({0: (broken, broken_energy)}, positions[100:], energy[100:], 20, L, 0.8)
    assert worse["valid_fraction"] == 0.99 and worse["energy_w1_over_std"] > 10 * metrics["energy_w1_over_std"]
    assert worse["energy_w1_over_std_valid"] < 0.5
