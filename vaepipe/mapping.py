"""The stages after learning: from decoded representations back to configurations, energies and the latent space.

- :func:`reconstruct_stage` (rule ``reconstruct``): the distance VAE's test-set reconstructions turned back into
  particle configurations (Gram / classical MDS, anchored placement, permutation-aware alignment, SMACOF, the
  seed's learned "Model 2"), and their energies against the originals'.
- :func:`generate_stage` (rule ``generate``): configurations decoded from z ~ N(0, I), their energy
  distribution against the Monte Carlo one, and the energy landscape over the latent plane.
- :func:`latent_stage` (rule ``latent_analysis``): gamma clustering of one representation's latent means.
- :func:`anomaly_stage` (rule ``anomaly``): ROC of the VAE's anomaly score against three kinds of anomaly.
- :func:`summary_stage` (rule ``summary``): ``results/summary.json``, the numbers users read first.

Energies come from the sampler's C++ code through :func:`vaepipe.energy.potential_energy`. Positions are in
sigma, energies in epsilon. TensorFlow is imported only inside the functions that decode or train.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from vaepipe import analysis, io, reconstruct
from vaepipe.io import SUMMARY_KEYS
from vaepipe.energy import potential_energy
from vaepipe.seeds import derive_seed
from vaepipe.training import seed_int

__all__ = [
    "SUMMARY_KEYS",
    "TestSet",
    "load_test_set",
    "pair_energy_per_particle",
    "reconstruct_stage",
    "generate_stage",
    "latent_stage",
    "anomaly_stage",
    "summary_stage",
]

def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


@dataclass
class TestSet:
    """Samples of one representation with their original configurations.

    features : (S, ...) float32 model inputs. labels : DataFrame (state, gamma, temperature, energy, chain,
    sample_index, split). positions : (S, N, dim) float64 originals in sigma, particles in the features' order
    (sorted, for distance matrices). attrs : features attributes, with the system's (box_length, boundary,
    cutoff, tail_correction) from the samples files.
    """

    features: np.ndarray
    labels: pd.DataFrame
    positions: np.ndarray
    attrs: dict

    def subset(self, mask: np.ndarray) -> "TestSet":
        mask = np.asarray(mask)
        return TestSet(self.features[mask], self.labels[mask].reset_index(drop=True), self.positions[mask],
                       self.attrs)


def load_test_set(feature_paths: Sequence[str], sample_paths: Sequence[str], seed: int,
                  split: Mapping[str, float], which: str | None = "test") -> TestSet:
    """Features, labels and original positions of every state point's ``which`` split (all samples for None).

    feature_paths and sample_paths : one per state point, in the same order.
    """
    from vaepipe import training

    if len(feature_paths) != len(sample_paths):
        raise ValueError(f"got {len(feature_paths)} features files but {len(sample_paths)} samples files; pass one "
                         f"of each per state point, in the same order")
    data = training.load_training_data(feature_paths, seed, **split)
    states = data.labels["state"].to_numpy()
    positions, system = [], None
    for state, sample_path in zip(dict.fromkeys(states), sample_paths):
        samples = io.read_samples(sample_path)
        if samples.attrs["state"] != state:
            raise ValueError(f"{sample_path} holds state point {samples.attrs['state']!r} but the features file in "
                             f"its place holds {state!r}; pass the files in the same state-point order")
        rows = states == state
        p = samples.positions[data.labels["sample_index"].to_numpy()[rows]]
        if data.order is not None:
            p = np.take_along_axis(p, data.order[rows][..., None], axis=1)
        positions.append(p)
        system = {k: samples.attrs[k] for k in ("box_length", "boundary", "cutoff", "tail_correction")
                  if k in samples.attrs}
    attrs = {**data.attrs, **system}
    full = TestSet(data.features, data.labels, np.concatenate(positions), attrs)
    return full if which is None else full.subset((data.labels["split"] == which).to_numpy())


def _energy_kwargs(attrs: Mapping[str, Any]) -> dict:
    cutoff = attrs.get("cutoff")
    cutoff = None if cutoff is None or (isinstance(cutoff, float) and math.isnan(cutoff)) else float(cutoff)
    return {"boundary": str(attrs.get("boundary", "reflect")), "cutoff": cutoff,
            "tail_correction": bool(attrs.get("tail_correction", False))}


def _in_box(positions: np.ndarray, box_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions clipped into [0, L] (the energy is defined inside the box only) and the share of particles that
    were outside, per configuration."""
    outside = np.any((positions < 0) | (positions > box_length), axis=-1).mean(axis=-1)
    return np.clip(positions, 0.0, box_length), outside


def total_energy(positions: np.ndarray, gamma: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """U / eps of each configuration (S, N, dim) at its own gamma (S,), by the sampler's C++ energy."""
    out = np.empty(positions.shape[0])
    for value in np.unique(gamma):
        rows = gamma == value
        out[rows] = potential_energy(positions[rows], float(attrs["box_length"]), gamma=float(value),
                                     **_energy_kwargs(attrs))
    return out


def pair_energy_per_particle(positions: np.ndarray, attrs: Mapping[str, Any]) -> np.ndarray:
    """U_LJ / (N eps): the pair part only (gamma = 0). A generated configuration belongs to no state point, so
    it has no gravity term; this is what compares across state points."""
    energy = potential_energy(positions, float(attrs["box_length"]), gamma=0.0, **_energy_kwargs(attrs))
    return np.asarray(energy) / positions.shape[1]


def _decode_distances(model, z: np.ndarray, scale: float, batch_size: int = 256) -> np.ndarray:
    """Decoded distance matrices in sigma, (S, M, M) float64."""
    return np.asarray(model.decoder.predict(z, batch_size=batch_size, verbose=0), dtype=np.float64) * scale


def _anchors(attrs: Mapping[str, Any]) -> np.ndarray | None:
    points = attrs.get("anchor_points")
    return np.asarray(points, dtype=np.float64) if points else None


def place(matrices: np.ndarray, attrs: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Configurations in the box frame from decoded distance matrices (sigma): anchored MDS when the features
    carry anchors (``anchor_rmsd`` (S,) says how well the anchors were matched), else MDS centred in the box
    (anchor_rmsd NaN). Returns (positions (S, N, dim), anchor_rmsd)."""
    n, dim, box = int(attrs["n_particles"]), int(attrs["dim"]), float(attrs["box_length"])
    anchors = _anchors(attrs)
    if anchors is not None and len(anchors) >= dim + 1:
        return reconstruct.anchored_positions(matrices, anchors, dim)
    positions = reconstruct.classical_mds(matrices[:, :n, :n], dim) + box / 2
    return positions, np.full(positions.shape[0], np.nan)


# --------------------------------------------------------------------------- the learned alternative (Model 2)


def train_coordinate_regressor(train_matrices: np.ndarray, train_positions: np.ndarray,
                               val_matrices: np.ndarray, val_positions: np.ndarray, params: Mapping[str, Any],
                               box_length: float, seed: int):
    """The seed's "Model 2": a dense network from a normalised distance matrix to the particles' coordinates in
    the box frame (divided by L), trained with the mean squared error on original matrices. Returns the model."""
    import keras

    keras.utils.set_random_seed(seed)
    n_outputs = int(np.prod(train_positions.shape[1:]))
    inputs = keras.Input(shape=train_matrices.shape[1:], name="distances")
    x = keras.layers.Flatten()(inputs)
    for units in params["hidden_units"]:
        x = keras.layers.Dense(int(units), activation="relu")(x)
    outputs = keras.layers.Reshape(train_positions.shape[1:])(keras.layers.Dense(n_outputs)(x))
    model = keras.Model(inputs, outputs, name="distance_to_coordinates")
    model.compile(optimizer=keras.optimizers.Adam(float(params["learning_rate"])), loss="mse")
    stop = keras.callbacks.EarlyStopping(patience=int(params["patience"]), restore_best_weights=True)
    model.fit(train_matrices, train_positions / box_length, validation_data=(val_matrices, val_positions / box_length),
              epochs=int(params["epochs"]), batch_size=int(params["batch_size"]), callbacks=[stop], verbose=0,
              shuffle=True)
    return model


# --------------------------------------------------------------------------- reconstruction stage


def reconstruct_stage(model_path: str, feature_paths: Sequence[str], sample_paths: Sequence[str],
                      params: Mapping[str, Any], threads: int = 1) -> dict:
    """Everything the ``reconstruct`` rule writes, in memory: ``arrays`` (per test configuration), ``metrics``
    (JSON-ready) and the figures ``examples_figure``, ``rmsd_figure`` and ``energy_figure``.

    params : ``seed``, ``split`` and ``reconstruction`` (the config section: min_distance, repair_distance,
    repair_steps,
    smacof_iterations, learned {hidden_units, epochs, batch_size, learning_rate, patience}).
    """
    from vaepipe import plots, training

    training.configure_threads(threads)
    settings = params["reconstruction"]
    full = load_test_set(feature_paths, sample_paths, params["seed"], params["split"], which=None)
    if full.attrs.get("representation") != "distance":
        raise ValueError(f"reconstruct needs distance features, got {full.attrs.get('representation')!r}")
    attrs = full.attrs
    n, dim, box = int(attrs["n_particles"]), int(attrs["dim"]), float(attrs["box_length"])
    scale = float(attrs["distance_scale"])
    test = full.subset((full.labels["split"] == "test").to_numpy())
    gamma = test.labels["gamma"].to_numpy()
    model = io.read_model(model_path)
    z_mean, _ = training.encode(model, test.features)
    decoded = _decode_distances(model, z_mean, scale)
    _log(f"decoded {len(decoded)} test matrices of {full.labels['state'].nunique()} state points")

    # Gram reconstruction of the particle block, aligned onto the original (the seed's two steps).
    mds = reconstruct.classical_mds(decoded[:, :n, :n], dim, return_info=True)
    _, rmsd = reconstruct.align(mds.positions, test.positions)
    # The floor: the same on the original (float32) matrices.
    exact = reconstruct.classical_mds(test.features[:, :n, :n].astype(np.float64) * scale, dim)
    _, rmsd_exact = reconstruct.align(exact, test.positions)
    # Without trusting the decoded order.
    _, rmsd_permutation, _ = reconstruct.align_permutation(mds.positions, test.positions)
    # SMACOF against the decoded distances.
    refined, stress = reconstruct.smacof(decoded[:, :n, :n], mds.positions,
                                         max_iter=int(settings["smacof_iterations"]))
    stress_mds = reconstruct.smacof(decoded[:, :n, :n], mds.positions, max_iter=0)[1]
    _, rmsd_smacof = reconstruct.align(refined, test.positions)
    # Absolute placement from the anchors, no original needed.
    anchors = _anchors(attrs)
    if anchors is not None and len(anchors) >= dim + 1:
        anchored, anchor_rmsd = reconstruct.anchored_positions(decoded, anchors, dim)
        rmsd_anchored = np.sqrt(np.mean(np.sum((anchored - test.positions) ** 2, axis=-1), axis=-1))
    else:
        anchored, anchor_rmsd = mds.positions + box / 2, np.full(len(test.positions), np.nan)
        rmsd_anchored = np.full(len(test.positions), np.nan)
    _log(f"RMSD (sigma), median: Gram + alignment {np.median(rmsd):.3f}, anchored {np.median(rmsd_anchored):.3f}, "
         f"permutation-aware {np.median(rmsd_permutation):.3f}, SMACOF {np.median(rmsd_smacof):.3f}; exact "
         f"matrices {np.median(rmsd_exact):.2e}")

    # The learned alternative, trained on the original matrices of the training split.
    learned = settings["learned"]
    train = full.subset((full.labels["split"] == "train").to_numpy())
    val = full.subset((full.labels["split"] == "validation").to_numpy())
    regressor = train_coordinate_regressor(train.features, train.positions, val.features, val.positions, learned,
                                           box, seed_int(derive_seed(params["seed"], "reconstruct", "learned")))
    learned_positions = np.asarray(regressor.predict(decoded / scale, batch_size=256, verbose=0)) * box
    learned_on_originals = np.asarray(regressor.predict(test.features, batch_size=256, verbose=0)) * box
    _, rmsd_learned = reconstruct.align(learned_positions, test.positions)
    rmsd_learned_absolute = np.sqrt(np.mean(np.sum((learned_positions - test.positions) ** 2, -1), -1))
    _, rmsd_learned_originals = reconstruct.align(learned_on_originals, test.positions)

    # Energies: originals against the anchored reconstructions (box frame: the gravity term needs it).
    placed, outside = _in_box(anchored, box)
    energy_original = total_energy(test.positions, gamma, attrs)
    energy_reconstructed = total_energy(placed, gamma, attrs)
    min_distance = reconstruct.min_pair_distance(placed)
    threshold = float(settings["min_distance"])
    unphysical = (min_distance < threshold) | (energy_reconstructed > 0)
    repaired, displacement, steps = reconstruct.repair_overlaps(placed, box, float(settings["repair_distance"]),
                                                                int(settings["repair_steps"]))
    energy_repaired = total_energy(repaired, gamma, attrs)
    unphysical_repaired = (reconstruct.min_pair_distance(repaired) < threshold - 1e-6) | (energy_repaired > 0)
    error = (energy_reconstructed - energy_original) / n
    error_repaired = (energy_repaired - energy_original) / n
    _log(f"energy: median |dU|/N {np.median(np.abs(error)):.3g} eps, unphysical {unphysical.mean():.3f}; after "
         f"overlap repair ({steps} steps, mean displacement {displacement.mean():.3f} sigma) "
         f"{np.median(np.abs(error_repaired)):.3g} eps, unphysical {unphysical_repaired.mean():.3f}")

    def med(x):
        return float(np.nanmedian(x)) if np.isfinite(x).any() else math.nan

    metrics = {
        "num_test": int(len(test.positions)),
        "rmsd_median": med(rmsd), "rmsd_mean": float(np.mean(rmsd)),
        "rmsd_anchored_median": med(rmsd_anchored),
        "rmsd_permutation_median": med(rmsd_permutation),
        "rmsd_smacof_median": med(rmsd_smacof),
        "rmsd_exact_median": med(rmsd_exact),
        "rmsd_learned_median": med(rmsd_learned),
        "rmsd_learned_absolute_median": med(rmsd_learned_absolute),
        "rmsd_learned_on_originals_median": med(rmsd_learned_originals),
        "anchor_rmsd_median": med(anchor_rmsd),
        "negative_fraction_median": med(mds.negative_fraction),
        "negative_fraction_max": float(np.max(mds.negative_fraction)),
        "residual_fraction_median": med(mds.residual_fraction),
        "stress_mds_median": med(stress_mds), "stress_smacof_median": med(stress),
        "smacof_helps": bool(med(rmsd_smacof) < med(rmsd)),
        "outside_box_fraction": float(outside.mean()),
        "energy": {
            "abs_error_per_particle_median": float(np.median(np.abs(error))),
            "error_per_particle_quantiles": np.quantile(error, [0.05, 0.25, 0.5, 0.75, 0.95]).tolist(),
            "unphysical_fraction": float(unphysical.mean()),
            "overlap_fraction": float(np.mean(min_distance < threshold)),
            "positive_energy_fraction": float(np.mean(energy_reconstructed > 0)),
            "min_distance_threshold": threshold,
            "repair": {
                "abs_error_per_particle_median": float(np.median(np.abs(error_repaired))),
                "unphysical_fraction": float(unphysical_repaired.mean()),
                "mean_displacement": float(displacement.mean()),
                "steps": int(steps),
                "energy_per_particle_median_before": float(np.median(energy_reconstructed / n)),
                "energy_per_particle_median_after": float(np.median(energy_repaired / n)),
            },
            "original_per_particle_median": float(np.median(energy_original / n)),
        },
    }
    arrays = {
        "state": test.labels["state"].to_numpy(dtype=object), "gamma": gamma,
        "sample_index": test.labels["sample_index"].to_numpy(), "original": test.positions,
        "gram": mds.positions, "anchored": anchored, "repaired": repaired, "learned": learned_positions,
        "rmsd": rmsd, "rmsd_anchored": rmsd_anchored, "rmsd_permutation": rmsd_permutation,
        "rmsd_smacof": rmsd_smacof, "rmsd_learned": rmsd_learned, "anchor_rmsd": anchor_rmsd,
        "negative_fraction": mds.negative_fraction, "min_distance": min_distance,
        "energy_original": energy_original, "energy_reconstructed": energy_reconstructed,
        "energy_repaired": energy_repaired, "displacement": displacement,
    }
    rows = training.example_rows(training.TrainingData(test.features, test.labels.assign(split="test"), attrs))
    file_attrs = {k: attrs[k] for k in ("n_particles", "dim", "box_length", "distance_scale", "boundary", "cutoff",
                                        "tail_correction") if k in attrs}
    file_attrs["anchor_points"] = attrs.get("anchor_points") or []
    return {
        "arrays": arrays,
        "attrs": file_attrs,
        "metrics": metrics,
        "examples_figure": plots.configuration_figure(
            test.positions[rows], {"Gram + alignment": reconstruct.align(mds.positions[rows],
                                                                         test.positions[rows])[0],
                                   "anchored": anchored[rows]}, box,
            [f"{test.labels['state'][r]} #{test.labels['sample_index'][r]}" for r in rows]),
        "rmsd_figure": plots.rmsd_figure({"Gram + alignment": rmsd, "anchored (no original)": rmsd_anchored,
                                          "permutation-aware": rmsd_permutation, "SMACOF": rmsd_smacof,
                                          "learned (Model 2)": rmsd_learned}),
        "energy_figure": plots.energy_mapping_figure(energy_original / n, energy_reconstructed / n,
                                                     energy_repaired / n, gamma),
    }


# --------------------------------------------------------------------------- generation stage


def generate_stage(model_path: str, latent_path: str, reconstruction_path: str, sample_paths: Sequence[str],
                   params: Mapping[str, Any], threads: int = 1) -> dict:
    """Everything the ``generate`` rule writes: ``arrays`` (generated configurations), ``metrics`` and the figures
    ``energy_figure`` (histograms) and ``landscape_figure``.

    params : ``seed`` and ``generation`` (num_generated, landscape_grid, landscape_extent, min_distance,
    repair_distance, repair_steps).
    """
    from vaepipe import plots, training

    training.configure_threads(threads)
    settings = params["generation"]
    model = io.read_model(model_path)
    latent, latent_attrs = io.read_latent(latent_path)
    recon, recon_attrs = io.read_arrays(reconstruction_path, io.RECONSTRUCTION_FORMAT)
    attrs = {k: recon_attrs[k] for k in ("n_particles", "dim", "box_length", "distance_scale", "boundary",
                                         "cutoff", "tail_correction")}
    attrs["anchor_points"] = json.loads(recon_attrs["anchor_points"]) if recon_attrs.get("anchor_points") else []
    box, scale = float(attrs["box_length"]), float(attrs["distance_scale"])
    latent_dim = sum(c.startswith("z_mean_") for c in latent.columns)
    z_all = latent[[f"z_mean_{i}" for i in range(latent_dim)]].to_numpy(np.float64)

    # The Monte Carlo reference: every configuration of the state points the model was trained on.
    mc = np.concatenate([pair_energy_per_particle(io.read_samples(p).positions, attrs) for p in sample_paths])
    rng = np.random.default_rng(derive_seed(params["seed"], "generate"))
    z = rng.standard_normal((int(settings["num_generated"]), latent_dim)).astype(np.float32)
    generated, anchor_rmsd = place(_decode_distances(model, z, scale), attrs)
    generated, outside = _in_box(generated, box)
    generated_energy = pair_energy_per_particle(generated, attrs)
    reconstructed_energy = pair_energy_per_particle(np.clip(recon["anchored"], 0, box), attrs)
    threshold = float(settings["min_distance"])
    unphysical = (reconstruct.min_pair_distance(generated) < threshold) | (generated_energy > 0)
    w_generated = analysis.wasserstein_over_std(generated_energy, mc)
    w_reconstructed = analysis.wasserstein_over_std(reconstructed_energy, mc)
    # The same after the minimal overlap repair: how far the rest of the structure is from Monte Carlo's.
    repaired, displacement, _ = reconstruct.repair_overlaps(generated, box, float(settings["repair_distance"]),
                                                            int(settings["repair_steps"]))
    repaired_energy = pair_energy_per_particle(repaired, attrs)
    reconstructed_repaired_energy = pair_energy_per_particle(recon["repaired"], attrs)
    w_repaired = analysis.wasserstein_over_std(repaired_energy, mc)
    w_reconstructed_repaired = analysis.wasserstein_over_std(reconstructed_repaired_energy, mc)
    _log(f"generated {len(z)}: W1/std of U_LJ/N to Monte Carlo {w_generated:.3g} as decoded, {w_repaired:.3g} "
         f"after overlap repair (reconstructions {w_reconstructed:.3g}, {w_reconstructed_repaired:.3g}); "
         f"unphysical {unphysical.mean():.3f}")

    # Energy landscape over the plane of the two leading principal components of the latent means.
    plane = analysis.latent_pca(z_all)
    extent = float(settings["landscape_extent"])
    steps = int(settings["landscape_grid"])
    u = np.linspace(-extent, extent, steps) * plane.scale[0]
    v = np.linspace(-extent, extent, steps) * (plane.scale[1] if plane.scale[1] > 0 else 1.0)
    grid = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)
    landscape_positions, _ = place(_decode_distances(model, plane.lift(grid).astype(np.float32), scale), attrs)
    landscape = pair_energy_per_particle(np.clip(landscape_positions, 0, box), attrs).reshape(steps, steps)
    test = latent[latent["split"] == "test"]
    projected = plane.project(test[[f"z_mean_{i}" for i in range(latent_dim)]].to_numpy(np.float64))
    metrics = {
        "num_generated": int(len(z)),
        "wasserstein_over_std": w_generated,
        "wasserstein_over_std_reconstructed": w_reconstructed,
        "wasserstein_over_std_repaired": w_repaired,
        "wasserstein_over_std_reconstructed_repaired": w_reconstructed_repaired,
        "repair_mean_displacement": float(displacement.mean()),
        "unphysical_fraction": float(unphysical.mean()),
        "outside_box_fraction": float(outside.mean()),
        "anchor_rmsd_median": float(np.nanmedian(anchor_rmsd)) if np.isfinite(anchor_rmsd).any() else math.nan,
        "energy_per_particle_median": {"monte_carlo": float(np.median(mc)),
                                       "reconstructed": float(np.median(reconstructed_energy)),
                                       "generated": float(np.median(generated_energy))},
        "landscape": {"explained_variance": plane.explained.tolist(), "grid": steps, "extent_std": extent,
                      "min_energy_per_particle": float(landscape.min()),
                      "fraction_negative": float(np.mean(landscape < 0))},
        "latent_source": latent_attrs.get("representation", ""),
    }
    return {
        "arrays": {"positions": generated, "energy_per_particle": generated_energy, "z": z,
                   "anchor_rmsd": anchor_rmsd},
        "metrics": metrics,
        "energy_figure": plots.energy_histogram_figure(
            {"Monte Carlo": mc, "reconstructed (test)": reconstructed_energy, "generated": generated_energy,
             "reconstructed, overlaps repaired": reconstructed_repaired_energy,
             "generated, overlaps repaired": repaired_energy},
            {"reconstructed (test)": w_reconstructed, "generated": w_generated,
             "reconstructed, overlaps repaired": w_reconstructed_repaired,
             "generated, overlaps repaired": w_repaired}),
        "landscape_figure": plots.landscape_figure(u / plane.scale[0], v / (plane.scale[1] or 1.0), landscape,
                                                   projected / np.where(plane.scale > 0, plane.scale, 1.0),
                                                   test["gamma"].to_numpy(), plane.explained),
    }


# --------------------------------------------------------------------------- latent analysis


def latent_stage(latent_path: str, params: Mapping[str, Any]) -> dict:
    """Gamma clustering of one representation's latent means: ``metrics`` and ``figure`` (PCA plane by gamma).

    params : ``seed`` and ``analysis`` (knn_neighbors, cv_folds).
    """
    from vaepipe import plots

    latent, attrs = io.read_latent(latent_path)
    representation = attrs.get("representation", "")
    columns = [c for c in latent.columns if c.startswith("z_mean_")]
    z = latent[columns].to_numpy(np.float64)
    gamma = latent["gamma"].to_numpy(np.float64)
    settings = params["analysis"]
    stats = analysis.gamma_clustering(z, gamma, neighbors=int(settings["knn_neighbors"]),
                                      folds=int(settings["cv_folds"]),
                                      seed=seed_int(derive_seed(params["seed"], "latent", representation)))
    plane = analysis.latent_pca(z)
    _log(f"{representation}: gamma k-NN accuracy {stats['knn_accuracy']:.3f} (chance {stats['chance']:.3f}), "
         f"silhouette {stats['silhouette']:.3f}")
    metrics = {"representation": representation, **stats, "latent_dim": len(columns),
               "explained_variance": plane.explained.tolist()}
    return {"metrics": metrics, "figure": plots.latent_figure(plane.project(z), gamma, plane.explained, stats,
                                                              representation)}


# --------------------------------------------------------------------------- anomaly detection


def anomaly_scores(model, representation: str, features: np.ndarray, attrs: Mapping[str, Any],
                   reconstruction_loss: str) -> dict[str, np.ndarray]:
    """Per-sample anomaly scores, higher = more anomalous: ``neg_elbo`` (reconstruction loss of the decoded
    posterior mean plus the KL term, nats, beta = 1) and ``recon_error`` (the representation's headline error)."""
    from vaepipe import training
    from vaepipe.models import kl_divergence
    from vaepipe.models import reconstruction_loss as loss_fn

    z_mean, z_log_var = training.encode(model, features)
    decoded = np.asarray(model.decoder.predict(z_mean, batch_size=256, verbose=0))
    recon = np.asarray(loss_fn(features, decoded, reconstruction_loss), dtype=np.float64)
    kl = np.asarray(kl_divergence(z_mean, z_log_var), dtype=np.float64).sum(axis=1)
    errors = training.sample_errors(representation, features, decoded, attrs)
    return {"neg_elbo": recon + kl, "recon_error": errors["recon_error"]}


class _Configurations:
    """Positions with the attributes vaepipe.features.featurize reads."""

    def __init__(self, positions: np.ndarray, attrs: Mapping[str, Any]):
        self.positions = positions
        self.attrs = dict(attrs)


def _feature_params(attrs: Mapping[str, Any]) -> dict:
    representation = attrs["representation"]
    if representation == "voxel":
        out = {k: attrs[k] for k in ("voxel_size", "method", "normalize")}
        if attrs["method"] == "gaussian":
            out["width"] = attrs["width"]
        return out
    if representation == "distance":
        return {"anchors": json.loads(attrs["anchors"])}
    return {"sort_axis": int(attrs["sort_axis"])}


def anomaly_stage(model_path: str, feature_paths: Sequence[str], sample_paths: Sequence[str],
                  heldout_paths: Sequence[str], params: Mapping[str, Any], threads: int = 1) -> dict:
    """ROC of the anomaly score of one representation's VAE: ``metrics`` and ``figure``.

    Normal: the test split of the training state points. Anomalies: (i) the same configurations with one pair
    pushed into an overlap (r < overlap_distance[1] sigma); (ii) as many uniformly random configurations;
    (iii) the test split of the held-out gamma's state points (none configured: NaN).
    params : ``seed``, ``split``, ``reconstruction_loss`` (the model's) and ``analysis`` (anomaly_score,
    overlap_distance).
    """
    from vaepipe import features as featurization
    from vaepipe import plots, training

    training.configure_threads(threads)
    settings = params["analysis"]
    test = load_test_set(feature_paths, sample_paths, params["seed"], params["split"])
    attrs = test.attrs
    representation = attrs["representation"]
    model = io.read_model(model_path)
    rng = np.random.default_rng(derive_seed(params["seed"], "anomaly", representation))
    box, n, dim = float(attrs["box_length"]), int(attrs["n_particles"]), int(attrs["dim"])
    feature_params = _feature_params(attrs)

    def featurize(positions):
        system = {"box_length": box, "boundary": attrs.get("boundary", "reflect")}
        return featurization.featurize(_Configurations(positions, system), representation, feature_params).features

    overlap = analysis.inject_overlap(test.positions, box, rng, distance=tuple(settings["overlap_distance"]))
    uniform = analysis.uniform_configurations(len(test.positions), n, dim, box, rng)
    sets = {"normal": test.features, "overlap": featurize(overlap), "uniform": featurize(uniform)}
    if heldout_paths:
        # The held-out state points' own test split: configurations the model never saw, at a new gamma.
        heldout = training.load_training_data(heldout_paths, params["seed"], **params["split"])
        sets["heldout_gamma"] = heldout.split("test")
    scores = {name: anomaly_scores(model, representation, x, attrs, params["reconstruction_loss"])
              for name, x in sets.items()}
    metrics = {"representation": representation, "score": settings["anomaly_score"],
               "num_normal": int(len(test.features))}
    curves = {}
    for kind in ("overlap", "uniform", "heldout_gamma"):
        if kind not in scores:
            metrics[f"auc_{kind}"] = math.nan
            continue
        for score in ("neg_elbo", "recon_error"):
            result = analysis.roc(scores["normal"][score], scores[kind][score])
            metrics[f"auc_{kind}_{score}"] = result["auc"]
            if score == settings["anomaly_score"]:
                metrics[f"auc_{kind}"] = result["auc"]
                curves[kind] = result
    _log(f"{representation}: ROC AUC ({settings['anomaly_score']}) overlap {metrics['auc_overlap']:.3f}, uniform "
         f"{metrics['auc_uniform']:.3f}, held-out gamma {metrics['auc_heldout_gamma']:.3f}")
    return {"metrics": metrics, "figure": plots.roc_figure(curves, representation, settings["anomaly_score"])}


# --------------------------------------------------------------------------- summary


def summary_stage(model_metrics: Mapping[str, Mapping], reconstruction: Mapping, generation: Mapping,
                  latent: Mapping[str, Mapping], anomaly: Mapping[str, Mapping], headline: str) -> dict:
    """The flat summary: every key of :data:`SUMMARY_KEYS` (float, NaN where it does not apply) plus the
    per-representation latent and anomaly numbers (``latent.{representation}.*``, ``anomaly.{representation}.*``).

    model_metrics, latent, anomaly : {representation: metrics dict}; headline : the representation whose latent
    and anomaly numbers fill the ``latent.*`` and ``anomaly.*`` keys.
    """
    def number(value) -> float:
        return math.nan if value is None else float(value)

    out = {}
    for representation in ("voxel", "distance", "coordinates"):
        m = model_metrics.get(representation, {})
        out[f"vae.{representation}.recon_error"] = number(m.get("recon_error"))
        out[f"vae.{representation}.baseline_error"] = number(m.get("baseline_error"))
        out[f"vae.{representation}.error_ratio"] = number(m.get("error_ratio"))
        out[f"vae.{representation}.active_units"] = number(m.get("active_units"))
    for key in ("rmsd_median", "rmsd_anchored_median", "rmsd_permutation_median", "rmsd_smacof_median",
                "rmsd_learned_median", "negative_fraction_median"):
        out[f"reconstruction.{key}"] = number(reconstruction.get(key))
    energy = reconstruction.get("energy", {})
    out["energy.abs_error_per_particle_median"] = number(energy.get("abs_error_per_particle_median"))
    out["energy.unphysical_fraction"] = number(energy.get("unphysical_fraction"))
    repair = energy.get("repair", {})
    out["energy.repaired_abs_error_per_particle_median"] = number(repair.get("abs_error_per_particle_median"))
    out["energy.repaired_unphysical_fraction"] = number(repair.get("unphysical_fraction"))
    out["energy.wasserstein_over_std"] = number(generation.get("wasserstein_over_std"))
    out["energy.wasserstein_over_std_reconstructed"] = number(generation.get("wasserstein_over_std_reconstructed"))
    out["energy.generated_unphysical_fraction"] = number(generation.get("unphysical_fraction"))
    out["energy.wasserstein_over_std_repaired"] = number(generation.get("wasserstein_over_std_repaired"))
    for representation, m in latent.items():
        for key in ("knn_accuracy", "chance", "silhouette"):
            out[f"latent.{representation}.gamma_{key}"] = number(m.get(key))
    for representation, m in anomaly.items():
        for kind in ("overlap", "uniform", "heldout_gamma"):
            out[f"anomaly.{representation}.auc_{kind}"] = number(m.get(f"auc_{kind}"))
    head_latent, head_anomaly = latent.get(headline, {}), anomaly.get(headline, {})
    out["latent.gamma_knn_accuracy"] = number(head_latent.get("knn_accuracy"))
    out["latent.gamma_chance"] = number(head_latent.get("chance"))
    out["latent.gamma_silhouette"] = number(head_latent.get("silhouette"))
    for kind in ("overlap", "uniform", "heldout_gamma"):
        out[f"anomaly.auc_{kind}"] = number(head_anomaly.get(f"auc_{kind}"))
    missing = [k for k in SUMMARY_KEYS if k not in out]
    assert not missing, missing
    return dict(sorted(out.items()))
