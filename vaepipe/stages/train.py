"""Stages of workflow/rules/train.smk: train one representation's VAE, and encode every sample with it."""

from __future__ import annotations

import sys
import time
from typing import Any, Mapping

from vaepipe import plots, training
from vaepipe.datasets import SPLITS, load_training_data
from vaepipe.io.latent import write_latent
from vaepipe.io.models import read_model, write_model, write_table_csv
from vaepipe.seeds import derive_seed, seed_int
from vaepipe.stages import StageResult, figure, json_record, path, paths, wildcard

__all__ = ["train_vae", "encode"]


def train_vae(input, params: Mapping[str, Any], wildcards, threads: int = 1, progress: bool = True) -> StageResult:
    """Rule ``train_vae``: the VAE of one representation (wildcard ``representation``) on the ``features`` of every
    trained state point. Outputs ``model`` (.keras), ``history`` (CSV, one row per epoch), ``metrics`` (JSON),
    ``loss`` and ``reconstructions`` (figures).

    params : the rule's params: ``seed``, ``split`` {validation_fraction, test_fraction}, ``deterministic`` and
        ``model`` (the representation's config section).
    """
    representation = wildcard(wildcards, "representation")
    training.configure_threads(threads)
    data = load_training_data(paths(input, "features"), params["seed"], **params["split"])
    if data.representation != representation:
        raise ValueError(f"feature files hold {data.representation!r} features, expected {representation!r}")
    seed = derive_seed(params["seed"], "train", representation)
    counts = data.labels["split"].value_counts()
    if progress:
        print(f"{representation}: {len(data.labels)} samples of {data.labels['state'].nunique()} state points, "
              f"features {data.features.shape[1:]}; train {counts.get('train', 0)}, validation "
              f"{counts.get('validation', 0)}, test {counts.get('test', 0)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = training.train_vae(data, params["model"], seed, deterministic=params["deterministic"], progress=progress)
    seconds = time.perf_counter() - start
    metrics = training.evaluate(result.model, data, "test", seed=seed_int(derive_seed(params["seed"], "evaluate",
                                                                               representation)))
    metrics.update({
        "representation": representation,
        "model": result.model.name,
        "num_parameters": int(result.model.count_params()),
        "epochs_run": result.stopped_epoch,
        "best_epoch": result.best_epoch,
        "split_sizes": {name: int(counts.get(name, 0)) for name in SPLITS},
    })
    if progress:
        # Speed depends on the machine, so it goes to the log, not into the (reproducible) metrics file.
        print(f"{representation}: {result.stopped_epoch} epochs in {seconds:.1f} s, "
              f"{counts.get('train', 0) * result.stopped_epoch / seconds:.0f} training samples/s",
              file=sys.stderr, flush=True)
        print(f"{representation}: test {metrics['vae']}; mean-predictor baseline {metrics['baseline']}; "
              f"ratio {metrics['error_ratio']:.3f}; active units {metrics['active_units']}/{metrics['latent_dim']}",
              file=sys.stderr, flush=True)
    title = (f"{result.model.name}: beta {params['model']['beta']:g}, latent_dim {params['model']['latent_dim']}, "
             f"best epoch {result.best_epoch}; test error / mean predictor = {metrics['error_ratio']:.2f}")
    loss_plot = plots.loss_figure(result.history, title)
    examples = training.reconstruction_figure(result.model, data)
    return StageResult(
        outputs={"model": lambda target, prov: write_model(target, result.model, prov),
                 "history": lambda target, prov: write_table_csv(target, result.history),
                 "metrics": json_record(metrics), "loss": figure(loss_plot), "reconstructions": figure(examples)},
        seed=seed, values={"model": result.model, "history": result.history, "metrics": metrics})


def encode(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``encode``: latent means and log-variances of every sample of one representation (wildcard
    ``representation``; input ``model`` and ``features``), with their labels: output ``latent`` (Parquet)."""
    representation = wildcard(wildcards, "representation")
    training.configure_threads(threads)
    data = load_training_data(paths(input, "features"), params["seed"], **params["split"])
    model = read_model(path(input, "model"))
    z_mean, z_log_var = training.encode(model, data.features)
    print(f"{representation}: encoded {len(data.labels)} samples into {z_mean.shape[1]} dimensions", file=sys.stderr)

    def write(target, prov):
        write_latent(target, data.labels, z_mean, z_log_var, {"representation": representation, "provenance": prov,
                                                               "profile_dim": int(getattr(model, "profile_dim", 0))})

    return StageResult(outputs={"latent": write}, values={"labels": data.labels, "z_mean": z_mean,
                                                          "z_log_var": z_log_var})
