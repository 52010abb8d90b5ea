"""Latent file, ``results/latent/{representation}.parquet``: one row per sample, columns :data:`LATENT_LABELS`
(state, gamma, temperature, energy, chain, sample_index, split) then ``z_mean_0..`` and ``z_log_var_0..``
(float32); the schema metadata ``vaepipe`` holds the provenance as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import _version, atomic_path, dumps


LATENT_FORMAT = "vaepipe-latent-1"


#: Label columns of a latent file, before the z_mean_* and z_log_var_* columns.
LATENT_LABELS = ("state", "gamma", "temperature", "energy", "chain", "sample_index", "split")


def write_latent(path: str | Path, labels, z_mean, z_log_var, attrs: Mapping[str, Any]) -> Path:
    """Write latent means and log-variances with their labels as Parquet, atomically.

    Columns: :data:`LATENT_LABELS`, then ``z_mean_0 .. z_mean_{k-1}`` and ``z_log_var_0 ..`` (float32).
    ``attrs`` (representation, provenance, ...) go into the Parquet schema metadata under ``b"vaepipe"``.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    z_mean = np.asarray(z_mean, dtype=np.float32)
    z_log_var = np.asarray(z_log_var, dtype=np.float32)
    if z_mean.ndim != 2 or z_mean.shape != z_log_var.shape or z_mean.shape[0] != len(labels):
        raise ValueError(f"z_mean {z_mean.shape} and z_log_var {z_log_var.shape} must be (S, latent_dim) with "
                         f"S = {len(labels)} rows of labels")
    missing = [c for c in LATENT_LABELS if c not in labels]
    if missing:
        raise ValueError(f"latent labels lack the column(s) {missing}")
    frame = labels.loc[:, list(LATENT_LABELS)].reset_index(drop=True).copy()
    latent = {f"z_mean_{i}": z_mean[:, i] for i in range(z_mean.shape[1])}
    latent.update({f"z_log_var_{i}": z_log_var[:, i] for i in range(z_log_var.shape[1])})
    frame = pd.concat([frame, pd.DataFrame(latent)], axis=1)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {"file_format": LATENT_FORMAT, "vaepipe_version": _version(), **dict(attrs)}
    table = table.replace_schema_metadata({b"vaepipe": dumps(meta).encode("utf-8")})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def read_latent(path: str | Path):
    """Read a latent file: (DataFrame, attrs dict). ValueError when columns are missing."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"latent file {path} does not exist; produce it with the workflow's encode rule")
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(b"vaepipe")
    attrs = json.loads(raw) if raw else {}
    frame = table.to_pandas()
    missing = [c for c in LATENT_LABELS if c not in frame] + ([] if "z_mean_0" in frame else ["z_mean_0"])
    if missing or attrs.get("file_format") != LATENT_FORMAT:
        raise ValueError(f"{path} is not a vaepipe latent file: missing columns {missing} or file_format "
                         f"{attrs.get('file_format')!r} (expected {LATENT_FORMAT!r})")
    return frame, attrs
