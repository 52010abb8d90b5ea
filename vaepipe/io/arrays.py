"""Reconstruction and generation files, ``results/reconstruction/test.h5`` and
``results/generation/generated.h5``: named float arrays plus attributes (see README.md, "Output files")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import _attr_value, _jsonable, _open_hdf5, _scalar, _version, atomic_path


#: File formats of the array bundles written by the reconstruction and generation stages.
RECONSTRUCTION_FORMAT = "vaepipe-reconstruction-1"


GENERATED_FORMAT = "vaepipe-generated-2"

#: Inherent structures of Monte Carlo samples (results/quench/{state}.h5).
QUENCH_FORMAT = "vaepipe-quench-1"

#: Reference minima of one state point (results/reference/{state}.h5).
REFERENCE_FORMAT = "vaepipe-reference-1"

#: Best configurations and descent paths of the minimization stage (results/minimization/{state}.h5).
MINIMIZATION_FORMAT = "vaepipe-minimization-1"


def write_arrays(path: str | Path, arrays: Mapping[str, Any], attrs: Mapping[str, Any], file_format: str,
                 same_rows: bool = True) -> Path:
    """Write named arrays (each with the same first dimension S, one row per configuration, unless
    ``same_rows`` is False) and attributes to an HDF5 file, atomically and byte-reproducibly (no timestamps).
    Strings become UTF-8 string datasets; dicts and lists in ``attrs`` are stored as JSON text."""
    import h5py

    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    sizes = {name: value.shape[0] for name, value in arrays.items() if value.ndim}
    if same_rows and len(set(sizes.values())) > 1:
        raise ValueError(f"arrays of {path} must share their first dimension (one row per configuration), got "
                         f"{sizes}")
    def attr(name, value):
        if isinstance(value, (Mapping, list, tuple)):
            return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))
        return "" if value is None else _attr_value(name, value, None)

    values = {name: attr(name, value) for name, value in sorted(dict(attrs).items())}
    values.setdefault("vaepipe_version", _version())
    values["file_format"] = file_format
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            for name in sorted(arrays):
                data = arrays[name]
                if data.dtype.kind in "OU":
                    data = np.asarray([str(v) for v in data.ravel()], dtype=h5py.string_dtype()).reshape(data.shape)
                f.create_dataset(name, data=data, track_times=False)
            for name, value in values.items():
                f.attrs[name] = value
    return Path(path)


def read_arrays(path: str | Path, file_format: str) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file of :func:`write_arrays`: (arrays, attrs). ValueError when it holds another format."""
    path = Path(path)
    with _open_hdf5(path, "array file", "the workflow") as f:
        attrs = {name: _scalar(f.attrs[name]) for name in f.attrs}
        if attrs.get("file_format") != file_format:
            raise ValueError(f"{path} has file_format {attrs.get('file_format')!r}, expected {file_format!r}")
        arrays = {}
        for name in f:
            data = f[name][()]
            if f[name].dtype.kind == "O":
                data = np.asarray([v.decode("utf-8") if isinstance(v, bytes) else v for v in data.ravel()],
                                  dtype=object).reshape(data.shape)
            arrays[name] = data
    return arrays, attrs
