"""File layouts of vaepipe: the only package that reads or writes result files. One module a file kind:

    samples      results/samples/{state}.h5 (contract) and results/preliminary/{state}.json
    checkpoints  results/checkpoints/sample/{state}.h5, the resumable state of a sample job
    features     results/features/{representation}/{state}.h5
    models       results/models/{representation}/vae.keras (byte-reproducible) and history tables
    latent       results/latent/{representation}.parquet
    arrays       results/reconstruction/test.h5, results/generation/generated.h5
    summary      results/summary.json and its report table
    export       results/export/**.extxyz: every kind of configuration for OVITO, VMD and ASE
    figures      PNG and PDF figures with their provenance
    records      the provenance record every file carries: parameters, seed, version, git commit
    _files       atomic writes and canonical JSON, which all of them use

Each module's docstring gives its layout. Every name is importable from ``vaepipe.io`` itself; this package
loads the module that defines a name on first use (PEP 562), so that importing one file kind's module
(``from vaepipe.io import samples``) loads no other, and the workflow's code digests, which follow imports
(vaepipe/_build.py), see exactly the modules a stage uses. ``io`` imports no stage and no plotting code (figures
arrive as matplotlib figures).

Every write is atomic: the file is written under a temporary name in the destination directory, flushed to
disk, and renamed over the destination, so a failed or interrupted job never leaves a file that looks complete.
Writes are byte-reproducible: the same content gives the same bytes (no HDF5 timestamps, sorted attributes and
JSON keys, no dates in figure metadata).
"""

from __future__ import annotations

import importlib

#: Every public name, and the module of vaepipe.io that defines it.
EXPORTS: dict[str, str] = {
    "_jsonable": "_files",
    "atomic_path": "_files",
    "dumps": "_files",
    "write_json": "_files",
    "read_json": "_files",
    "SAMPLES_FORMAT": "samples",
    "PRELIMINARY_FORMAT": "samples",
    "SAMPLES_ATTRS": "samples",
    "PRELIMINARY_KEYS": "samples",
    "Samples": "samples",
    "write_samples": "samples",
    "read_samples": "samples",
    "write_preliminary": "samples",
    "read_preliminary": "samples",
    "CHECKPOINT_FORMAT": "checkpoints",
    "ChainCheckpoint": "checkpoints",
    "write_checkpoint": "checkpoints",
    "read_checkpoint": "checkpoints",
    "remove_checkpoint": "checkpoints",
    "FEATURES_FORMAT": "features",
    "FEATURES_ATTRS": "features",
    "FEATURES_REPRESENTATION_ATTRS": "features",
    "Features": "features",
    "write_features": "features",
    "read_features": "features",
    "MODEL_FORMAT": "models",
    "write_model": "models",
    "read_model": "models",
    "model_provenance": "models",
    "write_table_csv": "models",
    "LATENT_FORMAT": "latent",
    "LATENT_LABELS": "latent",
    "write_latent": "latent",
    "read_latent": "latent",
    "RECONSTRUCTION_FORMAT": "arrays",
    "GENERATED_FORMAT": "arrays",
    "write_arrays": "arrays",
    "read_arrays": "arrays",
    "SUMMARY_FORMAT": "summary",
    "SUMMARY_KEYS": "summary",
    "SUMMARY_DESCRIPTIONS": "summary",
    "write_summary": "summary",
    "read_summary": "summary",
    "write_summary_table": "summary",
    "EXTXYZ_FORMAT": "export",
    "write_extxyz": "export",
    "read_extxyz": "export",
    "save_figure": "figures",
    "figure_provenance": "figures",
    "git_commit": "records",
    "provenance": "records",
}

__all__ = [name for name in EXPORTS if not name.startswith("_")]


def __getattr__(name: str):
    if name not in EXPORTS:
        raise AttributeError(f"module 'vaepipe.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vaepipe.io.{EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
