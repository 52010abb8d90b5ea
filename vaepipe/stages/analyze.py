"""Stages of workflow/rules/analyze.smk: the latent space against gamma, anomaly detection, and the summary.

- :func:`latent_analysis`: gamma clustering of one representation's latent means.
- :func:`anomaly`: ROC of the VAE's anomaly score against three kinds of anomaly.
- :func:`summary`: ``results/summary.json``, the numbers users read first (:func:`summarize`).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping

import numpy as np

from vaepipe import analysis, plots, representations, training
from vaepipe.datasets import load_test_set, load_training_data
from vaepipe.io._files import read_json
from vaepipe.io.latent import read_latent
from vaepipe.io.models import read_model
from vaepipe.io.summary import SUMMARY_KEYS, write_summary, write_summary_table
from vaepipe.seeds import derive_seed, seed_int
from vaepipe.stages import StageResult, figure, json_record, path, paths

__all__ = ["latent_analysis", "anomaly", "summary", "summarize", "anomaly_scores"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def latent_analysis(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``latent_analysis``: gamma clustering of one representation's latent means (input ``latent``).
    Outputs ``metrics`` and ``figure`` (the PCA plane by gamma).

    params : ``seed`` and ``analysis`` (knn_neighbors, cv_folds).
    """
    latent, attrs = read_latent(path(input, "latent"))
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
    plot = plots.latent_figure(plane.project(z), gamma, plane.explained, stats, representation)
    return StageResult(outputs={"metrics": json_record(metrics), "figure": figure(plot)}, values={"metrics": metrics})


def anomaly_scores(model, representation: str, features: np.ndarray, attrs: Mapping[str, Any],
                   reconstruction_loss: str) -> dict[str, np.ndarray]:
    """Per-sample anomaly scores, higher = more anomalous: ``neg_elbo`` (reconstruction loss of the decoded
    posterior mean plus the KL term, nats, beta = 1) and ``recon_error`` (the representation's headline error)."""
    from vaepipe.models import kl_divergence
    from vaepipe.models import reconstruction_loss as loss_fn

    z_mean, z_log_var = training.encode(model, features)
    decoded = np.asarray(model.decoder.predict(z_mean, batch_size=256, verbose=0))
    recon = np.asarray(loss_fn(features, decoded, reconstruction_loss), dtype=np.float64)
    kl = np.asarray(kl_divergence(z_mean, z_log_var), dtype=np.float64).sum(axis=1)
    errors = training.sample_errors(representation, features, decoded, attrs)
    return {"neg_elbo": recon + kl, "recon_error": errors["recon_error"]}


def anomaly(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``anomaly``: ROC of the anomaly score of one representation's VAE. Outputs ``metrics`` and ``figure``.

    Normal: the test split of the training state points. Anomalies: (i) the same configurations with one pair
    pushed into an overlap (r < overlap_distance[1] sigma); (ii) as many uniformly random configurations;
    (iii) the test split of the held-out gamma's state points (none configured: NaN).
    input : ``model``, ``features`` and ``samples`` (per trained state point), ``heldout`` (features of the
    held-out state points, maybe none).
    params : ``seed``, ``split``, ``reconstruction_loss`` (the model's) and ``analysis`` (anomaly_score,
    overlap_distance).
    """
    training.configure_threads(threads)
    settings = params["analysis"]
    test = load_test_set(paths(input, "features"), paths(input, "samples"), params["seed"], params["split"])
    attrs = test.attrs
    representation = attrs["representation"]
    model = read_model(path(input, "model"))
    rng = np.random.default_rng(derive_seed(params["seed"], "anomaly", representation))
    box, n, dim = float(attrs["box_length"]), int(attrs["n_particles"]), int(attrs["dim"])
    rep = representations.get(representation)
    feature_params = rep.canonical_params(rep.params_from_attrs(attrs))
    boundary = str(attrs.get("boundary", "reflect"))

    def featurize(positions):
        return rep.featurize(np.asarray(positions, dtype=np.float64), box, boundary, feature_params).features

    overlap = analysis.inject_overlap(test.positions, box, rng, distance=tuple(settings["overlap_distance"]))
    uniform = analysis.uniform_configurations(len(test.positions), n, dim, box, rng)
    sets = {"normal": test.features, "overlap": featurize(overlap), "uniform": featurize(uniform)}
    heldout_paths = paths(input, "heldout")
    if heldout_paths:
        # The held-out state points' own test split: configurations the model never saw, at a new gamma.
        heldout = load_training_data(heldout_paths, params["seed"], **params["split"])
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
    plot = plots.roc_figure(curves, representation, settings["anomaly_score"])
    return StageResult(outputs={"metrics": json_record(metrics), "figure": figure(plot)},
                       seed=derive_seed(params["seed"], "anomaly", representation), values={"metrics": metrics})


def summarize(model_metrics: Mapping[str, Mapping], reconstruction: Mapping, generation: Mapping,
              latent: Mapping[str, Mapping], anomaly: Mapping[str, Mapping], headline: str) -> dict:
    """The flat summary: every key of :data:`SUMMARY_KEYS` (float, NaN where it does not apply) plus the
    per-representation latent and anomaly numbers (``latent.{representation}.*``, ``anomaly.{representation}.*``).

    model_metrics, latent, anomaly : {representation: metrics dict}; headline : the representation whose latent
    and anomaly numbers fill the ``latent.*`` and ``anomaly.*`` keys.
    """
    def number(value) -> float:
        return math.nan if value is None else float(value)

    out = {}
    for representation in representations.REPRESENTATIONS:
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


def summary(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``summary``: ``results/summary.json`` (output ``summary``) and its table for the report (``table``).

    input : the ``models``' metrics, ``latent`` and ``anomaly`` metrics (one per trained representation, in
    ``params["representations"]`` order), and ``reconstruction`` and ``generation`` metrics (none without a
    distance VAE).
    """
    names = params["representations"]
    reconstruction, generation = paths(input, "reconstruction"), paths(input, "generation")
    result = summarize(
        model_metrics=dict(zip(names, map(read_json, paths(input, "models")))),
        reconstruction=read_json(reconstruction[0]) if reconstruction else {},
        generation=read_json(generation[0]) if generation else {},
        latent=dict(zip(names, map(read_json, paths(input, "latent")))),
        anomaly=dict(zip(names, map(read_json, paths(input, "anomaly")))),
        headline=params["headline"],
    )
    return StageResult(outputs={"summary": lambda target, prov: write_summary(target, result, prov),
                                "table": lambda target, prov: write_summary_table(target, result)},
                       values={"summary": result})
