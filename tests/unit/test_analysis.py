"""Latent analysis, anomaly helpers, the summary contract and the array files of the last stages."""

import json
import math

import numpy as np
import pytest

from vaepipe import analysis, io
from vaepipe.stages import analyze
from vaepipe.reconstruct import min_pair_distance


def test_gamma_clustering_separated_clusters_score_perfectly():
    rng = np.random.default_rng(0)
    gammas = np.repeat([0.0, 0.5, 1.0], 100)
    z = rng.normal(0, 0.1, (300, 4)) + gammas[:, None] * 10
    stats = analysis.gamma_clustering(z, gammas, seed=1)
    assert stats["knn_accuracy"] == 1.0
    assert stats["silhouette"] > 0.9
    assert stats["chance"] == pytest.approx(1 / 3)
    assert stats["num_gammas"] == 3


def test_gamma_clustering_of_noise_is_at_chance():
    rng = np.random.default_rng(1)
    gammas = np.repeat([0.0, 1.0], 300)
    stats = analysis.gamma_clustering(rng.normal(size=(600, 3)), gammas, seed=2)
    assert abs(stats["knn_accuracy"] - 0.5) < 0.08
    assert abs(stats["silhouette"]) < 0.05


def test_gamma_clustering_of_one_gamma_is_nan():
    stats = analysis.gamma_clustering(np.zeros((10, 2)), np.zeros(10))
    assert math.isnan(stats["knn_accuracy"]) and math.isnan(stats["silhouette"]) and stats["chance"] == 1.0


def test_roc_extremes():
    assert analysis.roc([0, 1, 2], [3, 4, 5])["auc"] == 1.0
    assert analysis.roc([3, 4, 5], [0, 1, 2])["auc"] == 0.0
    rng = np.random.default_rng(3)
    assert abs(analysis.roc(rng.normal(size=4000), rng.normal(size=4000))["auc"] - 0.5) < 0.03
    # A non-finite score counts as the most anomalous.
    assert analysis.roc([0.0, 1.0], [np.inf, np.nan])["auc"] == 1.0


def test_inject_overlap_makes_exactly_one_close_pair():
    rng = np.random.default_rng(4)
    # A dilute lattice: every pair starts > 1.2 sigma apart.
    grid = np.stack(np.meshgrid(*[np.arange(3) * 1.6 + 0.9] * 3, indexing="ij"), -1).reshape(-1, 3)
    x = np.broadcast_to(grid, (50,) + grid.shape).copy()
    out = analysis.inject_overlap(x, 5.0, rng)
    for s in range(50):
        d = np.linalg.norm(out[s][:, None] - out[s][None], axis=-1)[np.triu_indices(27, 1)]
        assert np.sum(d < 0.7) == 1
        assert np.sum(d < 0.8) == 1
        assert 0.5 <= d.min() < 0.7
    assert np.all((out >= 0) & (out <= 5.0))
    assert np.sum(np.any(out != x, axis=-1)) == 50  # one particle moved per configuration


def test_uniform_configurations_overlap():
    x = analysis.uniform_configurations(200, 30, 3, 5.0, np.random.default_rng(5))
    assert x.shape == (200, 30, 3) and x.min() >= 0 and x.max() <= 5.0
    # 30 ideal-gas particles in 125 sigma^3 almost always hold a pair closer than 0.8 sigma.
    assert np.mean(min_pair_distance(x) < 0.8) > 0.9


def test_wasserstein_over_std_of_a_shift():
    rng = np.random.default_rng(6)
    reference = rng.normal(0, 2.0, 20000)
    assert analysis.wasserstein_over_std(reference + 2.0, reference) == pytest.approx(1.0, abs=0.02)
    assert analysis.wasserstein_over_std(reference, reference) == 0.0
    assert analysis.wasserstein_over_std([np.inf, 1.0], reference) == pytest.approx(
        analysis.wasserstein_over_std([1.0], reference))


def test_latent_pca_plane():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(500, 5)) * np.array([5.0, 2.0, 0.1, 0.1, 0.1])
    plane = analysis.latent_pca(z)
    assert plane.scale[0] == pytest.approx(5.0, rel=0.1) and plane.scale[1] == pytest.approx(2.0, rel=0.1)
    assert np.allclose(np.abs(plane.components[0]), [1, 0, 0, 0, 0], atol=0.05)
    assert np.allclose(plane.project(plane.lift(np.array([[1.0, -2.0]]))), [[1.0, -2.0]])


def test_summary_has_every_contract_key_as_a_float_with_nan_where_missing(tmp_path):
    models = {"voxel": {"recon_error": 0.3, "baseline_error": 0.7}, "distance": {"recon_error": 0.31,
                                                                                 "baseline_error": 0.72}}
    summary = analyze.summarize(
        models,
        reconstruction={"particles": {"rmsd_anchored_median": 0.12, "valid_fraction": 1.0},
                        "distance": {"rmsd_anchored_median": 0.5, "distance": {"rmsd_gram_median": 0.4}}},
        generation={"particles": {"mean_over_states": {"energy_w1_over_std": 2.0}}},
        latent={"particles": {"knn_accuracy": 0.9, "knn_accuracy_ceiling": 0.95, "chance": 0.25,
                              "silhouette": 0.1}},
        anomaly={"particles": {"auc_uniform": 0.99}}, headline="particles")
    for key in io.SUMMARY_KEYS:
        assert isinstance(summary[key], float), key
    assert summary["vae.voxel.recon_error"] == 0.3
    assert summary["latent.gamma_knn_accuracy"] == 0.9 and summary["latent.gamma_knn_accuracy_ceiling"] == 0.95
    assert summary["reconstruction.rmsd_anchored_median"] == 0.12  # the headline's, not the distance VAE's
    assert summary["reconstruction.distance.rmsd_anchored_median"] == 0.5
    assert summary["reconstruction.distance.rmsd_gram_median"] == 0.4
    assert summary["generation.energy_w1_over_std"] == 2.0
    assert math.isnan(summary["anomaly.auc_overlap"]) and math.isnan(summary["generation.valid_fraction"])
    path = io.write_summary(tmp_path / "summary.json", summary, {"seed": 1})
    back = io.read_summary(path)
    assert math.isnan(back["anomaly.auc_overlap"]) and back["reconstruction.valid_fraction"] == 1.0
    assert back["provenance"]["seed"] == 1
    assert "NaN" not in path.read_text() and '"anomaly.auc_overlap": null' in path.read_text()  # DESIGN: null
    table = io.write_summary_table(tmp_path / "summary.tsv", summary).read_text().splitlines()
    assert table[0] == "quantity\tvalue\tmeaning" and len(table) == len(summary) + 1
    with pytest.raises(ValueError, match="expected a number"):
        io.write_summary(tmp_path / "bad.json", {"x": "high"}, {})


def test_array_files_round_trip_byte_reproducibly(tmp_path):
    arrays = {"state": np.array(["gamma0_T1", "gamma1_T1"], dtype=object), "positions": np.ones((2, 3, 3)),
              "rmsd": np.array([0.1, 0.2])}
    attrs = {"box_length": 5.0, "anchor_points": [[0.0, 0.0, 0.0]], "provenance": {"seed": 3}}
    a = io.write_arrays(tmp_path / "a.h5", arrays, attrs, io.RECONSTRUCTION_FORMAT)
    b = io.write_arrays(tmp_path / "b.h5", arrays, attrs, io.RECONSTRUCTION_FORMAT)
    assert a.read_bytes() == b.read_bytes()
    back, back_attrs = io.read_arrays(a, io.RECONSTRUCTION_FORMAT)
    assert list(back["state"]) == ["gamma0_T1", "gamma1_T1"]
    assert np.array_equal(back["positions"], arrays["positions"])
    assert back_attrs["box_length"] == 5.0 and json.loads(back_attrs["anchor_points"]) == [[0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="expected 'vaepipe-generated-2'"):
        io.read_arrays(a, io.GENERATED_FORMAT)
    with pytest.raises(ValueError, match="share their first dimension"):
        io.write_arrays(tmp_path / "c.h5", {"x": np.ones(2), "y": np.ones(3)}, {}, io.GENERATED_FORMAT)


def test_informative_dimensions_are_found_from_the_posterior_alone():
    rng = np.random.default_rng(0)
    s, d = 400, 6
    z_mean = rng.normal(0.0, 0.05, (s, d))  # spread 0.05 over a posterior std of 1: signal-to-noise 0.05
    z_mean[:, 2] = rng.normal(0.0, 3.0, s)  # signal-to-noise 3
    z_mean[:, 4] = rng.normal(0.0, 2.0, s)  # 2: at least half the largest
    z_mean[:, 5] = rng.normal(0.0, 1.0, s)  # 1: a third of it, left out
    z_log_var = np.zeros((s, d))
    assert analysis.informative_dimensions(z_mean, z_log_var).tolist() == [2, 4]
    assert analysis.informative_dimensions(z_mean, z_log_var, fraction=0.25).tolist() == [2, 4, 5]
    # a narrower posterior makes the same spread more informative
    z_log_var[:, 5] = 2 * np.log(0.25)
    assert analysis.informative_dimensions(z_mean, z_log_var).tolist() == [2, 4, 5]
    with pytest.raises(ValueError, match="two \\(S, D\\) arrays"):
        analysis.informative_dimensions(z_mean, z_log_var[:, :3])
