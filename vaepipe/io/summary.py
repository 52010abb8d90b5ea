"""``results/summary.json``: the flat headline numbers of a run (NaN where a quantity does not apply), and its
tab-separated copy for the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import _jsonable, atomic_path, read_json


SUMMARY_FORMAT = "vaepipe-summary-1"

#: The keys every results/summary.json holds (floats; NaN where a quantity does not apply).
SUMMARY_KEYS = (
    "vae.voxel.recon_error", "vae.voxel.baseline_error", "vae.distance.recon_error", "vae.distance.baseline_error",
    "reconstruction.rmsd_median", "reconstruction.rmsd_anchored_median",
    "energy.abs_error_per_particle_median", "energy.unphysical_fraction", "energy.wasserstein_over_std",
    "latent.gamma_knn_accuracy", "latent.gamma_chance", "latent.gamma_silhouette",
    "anomaly.auc_overlap", "anomaly.auc_uniform", "anomaly.auc_heldout_gamma",
)


#: What each summary key means, for the report's table (units in the README).
SUMMARY_DESCRIPTIONS = {
    "vae.voxel.recon_error": "voxel VAE, test density error sum|rho_hat - rho| / sum rho",
    "vae.voxel.baseline_error": "the same for the mean training grid",
    "vae.distance.recon_error": "distance VAE, test MAE of particle distances (sigma)",
    "vae.distance.baseline_error": "the same for the mean training matrix (sigma)",
    "reconstruction.rmsd_median": "median RMSD of Gram (MDS) reconstructions aligned onto the originals (sigma)",
    "reconstruction.rmsd_anchored_median": "median RMSD of anchored reconstructions, placed without the original "
                                           "(sigma)",
    "energy.abs_error_per_particle_median": "median |U_rec - U_MC| / N of the anchored reconstructions (epsilon)",
    "energy.unphysical_fraction": "reconstructions with a pair closer than min_distance or U > 0",
    "energy.wasserstein_over_std": "W1 of generated U_LJ/N to the Monte Carlo one, in Monte Carlo std",
    "latent.gamma_knn_accuracy": "cross-validated k-NN accuracy of gamma from the latent means",
    "latent.gamma_chance": "share of the most common gamma (chance level of that accuracy)",
    "latent.gamma_silhouette": "silhouette score of the latent means with gamma as the label",
    "anomaly.auc_overlap": "ROC AUC against test configurations with one overlapping pair",
    "anomaly.auc_uniform": "ROC AUC against uniformly random configurations",
    "anomaly.auc_heldout_gamma": "ROC AUC against samples of a gamma held out of training",
}


def write_summary(path: str | Path, summary: Mapping[str, float], provenance_record: Mapping[str, Any]) -> Path:
    """Write results/summary.json atomically: the flat ``{key: float}`` summary, NaN written as ``NaN`` (what
    Python's json, pandas and jq >= 1.7 read back as NaN), plus ``file_format`` and ``provenance``."""
    values = {}
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"summary key {key} = {value!r}: expected a number (NaN where it does not apply)")
        values[key] = float(value)
    record = {**values, "file_format": SUMMARY_FORMAT, "provenance": _jsonable(provenance_record)}
    text = json.dumps(record, sort_keys=True, indent=2, allow_nan=True) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_summary(path: str | Path) -> dict:
    """Read results/summary.json: the numbers as floats (NaN included), with ``provenance`` and ``file_format``."""
    data = read_json(path)
    if data.get("file_format") != SUMMARY_FORMAT:
        raise ValueError(f"{path} is not a vaepipe summary (file_format {data.get('file_format')!r}, expected "
                         f"{SUMMARY_FORMAT!r}); produce it with the workflow's summary rule")
    return data


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
