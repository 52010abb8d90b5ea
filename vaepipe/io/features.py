"""Features file, ``results/features/{representation}/{state}.h5`` (representation: voxel, distance, coordinates)::

    features      (S, ...)  float32   one sample per chunk, gzip 4 + shuffle; see :class:`Features` for shapes
    energy        (S,)      float64   U / epsilon, copied from the samples file
    chain         (S,)      int64
    sample_index  (S,)      int64     row of each sample in the samples file
    order         (S, N)    int64     distance and coordinates only: particle permutation applied
    anchors       (A, dim)  float64   distance only: anchor points in sigma (A may be 0)
    attrs      representation, state, gamma, temperature, n_particles, box_length, dim, boundary, seed, the
               representation's parameters (voxel_size, num_cells, method, width (NaN without a Gaussian),
               normalize | anchors (JSON), distance_scale | sort_axis) + provenance: file_format, config,
               git_commit, vaepipe_version
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import (
    _STR,
    _attr_value,
    _jsonable,
    _open_hdf5,
    _scalar,
    _version,
    atomic_path,
)
from vaepipe.io.samples import SAMPLES_ATTRS, SAMPLES_FORMAT
from vaepipe.representations import REGISTRY


FEATURES_FORMAT = "vaepipe-features-1"


#: Attributes every features file holds (besides provenance), and their types.
FEATURES_ATTRS: dict[str, str] = {
    "representation": _STR,
    "state": _STR,
    # the state point and system, as in the samples file the features come from
    **{k: SAMPLES_ATTRS[k] for k in ("gamma", "temperature", "n_particles", "box_length", "dim", "boundary", "seed",
                                     "vaepipe_version")},
    "file_format": _STR,
}


#: The parameters each representation adds to the attributes, declared by the representation itself
#: (``file_attrs`` in vaepipe/representations/): name -> {attribute: type}.
FEATURES_REPRESENTATION_ATTRS: dict[str, dict[str, str]] = {name: dict(r.file_attrs) for name, r in REGISTRY.items()}


# Datasets beyond features/energy/chain/sample_index, per representation.
_FEATURES_EXTRAS = {name: tuple(r.extras) for name, r in REGISTRY.items()}


@dataclass(frozen=True)
class Features:
    """Contents of a features file, ``results/features/{representation}/{state}.h5``.

    features : (S, ...) float32, values in [0, 1] (voxel with normalize "none": expected counts); shape
    (S,) + (n,)*dim for voxel, (S, N+A, N+A) for distance, (S, N*dim) for coordinates.
    energy : (S,) float64, U / epsilon.   chain : (S,) int64.   sample_index : (S,) int64, row in the samples file.
    order : (S, N) int64 particle permutation applied (distance, coordinates), else None.
    anchors : (A, dim) float64 anchor points in sigma (distance, A may be 0), else None.
    attrs : every HDF5 attribute as a Python scalar (``width`` is NaN without a Gaussian; ``anchors`` and
    ``config`` are JSON strings).
    """

    features: np.ndarray
    energy: np.ndarray
    chain: np.ndarray
    sample_index: np.ndarray
    order: np.ndarray | None = None
    anchors: np.ndarray | None = None
    attrs: dict = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return int(self.energy.shape[0])

    @property
    def representation(self) -> str:
        return str(self.attrs["representation"])


def _features_shape_problem(representation: str, shape: tuple, attrs: Mapping[str, Any], num_anchors: int) -> str:
    """'' if the per-sample shape fits the representation and attrs, else what is wrong."""
    expected = REGISTRY[representation].file_shape(attrs, num_anchors)
    if tuple(shape) != expected:
        return f"{representation} features of one sample have shape {tuple(shape)}, expected {expected}"
    return ""


def write_features(path: str | Path, representation: str, features, energy, chain, sample_index,
                   attrs: Mapping[str, Any], order=None, anchors=None) -> Path:
    """Write a features file atomically and byte-reproducibly; see :class:`Features` for the layout.

    ``features`` is stored as float32, one sample per chunk, gzip level 4 with the shuffle filter. ``order`` is
    required for "distance" and "coordinates", ``anchors`` for "distance" (shape (A, dim), A may be 0); neither
    is accepted for "voxel". ``attrs`` must hold :data:`FEATURES_ATTRS` (``vaepipe_version`` and ``file_format``
    are filled in) plus the representation's parameters of :data:`FEATURES_REPRESENTATION_ATTRS`; further
    attributes (provenance: ``config``, ``git_commit``, ...) are stored as in :func:`write_samples`.
    """
    if representation not in FEATURES_REPRESENTATION_ATTRS:
        raise ValueError(f"representation {representation!r} is unknown; expected one of "
                         f"{tuple(FEATURES_REPRESENTATION_ATTRS)}")
    features = np.ascontiguousarray(features, dtype=np.float32)
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    chain = np.ascontiguousarray(chain, dtype=np.int64)
    sample_index = np.ascontiguousarray(sample_index, dtype=np.int64)
    attrs = dict(attrs)
    if attrs.setdefault("representation", representation) != representation:
        raise ValueError(f"attrs representation={attrs['representation']!r} disagrees with the argument "
                         f"representation={representation!r}; pass the same one")
    attrs.setdefault("vaepipe_version", _version())
    attrs.setdefault("file_format", FEATURES_FORMAT)
    if representation == "voxel" and attrs.get("width") is None:
        attrs["width"] = math.nan
    kinds = {**FEATURES_ATTRS, **FEATURES_REPRESENTATION_ATTRS[representation]}
    missing = [k for k in kinds if k not in attrs]
    if missing:
        raise ValueError(f"features attrs lack the attribute(s) {missing}; pass them in attrs")
    if features.ndim < 2:
        raise ValueError(f"features must have shape (S, ...), one row per sample, got {features.shape}")
    num = features.shape[0]
    for name, arr in (("energy", energy), ("chain", chain), ("sample_index", sample_index)):
        if arr.shape != (num,):
            raise ValueError(f"{name} must have shape (S,) = ({num},) to match features {features.shape}, got "
                             f"{arr.shape}")
    n, dim = int(attrs["n_particles"]), int(attrs["dim"])
    extras = _FEATURES_EXTRAS[representation]
    datasets = {"features": features, "energy": energy, "chain": chain, "sample_index": sample_index}
    for name, value, shape in (("order", order, (num, n)), ("anchors", anchors, None)):
        if name not in extras:
            if value is not None:
                raise ValueError(f"{name} is not part of a {representation} features file; pass {name}=None")
            continue
        if value is None:
            raise ValueError(f"a {representation} features file needs {name}; pass {name}=")
        arr = np.ascontiguousarray(value, dtype=np.int64 if name == "order" else np.float64)
        if name == "anchors" and (arr.ndim != 2 or arr.shape[1] != dim):
            raise ValueError(f"anchors must have shape (A, dim={dim}), got {arr.shape}")
        if shape is not None and arr.shape != shape:
            raise ValueError(f"{name} must have shape (S, N) = {shape}, got {arr.shape}")
        datasets[name] = arr
    num_anchors = datasets["anchors"].shape[0] if "anchors" in datasets else 0
    problem = _features_shape_problem(representation, features.shape[1:], attrs, num_anchors)
    if problem:
        raise ValueError(problem)
    if representation == "distance" and not isinstance(attrs["anchors"], str):
        attrs["anchors"] = json.dumps(_jsonable(attrs["anchors"]), separators=(",", ":"))
    values = {name: _attr_value(name, attrs[name], kinds.get(name)) for name in sorted(attrs)}

    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            for name in sorted(datasets):
                data = datasets[name]
                if name == "features" and num > 0:
                    # One sample per chunk: a training batch reads exactly its rows. Deterministic filters only.
                    f.create_dataset(name, data=data, chunks=(1,) + data.shape[1:], compression="gzip",
                                     compression_opts=4, shuffle=True, track_times=False)
                else:
                    f.create_dataset(name, data=data, track_times=False)
            for name, value in values.items():
                f.attrs[name] = value
    return Path(path)


def select_rows(key, num: int) -> np.ndarray:
    """The (K,) int64 rows of ``num`` that ``key`` (int, slice, boolean mask or integer array) selects."""
    if isinstance(key, slice):
        return np.arange(num, dtype=np.int64)[key]
    key = np.atleast_1d(np.asarray(key))
    if key.dtype == bool:
        if key.shape != (num,):
            raise IndexError(f"a boolean mask of {num} rows is needed, got shape {key.shape}")
        return np.flatnonzero(key).astype(np.int64)
    if not np.issubdtype(key.dtype, np.integer):
        raise IndexError(f"rows are selected by int, slice, boolean mask or integer array, got {key.dtype}")
    rows = key.astype(np.int64).ravel()
    rows = np.where(rows < 0, rows + num, rows)
    if rows.size and (rows.min() < 0 or rows.max() >= num):
        raise IndexError(f"row out of range for {num} samples")
    return rows


class LazyRows:
    """(S, ...) float32 samples on disk, read on demand: ``rows[i]``, ``rows[a:b]``, ``rows[mask]`` and
    ``rows[indices]`` read just those samples and return a NumPy array in the order asked; ``numpy.asarray(rows)``
    reads every sample. Subclasses set ``shape`` and implement ``read(rows)``."""

    dtype = np.dtype(np.float32)
    shape: tuple = (0,)

    ndim = property(lambda self: len(self.shape))
    nbytes = property(lambda self: int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize)
    sample_bytes = property(lambda self: int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, rows) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.read(select_rows(key, len(self)))[0]
        return self.read(select_rows(key, len(self)))

    def __array__(self, dtype=None, copy=None):
        data = self.read(np.arange(len(self)))
        return data if dtype is None else data.astype(dtype, copy=False)

    def take(self, rows) -> "LazyRows":
        """The samples ``rows`` as lazy rows of their own (nothing is read until they are indexed)."""
        return _TakenRows(self, select_rows(rows, len(self)))


class _TakenRows(LazyRows):
    """Some rows of other lazy rows, indexed like an array of their own (see :meth:`LazyRows.take`)."""

    def __init__(self, parent: LazyRows, rows: np.ndarray):
        self.parent, self.rows = parent, rows
        self.shape = (len(rows),) + tuple(parent.shape[1:])

    def read(self, rows) -> np.ndarray:
        return self.parent.read(self.rows[np.asarray(rows, dtype=np.int64)])


class FeatureRows(LazyRows):
    """The ``features`` dataset of one features file, read on demand (see :class:`LazyRows`). Each read takes the
    contiguous runs of the sorted rows, one HDF5 read each, so a job holds only the samples it works on."""

    def __init__(self, path: str | Path, shape: tuple):
        self.path = Path(path)
        self.shape = tuple(int(k) for k in shape)

    def __repr__(self) -> str:
        return f"FeatureRows({str(self.path)!r}, shape={self.shape})"

    def read(self, rows) -> np.ndarray:
        """The samples ``rows`` ((K,) int64, any order, repeats allowed), (K, ...) float32, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size,) + self.shape[1:], dtype=np.float32)
        if rows.size == 0:
            return out
        unique, inverse = np.unique(rows, return_inverse=True)
        block = np.empty((unique.size,) + self.shape[1:], dtype=np.float32)
        starts = np.flatnonzero(np.diff(unique, prepend=unique[0] - 2) != 1)
        ends = np.append(starts[1:], unique.size)
        with _open_hdf5(self.path, "features", "featurize") as f:
            dataset = f["features"]
            for a, b in zip(starts, ends):
                dataset.read_direct(block, np.s_[unique[a]:unique[b - 1] + 1], np.s_[a:b])
        out[:] = block[inverse.ravel()]
        return out


def read_features(path: str | Path, lazy: bool = False) -> Features:
    """Read and check a features file; ValueError saying what is wrong if it does not follow the layout.

    lazy : leave the ``features`` dataset on disk: ``Features.features`` is then a :class:`FeatureRows` that reads
        samples on demand (every other dataset is read, and every check made, as without).
    """
    import h5py

    path = Path(path)
    with _open_hdf5(path, "features", "featurize") as f:
        attrs = {k: _scalar(v) for k, v in f.attrs.items()}
        fmt = attrs.get("file_format")
        if fmt != FEATURES_FORMAT:
            what = "a vaepipe samples file" if fmt == SAMPLES_FORMAT else f"file_format {fmt!r}"
            raise ValueError(f"{path} is {what}, not a vaepipe features file (file_format {FEATURES_FORMAT!r}); "
                             f"read it with the matching reader, or pass results/features/{{representation}}/"
                             f"{{state}}.h5")
        representation = attrs.get("representation")
        if representation not in FEATURES_REPRESENTATION_ATTRS:
            raise ValueError(f"{path}: attribute representation={representation!r}, expected one of "
                             f"{tuple(FEATURES_REPRESENTATION_ATTRS)}")
        problems = []
        expected = {"features": None, "energy": 1, "chain": 1, "sample_index": 1, "order": 2, "anchors": 2}
        names = ("features", "energy", "chain", "sample_index") + _FEATURES_EXTRAS[representation]
        for name in names:
            if name not in f or not isinstance(f[name], h5py.Dataset):
                problems.append(f"dataset {name!r} is missing")
            elif expected[name] is not None and f[name].ndim != expected[name]:
                problems.append(f"dataset {name!r} has {f[name].ndim} dimensions, expected {expected[name]}")
        unexpected = sorted(set(f) - set(names))
        if unexpected:
            problems.append(f"unexpected dataset(s) {unexpected} for representation {representation!r}")
        kinds = {**FEATURES_ATTRS, **FEATURES_REPRESENTATION_ATTRS[representation]}
        missing = [k for k in kinds if k not in attrs]
        if missing:
            problems.append(f"attributes {missing} are missing")
        if problems:
            raise ValueError(f"{path} is not a valid vaepipe features file: {'; '.join(problems)}")
        data = {name: f[name][()] for name in names if not (lazy and name == "features")}
        if lazy:
            stored = f["features"]
            dtype, shape = stored.dtype, stored.shape
            data["features"] = FeatureRows(path, shape)
        else:
            dtype, shape = data["features"].dtype, data["features"].shape
    features = data["features"]
    num = shape[0] if len(shape) else -1
    problems = []
    if dtype != np.float32 or len(shape) < 2:
        problems.append(f"features {dtype} {shape}, expected float32 (S, ...)")
    for name in ("energy", "chain", "sample_index"):
        if data[name].shape != (num,):
            problems.append(f"{name} has shape {data[name].shape}, expected (S,) = ({num},)")
    n, dim = int(attrs["n_particles"]), int(attrs["dim"])
    if "order" in data and data["order"].shape != (num, n):
        problems.append(f"order has shape {data['order'].shape}, expected (S, N) = ({num}, {n})")
    if "anchors" in data and data["anchors"].shape[1:] != (dim,):
        problems.append(f"anchors has shape {data['anchors'].shape}, expected (A, dim={dim})")
    if not problems and len(shape) >= 2:
        problem = _features_shape_problem(representation, tuple(shape[1:]), attrs,
                                          data["anchors"].shape[0] if "anchors" in data else 0)
        if problem:
            problems.append(problem)
    if problems:
        raise ValueError(f"{path} is not a valid vaepipe features file: {'; '.join(problems)}")
    return Features(features=features, energy=data["energy"].astype(np.float64, copy=False),
                    chain=data["chain"].astype(np.int64, copy=False),
                    sample_index=data["sample_index"].astype(np.int64, copy=False),
                    order=data.get("order"), anchors=data.get("anchors"), attrs=attrs)
