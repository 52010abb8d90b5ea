"""The ground floor of :mod:`vaepipe.io`: atomic writes, canonical JSON, and the helpers every file layout
shares (attribute values, HDF5 opening with errors that name the rule, key checks).

Every write is atomic: the file is written under a temporary name in the destination directory, flushed to
disk, and renamed over the destination, so a failed or interrupted job never leaves a file that looks complete.
Writes are byte-reproducible: the same content gives the same bytes (no HDF5 timestamps, sorted attributes and
JSON keys, no dates in figure metadata).

"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np


_FLOAT, _INT, _STR = "float", "int", "str"


def _version() -> str:
    from vaepipe import __version__

    return str(__version__)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files of earlier writes of ``path`` that were killed before they could clean up.

    Only one job at a time writes a given output (Snakemake sees to that), so such a file is never in use.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is synced and renamed to ``path``, else deleted.

    The temporary name starts with a dot and ends in ``.tmp``, so nothing looks like a finished output. A
    temporary file left by an earlier write of the same path that was killed (SIGKILL runs no cleanup) is
    removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; finished files get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _jsonable(obj: Any) -> Any:
    """Plain JSON types; NaN and infinities become None (JSON has no such numbers)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} {obj!r} in JSON; convert it to numbers, strings or lists")


def dumps(obj: Any) -> str:
    """Canonical JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(_jsonable(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as canonical JSON, atomically."""
    text = dumps(obj)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _attr_value(name: str, value: Any, kind: str | None) -> Any:
    if kind == _FLOAT:
        if value is None and name == "cutoff":
            return np.float64(np.nan)
        return np.float64(value)
    if kind == _INT:
        if isinstance(value, (float, np.floating)) and not float(value).is_integer():
            raise ValueError(f"samples attribute {name} must be an integer, got {value!r}")
        return np.int64(value)
    if kind == _STR:
        return str(value)
    # Extra (provenance) attributes: scalars as they are (booleans as int8 0/1, which every HDF5 reader
    # understands), anything structured as compact canonical JSON.
    if isinstance(value, (Mapping, list, tuple)) or value is None:
        return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"), allow_nan=False)
    if isinstance(value, (bool, np.bool_)):
        return np.int8(value)
    if isinstance(value, (int, np.integer)):
        return np.int64(value)
    if isinstance(value, (float, np.floating)):
        return np.float64(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"samples attribute {name}: cannot store {type(value).__name__} {value!r}")


def _scalar(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _open_hdf5(path: Path, what: str, rule: str):
    """Open a result file for reading, with errors that say which rule makes it."""
    import h5py

    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} does not exist; produce it with the workflow's {rule} rule")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file ({exc}); delete it and rerun the {rule} rule") from exc


def _check_keys(path: Any, data: Mapping, keys: Mapping[str, str], what: str) -> None:
    problems = []
    for key, kind in keys.items():
        if key not in data:
            problems.append(f"{key!r} is missing")
            continue
        value = data[key]
        ok = {
            _FLOAT: lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
            _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
            _STR: lambda v: isinstance(v, str),
            "dict": lambda v: isinstance(v, Mapping),
        }[kind](value)
        if not ok:
            problems.append(f"{key!r} = {value!r} is not a {kind}")
    if problems:
        raise ValueError(f"{path} is not a vaepipe {what}: {'; '.join(problems)}")
