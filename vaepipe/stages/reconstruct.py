"""Stages of workflow/rules/reconstruct.smk: decoded distance matrices back to configurations, and generation.

Energies come from the sampler's C++ code (:mod:`vaepipe.energy`). Positions are in sigma, energies in epsilon.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Mapping

import numpy as np

from vaepipe import analysis, plots, training
from vaepipe.datasets import TrainingData, example_rows, load_test_set
from vaepipe.energy import pair_energy_per_particle, total_energy
from vaepipe.io.arrays import GENERATED_FORMAT, RECONSTRUCTION_FORMAT, read_arrays, write_arrays
from vaepipe.io.latent import read_latent
from vaepipe.io.models import read_model
from vaepipe.io.samples import read_samples
from vaepipe.reconstruct import (
    align,
    align_permutation,
    anchored_positions,
    classical_mds,
    min_pair_distance,
    repair_overlaps,
    smacof,
)
from vaepipe.seeds import derive_seed, seed_int
from vaepipe.stages import StageResult, figure, json_record, path, paths

__all__ = ["reconstruct", "generate", "place", "decode_distances"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _in_box(positions: np.ndarray, box_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions clipped into [0, L] (the energy is defined inside the box only) and the share of particles that
    were outside, per configuration."""
    outside = np.any((positions < 0) | (positions > box_length), axis=-1).mean(axis=-1)
    return np.clip(positions, 0.0, box_length), outside




def decode_distances(model, z: np.ndarray, scale: float, batch_size: int = 256) -> np.ndarray:
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
        return anchored_positions(matrices, anchors, dim)
    positions = classical_mds(matrices[:, :n, :n], dim) + box / 2
    return positions, np.full(positions.shape[0], np.nan)


def reconstruct(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``reconstruct``: the distance VAE's test-set reconstructions turned back into particle configurations
    (Gram / classical MDS, anchored placement, permutation-aware alignment, SMACOF, the seed's learned "Model 2"),
    and their energies against the originals'. Outputs ``arrays`` (per test configuration), ``metrics``, and the
    figures ``examples``, ``rmsd`` and ``energy``.

    input : ``model``, ``features`` and ``samples`` (one of each per trained state point, in the same order).

    params : ``seed``, ``split`` and ``reconstruction`` (the config section: min_distance, repair_distance,
    repair_steps,
    smacof_iterations, learned {hidden_units, epochs, batch_size, learning_rate, patience}).
    """
    training.configure_threads(threads)
    # Keras (and so TensorFlow) only now, after the thread pools are set
    from vaepipe.models.regressor import train_coordinate_regressor

    settings = params["reconstruction"]
    full = load_test_set(paths(input, "features"), paths(input, "samples"), params["seed"], params["split"], which=None)
    if full.attrs.get("representation") != "distance":
        raise ValueError(f"reconstruct needs distance features, got {full.attrs.get('representation')!r}")
    attrs = full.attrs
    n, dim, box = int(attrs["n_particles"]), int(attrs["dim"]), float(attrs["box_length"])
    scale = float(attrs["distance_scale"])
    test = full.subset((full.labels["split"] == "test").to_numpy())
    gamma = test.labels["gamma"].to_numpy()
    model = read_model(path(input, "model"))
    z_mean, _ = training.encode(model, test.features)
    decoded = decode_distances(model, z_mean, scale)
    _log(f"decoded {len(decoded)} test matrices of {full.labels['state'].nunique()} state points")

    # Gram reconstruction of the particle block, aligned onto the original (the seed's two steps).
    mds = classical_mds(decoded[:, :n, :n], dim, return_info=True)
    _, rmsd = align(mds.positions, test.positions)
    # The floor: the same on the original (float32) matrices.
    exact = classical_mds(test.features[:, :n, :n].astype(np.float64) * scale, dim)
    _, rmsd_exact = align(exact, test.positions)
    # Without trusting the decoded order.
    _, rmsd_permutation, _ = align_permutation(mds.positions, test.positions)
    # SMACOF against the decoded distances.
    refined, stress = smacof(decoded[:, :n, :n], mds.positions,
                                         max_iter=int(settings["smacof_iterations"]))
    stress_mds = smacof(decoded[:, :n, :n], mds.positions, max_iter=0)[1]
    _, rmsd_smacof = align(refined, test.positions)
    # Absolute placement from the anchors, no original needed.
    anchors = _anchors(attrs)
    if anchors is not None and len(anchors) >= dim + 1:
        anchored, anchor_rmsd = anchored_positions(decoded, anchors, dim)
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
    _, rmsd_learned = align(learned_positions, test.positions)
    rmsd_learned_absolute = np.sqrt(np.mean(np.sum((learned_positions - test.positions) ** 2, -1), -1))
    _, rmsd_learned_originals = align(learned_on_originals, test.positions)

    # Energies: originals against the anchored reconstructions (box frame: the gravity term needs it).
    placed, outside = _in_box(anchored, box)
    energy_original = total_energy(test.positions, gamma, attrs)
    energy_reconstructed = total_energy(placed, gamma, attrs)
    min_distance = min_pair_distance(placed)
    threshold = float(settings["min_distance"])
    unphysical = (min_distance < threshold) | (energy_reconstructed > 0)
    repaired, displacement, steps = repair_overlaps(placed, box, float(settings["repair_distance"]),
                                                                int(settings["repair_steps"]))
    energy_repaired = total_energy(repaired, gamma, attrs)
    unphysical_repaired = (min_pair_distance(repaired) < threshold - 1e-6) | (energy_repaired > 0)
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
    rows = example_rows(TrainingData(test.features, test.labels.assign(split="test"), attrs))
    file_attrs = {k: attrs[k] for k in ("n_particles", "dim", "box_length", "distance_scale", "boundary", "cutoff",
                                        "tail_correction") if k in attrs}
    file_attrs["anchor_points"] = attrs.get("anchor_points") or []
    examples = plots.configuration_figure(
            test.positions[rows], {"Gram + alignment": align(mds.positions[rows],
                                                                         test.positions[rows])[0],
                                   "anchored": anchored[rows]}, box,
            [f"{test.labels['state'][r]} #{test.labels['sample_index'][r]}" for r in rows])
    rmsd_plot = plots.rmsd_figure({"Gram + alignment": rmsd, "anchored (no original)": rmsd_anchored,
                                    "permutation-aware": rmsd_permutation, "SMACOF": rmsd_smacof,
                                    "learned (Model 2)": rmsd_learned})
    energy_plot = plots.energy_mapping_figure(energy_original / n, energy_reconstructed / n, energy_repaired / n,
                                              gamma)

    def write_arrays_file(target, prov):
        write_arrays(target, arrays, {**file_attrs, "provenance": prov}, RECONSTRUCTION_FORMAT)

    return StageResult(
        outputs={"arrays": write_arrays_file, "metrics": json_record(metrics), "examples": figure(examples),
                 "rmsd": figure(rmsd_plot), "energy": figure(energy_plot)},
        seed=derive_seed(params["seed"], "reconstruct", "learned"),
        values={"arrays": arrays, "metrics": metrics})


def generate(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``generate``: configurations decoded from z ~ N(0, I), their energy distribution against the Monte
    Carlo one, and the energy landscape over the latent plane. Outputs ``arrays`` (generated configurations),
    ``metrics`` and the figures ``histograms`` and ``landscape``.

    input : ``model``, ``latent``, ``reconstruction`` (the reconstruct rule's arrays) and ``samples`` (every
    trained state point).

    params : ``seed`` and ``generation`` (num_generated, landscape_grid, landscape_extent, min_distance,
    repair_distance, repair_steps).
    """
    training.configure_threads(threads)
    settings = params["generation"]
    model = read_model(path(input, "model"))
    latent, latent_attrs = read_latent(path(input, "latent"))
    recon, recon_attrs = read_arrays(path(input, "reconstruction"), RECONSTRUCTION_FORMAT)
    attrs = {k: recon_attrs[k] for k in ("n_particles", "dim", "box_length", "distance_scale", "boundary",
                                         "cutoff", "tail_correction")}
    attrs["anchor_points"] = json.loads(recon_attrs["anchor_points"]) if recon_attrs.get("anchor_points") else []
    box, scale = float(attrs["box_length"]), float(attrs["distance_scale"])
    latent_dim = sum(c.startswith("z_mean_") for c in latent.columns)
    z_all = latent[[f"z_mean_{i}" for i in range(latent_dim)]].to_numpy(np.float64)

    # The Monte Carlo reference: every configuration of the state points the model was trained on.
    mc = np.concatenate([pair_energy_per_particle(read_samples(p).positions, attrs) for p in paths(input, "samples")])
    rng = np.random.default_rng(derive_seed(params["seed"], "generate"))
    z = rng.standard_normal((int(settings["num_generated"]), latent_dim)).astype(np.float32)
    generated, anchor_rmsd = place(decode_distances(model, z, scale), attrs)
    generated, outside = _in_box(generated, box)
    generated_energy = pair_energy_per_particle(generated, attrs)
    reconstructed_energy = pair_energy_per_particle(np.clip(recon["anchored"], 0, box), attrs)
    threshold = float(settings["min_distance"])
    unphysical = (min_pair_distance(generated) < threshold) | (generated_energy > 0)
    w_generated = analysis.wasserstein_over_std(generated_energy, mc)
    w_reconstructed = analysis.wasserstein_over_std(reconstructed_energy, mc)
    # The same after the minimal overlap repair: how far the rest of the structure is from Monte Carlo's.
    repaired, displacement, _ = repair_overlaps(generated, box, float(settings["repair_distance"]),
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
    landscape_positions, _ = place(decode_distances(model, plane.lift(grid).astype(np.float32), scale), attrs)
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
    arrays = {"positions": generated, "energy_per_particle": generated_energy, "z": z, "anchor_rmsd": anchor_rmsd}
    histograms = plots.energy_histogram_figure(
            {"Monte Carlo": mc, "reconstructed (test)": reconstructed_energy, "generated": generated_energy,
             "reconstructed, overlaps repaired": reconstructed_repaired_energy,
             "generated, overlaps repaired": repaired_energy},
            {"reconstructed (test)": w_reconstructed, "generated": w_generated,
             "reconstructed, overlaps repaired": w_reconstructed_repaired,
             "generated, overlaps repaired": w_repaired})
    landscape_plot = plots.landscape_figure(u / plane.scale[0], v / (plane.scale[1] or 1.0), landscape,
                                            projected / np.where(plane.scale > 0, plane.scale, 1.0),
                                            test["gamma"].to_numpy(), plane.explained)

    def write_arrays_file(target, prov):
        write_arrays(target, arrays, {"provenance": prov}, GENERATED_FORMAT)

    return StageResult(
        outputs={"arrays": write_arrays_file, "metrics": json_record(metrics), "histograms": figure(histograms),
                 "landscape": figure(landscape_plot)},
        seed=derive_seed(params["seed"], "generate"),
        values={"arrays": arrays, "metrics": metrics})
