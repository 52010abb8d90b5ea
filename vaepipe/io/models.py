"""Model, ``results/models/{representation}/vae.keras``: a Keras 3 archive whose ``metadata.json`` carries the
provenance under ``"vaepipe"`` (no save date). Next to it: ``history.csv`` (one row per epoch) and
``metrics.json`` (test-split metrics, see :func:`vaepipe.training.evaluate`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, Mapping

from vaepipe.io._files import _jsonable, atomic_path


MODEL_FORMAT = "vaepipe-model-1"


_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _canonical_shared_ids(config_json: bytes) -> bytes:
    """Keras marks objects shared between layers with ``"shared_object_id": id(obj)``, a memory address that
    differs from run to run; number them 1, 2, ... in order of first appearance instead (same sharing)."""
    import re

    numbers: dict[str, str] = {}

    def renumber(match):
        number = numbers.setdefault(match.group(2), str(len(numbers) + 1))
        return match.group(1) + number

    text = re.sub(r'("shared_object_id": )(\d+)', renumber, config_json.decode("utf-8"))
    return text.encode("utf-8")


def write_model(path: str | Path, model, provenance_record: Mapping[str, Any] | None = None) -> Path:
    """Save a Keras model as a ``.keras`` file, atomically and byte-reproducibly.

    Keras stamps the save date into ``metadata.json`` and the zip entries, and memory addresses into
    ``config.json``; all are replaced (fixed entry dates, no ``date_saved``, shared objects numbered in order),
    and the provenance record goes into ``metadata.json`` under ``"vaepipe"``.
    ``keras.models.load_model`` reads the file as usual once ``vaepipe.models`` is imported.
    """
    import zipfile

    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model file {path}: expected a .keras file name, got {path.suffix!r}")
    with atomic_path(path) as tmp:
        raw = tmp.with_name(tmp.name + ".keras")
        try:
            model.save(raw)
            with zipfile.ZipFile(raw) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
                for info in src.infolist():
                    data = src.read(info.filename)
                    if info.filename == "config.json":
                        data = _canonical_shared_ids(data)
                    if info.filename == "metadata.json":
                        meta = json.loads(data)
                        meta.pop("date_saved", None)
                        meta["vaepipe"] = _jsonable({"file_format": MODEL_FORMAT, **dict(provenance_record or {})})
                        data = json.dumps(meta, sort_keys=True, indent=2).encode("utf-8")
                    entry = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
                    entry.compress_type = zipfile.ZIP_DEFLATED
                    entry.external_attr = 0o644 << 16
                    dst.writestr(entry, data)
        finally:
            with contextlib.suppress(FileNotFoundError):
                raw.unlink()
    return path


def read_model(path: str | Path):
    """Load a ``.keras`` model written by :func:`write_model` (imports Keras and vaepipe's custom layers)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist; produce it with the workflow's train_vae rule")
    import keras

    import vaepipe.models  # noqa: F401  (registers the custom layers with Keras)

    return keras.models.load_model(path, compile=False)


def model_provenance(path: str | Path) -> dict:
    """The ``"vaepipe"`` record of a model file's metadata (without loading the model)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("metadata.json")).get("vaepipe", {})


def write_table_csv(path: str | Path, table) -> Path:
    """Write a DataFrame as CSV (no index, fixed float format), atomically."""
    text = table.to_csv(index=False, float_format="%.8g", lineterminator="\n")
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
