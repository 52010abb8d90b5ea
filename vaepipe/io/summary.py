"""``results/summary.json``: the flat headline numbers of a run (NaN where a quantity does not apply), and its
tab-separated copy for the report."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import _jsonable, atomic_path, read_json


SUMMARY_FORMAT = "vaepipe-summary-1"

#: The keys every results/summary.json holds (floats; NaN where a quantity does not apply). The families
#: generation, reconstruction, latent and anomaly hold the headline representation's numbers (analysis.
#: representation); every trained representation's are under {family}.{representation}.{key} too.
SUMMARY_KEYS = (
    "vae.voxel.recon_error", "vae.voxel.baseline_error", "vae.distance.recon_error", "vae.distance.baseline_error",
    "vae.particles.recon_error", "vae.particles.baseline_error",
    "generation.valid_fraction", "generation.energy_w1_over_std", "generation.energy_w1_over_std_relaxed1",
    "generation.energy_w1_over_std_relaxed10", "generation.pair_distance_w1", "generation.density_profile_w1",
    "generation.energy_w1_over_std_mc_train", "generation.nearest_training_rmsd_median",
    "generation.nearest_training_rmsd_median_mc_test",
    "reconstruction.valid_fraction", "reconstruction.rmsd_anchored_median",
    "reconstruction.energy_abs_error_per_particle_median", "reconstruction.rmsd_nearest_training_median",
    "reconstruction.rmsd_random_pair_median",
    "latent.gamma_knn_accuracy", "latent.gamma_knn_accuracy_ceiling", "latent.gamma_knn_accuracy_full",
    "latent.gamma_linear_probe_accuracy", "latent.gamma_chance", "latent.gamma_silhouette",
    "anomaly.auc_heldout_gamma", "anomaly.auc_heldout_gamma_ceiling", "anomaly.auc_overlap",
    "anomaly.auc_overlap_trivial", "anomaly.auc_uniform", "anomaly.auc_uniform_trivial", "anomaly.auc_tilted",
    "anomaly.auc_tilted_trivial",
    "minimization.relative_gap_latent_exact", "minimization.relative_gap_latent_functional",
    "minimization.relative_gap_quench_only", "minimization.relative_gap_grid_descent",
    "minimization.functional_error_per_particle", "minimization.valid_path_fraction_latent",
    "minimization.relative_gap_latent_exact_heldout", "minimization.relative_gap_latent_functional_heldout",
    "minimization.relative_gap_quench_only_heldout", "minimization.relative_gap_grid_descent_heldout",
    "minimization.functional_error_per_particle_heldout", "minimization.valid_path_fraction_latent_heldout",
)


#: What each summary key means, for the report's table (units in the README).
SUMMARY_DESCRIPTIONS = {
    "vae.voxel.recon_error": "voxel VAE, test density error sum|rho_hat - rho| / sum rho",
    "vae.voxel.baseline_error": "the same for the mean training grid",
    "vae.distance.recon_error": "distance VAE, test MAE of particle distances (sigma)",
    "vae.distance.baseline_error": "the same for the mean training matrix (sigma)",
    "vae.particles.recon_error": "particle VAE, test RMSD, permutation-aware, box frame (sigma)",
    "vae.particles.baseline_error": "the same for the mean training configuration (sigma)",
    "generation.valid_fraction": "generated configurations, as decoded, inside the box with every pair >= 0.8 sigma",
    "generation.energy_w1_over_std": "W1 of generated U/N (gravity included, as decoded) to the MC test U/N, in MC std",
    "generation.energy_w1_over_std_relaxed1": "the same after 1 Metropolis sweep",
    "generation.energy_w1_over_std_relaxed10": "the same after 10 Metropolis sweeps",
    "generation.pair_distance_w1": "W1 of pooled pair distances, generated vs MC test (sigma)",
    "generation.density_profile_w1": "W1 of pooled heights z, generated vs MC test (sigma)",
    "generation.energy_w1_over_std_mc_train": "the energy W1 / std of MC training vs MC test samples: the metric's noise",
    "generation.nearest_training_rmsd_median": "median RMSD of generated configurations to their nearest training one (sigma)",
    "generation.nearest_training_rmsd_median_mc_test": "the same for MC test configurations (novelty reference, sigma)",
    "reconstruction.valid_fraction": "test reconstructions, as decoded, with every pair >= 0.8 sigma",
    "reconstruction.rmsd_anchored_median": "median RMSD of test reconstructions, permutation-aware, box frame (sigma)",
    "reconstruction.energy_abs_error_per_particle_median": "median |U_rec - U_MC| / N, gravity included (epsilon)",
    "reconstruction.rmsd_nearest_training_median": "baseline: median RMSD of a test configuration to its nearest training one (sigma)",
    "reconstruction.rmsd_random_pair_median": "baseline: median RMSD of two test configurations of one state point (sigma)",
    "latent.gamma_knn_accuracy": "cross-validated k-NN accuracy of gamma from the latent means (state block)",
    "latent.gamma_knn_accuracy_ceiling": "the same from sum(z) alone, the sufficient statistic: the ceiling",
    "latent.gamma_knn_accuracy_full": "k-NN accuracy of gamma from the whole latent",
    "latent.gamma_linear_probe_accuracy": "logistic-regression accuracy of gamma from the whole latent",
    "latent.gamma_chance": "share of the most common gamma (chance level of that accuracy)",
    "latent.gamma_silhouette": "silhouette score of the latent means (state block) with gamma as the label",
    "anomaly.auc_heldout_gamma": "ROC AUC of the model's score against a gamma held out of training",
    "anomaly.auc_heldout_gamma_ceiling": "the same for -sum(z), the optimal statistic: the ceiling",
    "anomaly.auc_overlap": "ROC AUC of the model's score against one injected overlapping pair",
    "anomaly.auc_overlap_trivial": "the same for the better of the energy and the closest pair",
    "anomaly.auc_uniform": "ROC AUC of the model's score against uniformly random configurations",
    "anomaly.auc_uniform_trivial": "the same for the better of the energy and the closest pair",
    "anomaly.auc_tilted": "ROC AUC of the model's score against tilted layers (same energy, same sum(z))",
    "anomaly.auc_tilted_trivial": "the same for the better of the energy and -sum(z) (0.5: they cannot see it)",
    "minimization.relative_gap_latent_exact": "(E - E_ref) / |E_ref|, route A (exact energy over the particle VAE's z), quenched; median over trained state points",
    "minimization.relative_gap_latent_functional": "the same, route B (learned functional over the voxel VAE's z)",
    "minimization.relative_gap_quench_only": "the same, the MC starts quenched",
    "minimization.relative_gap_grid_descent": "the same, descent of the functional directly on the density",
    "minimization.functional_error_per_particle": "test MAE of the learned functional, |F - U_LJ| / N (epsilon)",
    "minimization.valid_path_fraction_latent": "share of valid configurations along the latent paths (A and B)",
    "minimization.relative_gap_latent_exact_heldout": "route A's gap at held-out and transfer gammas (median)",
    "minimization.relative_gap_latent_functional_heldout": "route B's gap at held-out and transfer gammas (median)",
    "minimization.relative_gap_quench_only_heldout": "quench-only's gap at held-out and transfer gammas (median)",
    "minimization.relative_gap_grid_descent_heldout": "direct density descent's gap at held-out and transfer gammas",
    "minimization.functional_error_per_particle_heldout": "the functional's test MAE at the held-out gamma, as trained (epsilon)",
    "minimization.valid_path_fraction_latent_heldout": "valid share along the latent paths at held-out and transfer gammas",
}


def write_summary(path: str | Path, summary: Mapping[str, float], provenance_record: Mapping[str, Any]) -> Path:
    """Write results/summary.json atomically: the flat ``{key: float}`` summary, NaN (a quantity that does not
    apply) written as ``null`` as in every other JSON file of the pipeline (bare ``NaN`` is not JSON: jq < 1.7 and
    strict parsers refuse it), plus ``file_format`` and ``provenance``."""
    values = {}
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"summary key {key} = {value!r}: expected a number (NaN where it does not apply)")
        values[key] = float(value)
    record = _jsonable({**values, "file_format": SUMMARY_FORMAT, "provenance": provenance_record})
    text = json.dumps(record, sort_keys=True, indent=2, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_summary(path: str | Path) -> dict:
    """Read results/summary.json: the numbers as floats (``null`` read as NaN, and so is the bare ``NaN`` that
    files written before vaepipe 0.1's operations work hold), with ``provenance`` and ``file_format``."""
    data = read_json(path)
    if data.get("file_format") != SUMMARY_FORMAT:
        raise ValueError(f"{path} is not a vaepipe summary (file_format {data.get('file_format')!r}, expected "
                         f"{SUMMARY_FORMAT!r}); produce it with the workflow's summary rule")
    return {key: (math.nan if value is None else value) if key not in ("provenance", "file_format") else value
            for key, value in data.items()}


def write_summary_table(path: str | Path, summary: Mapping[str, float],
                        descriptions: Mapping[str, str] | None = None) -> Path:
    """The summary as a tab-separated table (quantity, value, meaning) for the report, atomically."""
    if descriptions is None:
        descriptions = SUMMARY_DESCRIPTIONS
    lines = ["quantity\tvalue\tmeaning"]
    for key, value in summary.items():
        lines.append(f"{key}\t{float(value):.4g}\t{descriptions.get(key, '')}")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)
