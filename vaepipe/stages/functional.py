"""Stages of workflow/rules/functional.smk: the learned energy functional (Costa, Scriva & Pilati's deep-learning
functional, vaepipe.models.functional) and its transfer to a gravity it never saw.

    train_functional    F_theta(n) -> U_LJ, a Conv3D network on voxel densities (normalize "none": sum N), trained
                        on the MC samples and quenched structures of the trained state points
    functional_transfer sample efficiency: fine-tuning F_theta on a new state point against training from scratch

Energies in eps, errors per particle; gravity is never learned (computed exactly from the grid).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping

import numpy as np

from vaepipe.io.arrays import QUENCH_FORMAT, read_arrays
from vaepipe.io.samples import read_samples
from vaepipe.seeds import derive_seed, seed_int
from vaepipe.stages import StageResult, figure, json_record, path, paths
from vaepipe.stages.quench import exact_energy, sample_splits, system_of

__all__ = ["train_functional", "functional_transfer", "densities", "read_functional", "setup_tensorflow"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_tensorflow(threads: int) -> None:
    """Thread pools, and TensorFlow's op determinism: the same config and seed give the same files."""
    from vaepipe import training

    training.configure_threads(threads)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def read_functional(path_):
    """A model file of train_functional (or a VAE's): registers the functional's layer, then loads it."""
    import vaepipe.models.functional  # noqa: F401  (registers the functional's layer)
    from vaepipe.io.models import read_model

    return read_model(path_)


# --------------------------------------------------------------------------- the learned functional


def densities(grids: np.ndarray, n_particles: int) -> np.ndarray:
    """Voxel features (any normalisation) -> densities summing to N (normalize "none")."""
    grids = np.asarray(grids, dtype=np.float32)
    sums = grids.reshape(len(grids), -1).sum(axis=1)
    return grids * (float(n_particles) / sums).reshape((-1,) + (1,) * (grids.ndim - 1)).astype(np.float32)


def _functional_data(feature_paths, sample_paths, quench_paths, seed, split):
    """(densities, U_LJ, split, kind) of MC samples (from the voxel features files) and of their quenched
    structures (featurized like them), every trained state point."""
    from vaepipe.features import voxel_grid
    from vaepipe.io.features import read_features

    grids, energies, splits, kinds, attrs = [], [], [], [], None
    for fpath, spath, qpath in zip(feature_paths, sample_paths, quench_paths):
        feats = read_features(fpath)
        samples = read_samples(spath)
        attrs = feats.attrs
        system = system_of(samples.attrs)
        n = int(samples.attrs["n_particles"])
        rows = np.asarray(feats.sample_index)
        grids.append(densities(feats.features, n))
        energies.append(exact_energy(samples.positions[rows], 0.0, system))
        splits.append(sample_splits(samples, seed, split)[rows])
        kinds.append(np.full(len(rows), "mc", dtype=object))
        quenched, _ = read_arrays(qpath, QUENCH_FORMAT)
        grids.append(voxel_grid(quenched["positions"], system["box_length"], float(attrs["voxel_size"]),
                                method=str(attrs["method"]), width=voxel_width(attrs), normalize="none",
                                boundary=system["boundary"]).astype(np.float32))
        energies.append(exact_energy(quenched["positions"], 0.0, system))
        splits.append(np.asarray(quenched["split"]).astype(object))
        kinds.append(np.full(len(quenched["energy"]), "quenched", dtype=object))
    return (np.concatenate(grids), np.concatenate(energies), np.concatenate(splits), np.concatenate(kinds),
            dict(attrs))


def voxel_width(attrs):
    width = attrs.get("width")
    return None if width is None or (isinstance(width, float) and math.isnan(width)) else float(width)


def _functional_errors(model, grids, energies, n_particles) -> dict:
    pred = np.asarray(model.predict(grids, batch_size=256, verbose=0), dtype=np.float64)
    err = (pred - energies) / n_particles
    return {"mae_per_particle": float(np.mean(np.abs(err))), "rmse_per_particle": float(np.sqrt(np.mean(err ** 2))),
            "std_per_particle": float(np.std(energies / n_particles)), "num": int(len(err))}


def train_functional(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``train_functional``: F_theta on the densities of the trained state points' MC samples and quenched
    structures (train split), early stopping on the validation split. Outputs ``model`` (.keras), ``metrics``
    (test errors per particle, eps: MC and quenched apart and together, against the exact U_LJ), ``parity``
    (figure)."""
    from vaepipe.io.models import write_model
    from vaepipe.models.functional import train_energy_functional
    from vaepipe.plots import minimization as plots

    setup_tensorflow(threads)
    grids, energies, split, kind, attrs = _functional_data(paths(input, "features"), paths(input, "samples"),
                                                           paths(input, "quench"), params["seed"], params["split"])
    n = int(round(float(grids[0].sum())))
    seed = derive_seed(params["seed"], "train_functional")
    pick = {name: split == name for name in ("train", "validation", "test")}
    _log(f"functional: {len(grids)} densities {grids.shape[1:]} (MC {int(np.sum(kind == 'mc'))}, quenched "
         f"{int(np.sum(kind == 'quenched'))}); train {int(pick['train'].sum())}, validation "
         f"{int(pick['validation'].sum())}, test {int(pick['test'].sum())}")
    model, history = train_energy_functional(
        (grids[pick["train"]], energies[pick["train"]]), (grids[pick["validation"]], energies[pick["validation"]]),
        params["functional"], seed_int(seed), progress=lambda r: _log(f"functional: {r}"))
    test = pick["test"]
    metrics = {"test": _functional_errors(model, grids[test], energies[test], n),
               "test_mc": _functional_errors(model, grids[test & (kind == "mc")], energies[test & (kind == "mc")], n),
               "test_quenched": _functional_errors(model, grids[test & (kind == "quenched")],
                                                   energies[test & (kind == "quenched")], n),
               "epochs_run": len(history), "history": history, "num_parameters": int(model.count_params()),
               "grid_shape": list(grids.shape[1:]), "n_particles": n}
    _log(f"functional: test error per particle {metrics['test']['mae_per_particle']:.4f} eps (MAE), RMSE "
         f"{metrics['test']['rmse_per_particle']:.4f}, std of U/N {metrics['test']['std_per_particle']:.4f}")
    pred = np.asarray(model.predict(grids[test], batch_size=256, verbose=0), dtype=np.float64)
    fig = plots.parity_figure(energies[test] / n, pred / n, kind[test])
    return StageResult(outputs={"model": lambda target, prov: write_model(target, model, prov),
                                "metrics": json_record(metrics), "parity": figure(fig)},
                       seed=seed, values={"metrics": metrics, "model": model})


# --------------------------------------------------------------------------- transfer: sample efficiency


def functional_transfer(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``functional_transfer``: the functional at a state point it never saw (the held-out gammas' MC
    samples and quenched structures): its test error as trained, then fine-tuned on 10 %, 30 %, 100 % of that
    state point's training samples, against a new functional trained from scratch on the same samples.
    Outputs ``metrics`` (JSON) and ``figure`` (the sample-efficiency curve)."""
    from vaepipe.models.functional import train_energy_functional
    from vaepipe.plots import minimization as plots

    setup_tensorflow(threads)
    grids, energies, split, kind, _ = _functional_data(paths(input, "features"), paths(input, "samples"),
                                                       paths(input, "quench"), params["seed"], params["split"])
    n = int(round(float(grids[0].sum())))
    test, val = split == "test", split == "validation"
    train_rows = np.flatnonzero(split == "train")
    base = read_functional(path(input, "functional"))
    settings = params["transfer"]
    rng = np.random.default_rng(derive_seed(params["seed"], "functional_transfer"))
    order = rng.permutation(train_rows)
    as_trained = _functional_errors(base, grids[test], energies[test], n)
    _log(f"transfer: functional as trained, test error per particle {as_trained['mae_per_particle']:.4f} eps")
    rows_out = []
    for fraction in settings["fractions"]:
        use = order[:max(1, int(round(float(fraction) * len(order))))]
        for mode in ("fine_tune", "scratch"):
            # Fine-tuning starts from trained weights: a smaller step keeps what they know (transfer.learning_rate).
            rate = settings["learning_rate"] if mode == "fine_tune" else params["functional"]["learning_rate"]
            tuned = {**params["functional"], "epochs": int(settings["epochs"]), "learning_rate": float(rate)}
            fitted, _ = train_energy_functional(
                (grids[use], energies[use]), (grids[val], energies[val]), tuned,
                seed_int(derive_seed(params["seed"], "functional_transfer", f"{mode}:{fraction}")),
                model=read_functional(path(input, "functional")) if mode == "fine_tune" else None)
            errors = _functional_errors(fitted, grids[test], energies[test], n)
            rows_out.append({"fraction": float(fraction), "num_samples": int(len(use)), "mode": mode, **errors})
            _log(f"transfer: {mode} on {len(use)} samples ({fraction:.0%}): test error per particle "
                 f"{errors['mae_per_particle']:.4f} eps")
    metrics = {"as_trained": as_trained, "curve": rows_out, "epochs": int(settings["epochs"])}
    return StageResult(outputs={"metrics": json_record(metrics),
                                "figure": figure(plots.transfer_figure(as_trained, rows_out))},
                       values={"metrics": metrics})
