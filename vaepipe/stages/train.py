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

__all__ = ["train_vae", "encode", "latent_scan"]


def train_vae(input, params: Mapping[str, Any], wildcards, threads: int = 1, progress: bool = True) -> StageResult:
    """Rule ``train_vae``: the VAE of one representation (wildcard ``representation``) on the ``features`` of every
    trained state point. Outputs ``model`` (.keras), ``history`` (CSV, one row per epoch), ``metrics`` (JSON),
    ``loss`` and ``reconstructions`` (figures).

    params : the rule's params: ``seed``, ``split`` {validation_fraction, test_fraction}, ``deterministic`` and
        ``model`` (the representation's config section).
    """
    representation = wildcard(wildcards, "representation")
    training.configure_threads(threads)
    # Features stay on disk until read: a split, a slice or a streamed window at a time (vae.stream).
    data = load_training_data(paths(input, "features"), params["seed"], **params["split"], lazy=True)
    if data.representation != representation:
        raise ValueError(f"feature files hold {data.representation!r} features, expected {representation!r}")
    seed = derive_seed(params["seed"], "train", representation)
    counts = data.labels["split"].value_counts()
    if progress:
        print(f"{representation}: {len(data.labels)} samples of {data.labels['state'].nunique()} state points, "
              f"features {data.features.shape[1:]}; train {counts.get('train', 0)}, validation "
              f"{counts.get('validation', 0)}, test {counts.get('test', 0)}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    result = training.train_vae(data, params["model"], seed, deterministic=params["deterministic"], progress=progress,
                                stream=params.get("stream", "auto"))
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
    data = load_training_data(paths(input, "features"), params["seed"], **params["split"], lazy=True)
    model = read_model(path(input, "model"))
    z_mean, z_log_var = training.encode(model, data.features)
    print(f"{representation}: encoded {len(data.labels)} samples into {z_mean.shape[1]} dimensions", file=sys.stderr)

    def write(target, prov):
        write_latent(target, data.labels, z_mean, z_log_var, {"representation": representation, "provenance": prov,
                                                               "profile_dim": int(getattr(model, "profile_dim", 0))})

    return StageResult(outputs={"latent": write}, values={"labels": data.labels, "z_mean": z_mean,
                                                          "z_log_var": z_log_var})


def latent_scan(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``latent_scan``: reconstruction quality against latent size for the particle VAE (wildcard
    ``representation``, a particles representation). Outputs ``metrics`` and ``figure``.

    Two curves of the median permutation-aware RMSD of the test configurations (sigma): the linear code (the
    leading principal components of the height-sorted training configurations, with their mirror images) at
    every size from 1 to N dim, which costs nothing; and the trained VAE at the sizes ``scan.sizes`` (each a full
    training with the model's section, ``latent_dim`` replaced; none on the demo, see README) and at the
    configured size (input ``metrics``, the trained model's test metrics).

    input : ``features`` (every trained state point) and ``metrics``. params : ``seed``, ``split``,
    ``deterministic``, ``model`` (the representation's section) and ``scan`` {sizes}.
    """
    import numpy as np

    from vaepipe.io._files import read_json
    from vaepipe.representations.particles import particle_pca
    from vaepipe.plots.generation import latent_size_figure
    from vaepipe.structure import matched_rmsd

    representation = wildcard(wildcards, "representation")
    data = load_training_data(paths(input, "features"), params["seed"], **params["split"])
    attrs = data.attrs
    n, dim, box = int(attrs["n_particles"]), int(attrs["dim"]), float(attrs["box_length"])
    train = data.split("train").astype(np.float64).reshape(-1, n, dim) * box
    test = data.split("test").astype(np.float64).reshape(-1, n, dim) * box
    mean, components, _ = particle_pca(train, n * dim, box, mirror=True)
    order = np.argsort(test[..., -1], axis=1, kind="stable")
    flat = np.take_along_axis(test, order[..., None], axis=1).reshape(len(test), -1)
    coefficients = (flat - mean) @ components.T
    linear = {}
    for k in range(1, components.shape[0] + 1):
        decoded = (mean + coefficients[:, :k] @ components[:k]).reshape(-1, n, dim)
        linear[k] = float(np.median(matched_rmsd(np.clip(decoded, 0.0, box), test)))
    chosen = int(params["model"]["latent_dim"])
    trained = {chosen: float(read_json(path(input, "metrics"))["recon_error_median"])}
    if params["scan"]["sizes"]:
        training.configure_threads(threads)
    for size in sorted(int(s) for s in params["scan"]["sizes"]):
        section = {**params["model"], "latent_dim": size,
                   "profile_dim": min(int(params["model"].get("profile_dim", 0)), size - 1)}
        seed = derive_seed(params["seed"], "latent_scan", f"{representation}:{size}")
        result = training.train_vae(data, section, seed, deterministic=params["deterministic"], progress=False)
        decoded = np.asarray(result.model.decoder.predict(result.model.encoder.predict(
            data.split("test"), verbose=0)[0], verbose=0), dtype=np.float64).reshape(-1, n, dim) * box
        trained[size] = float(np.median(matched_rmsd(np.clip(decoded, 0.0, box), test)))
        print(f"{representation}: latent {size}: median test RMSD {trained[size]:.3f} sigma (linear code "
              f"{linear.get(size, float('nan')):.3f})", file=sys.stderr, flush=True)
    metrics = {"representation": representation, "degrees_of_freedom": n * dim, "configured_latent_dim": chosen,
               "linear_code_rmsd_median": {str(k): v for k, v in linear.items()},
               "vae_rmsd_median": {str(k): v for k, v in sorted(trained.items())}}
    plot = latent_size_figure(linear, trained, chosen, n * dim, representation, ceiling=0.15)
    return StageResult(outputs={"metrics": json_record(metrics), "figure": figure(plot)},
                       seed=derive_seed(params["seed"], "latent_scan", representation), values={"metrics": metrics})
