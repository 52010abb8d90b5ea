"""File layouts of vaepipe: the only module that reads or writes result files.

Samples file, ``results/samples/{state}.h5`` (contract; see README.md, "Output files")::

    positions  (S, N, dim) float64   particle coordinates in sigma, z = last coordinate in [0, L]
    energy     (S,)        float64   total potential energy U / epsilon of each configuration
    chain      (S,)        int64     index of the independent chain that produced it
    attrs      gamma, temperature, n_particles, box_length, dim, boundary, cutoff (NaN when none), seed,
               step_size, acceptance_rate, equilibration_sweeps, decorrelation_sweeps, vaepipe_version
               + provenance: file_format, state, config (JSON of the rule's parameters), seed_entropy (JSON),
               git_commit, and the sampling details (sampling_mode, num_chains, ...)

Features file, ``results/features/{representation}/{state}.h5`` (representation: voxel, distance, coordinates)::

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

Preliminary summary, ``results/preliminary/{state}.json``: one JSON object, keys sorted, see
:data:`PRELIMINARY_KEYS`.

Sampling checkpoint, ``results/checkpoints/sample/{state}.h5`` (not a workflow output: Snakemake deletes the
outputs of a failed job, and this file must outlive one; the sample rule removes it once the samples are
written)::

    chain_{i}/positions           (k, N, dim) float64   the k samples chain i stored so far
    chain_{i}/energy              (k,)        float64
    chain_{i}/sampler_positions   (N, dim)    float64   Sampler.get_state(): positions, and
    chain_{i}/rng_state           (4,)        uint64    the RNG state, ...
    chain_{i}/neighbor_reference  (N, dim)    float64   ... only when the sampler had a neighbour list
    chain_{i} attrs               burn_in_done (sweeps of the current burn-in already run), raw_energy, energy,
                                  step_size, attempted, accepted
    attrs                         file_format, fingerprint (see vaepipe.sampling), state, num_chains
    A chain without a group had not reported yet and starts afresh.

Model, ``results/models/{representation}/vae.keras``: a Keras 3 archive whose ``metadata.json`` carries the
provenance under ``"vaepipe"`` (no save date). Next to it: ``history.csv`` (one row per epoch) and
``metrics.json`` (test-split metrics, see :func:`vaepipe.training.evaluate`).

Latent file, ``results/latent/{representation}.parquet``: one row per sample, columns :data:`LATENT_LABELS`
(state, gamma, temperature, energy, chain, sample_index, split) then ``z_mean_0..`` and ``z_log_var_0..``
(float32); the schema metadata ``vaepipe`` holds the provenance as JSON.

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
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

__all__ = [
    "SAMPLES_FORMAT",
    "PRELIMINARY_FORMAT",
    "SAMPLES_ATTRS",
    "PRELIMINARY_KEYS",
    "Samples",
    "atomic_path",
    "write_samples",
    "read_samples",
    "write_json",
    "read_json",
    "write_preliminary",
    "read_preliminary",
    "CHECKPOINT_FORMAT",
    "ChainCheckpoint",
    "write_checkpoint",
    "read_checkpoint",
    "remove_checkpoint",
    "save_figure",
    "figure_provenance",
    "provenance",
    "git_commit",
    "FEATURES_FORMAT",
    "FEATURES_ATTRS",
    "FEATURES_REPRESENTATION_ATTRS",
    "Features",
    "write_features",
    "read_features",
    "MODEL_FORMAT",
    "LATENT_FORMAT",
    "LATENT_LABELS",
    "write_model",
    "read_model",
    "model_provenance",
    "write_table_csv",
    "write_latent",
    "read_latent",
]

SAMPLES_FORMAT = "vaepipe-samples-1"
PRELIMINARY_FORMAT = "vaepipe-preliminary-1"
CHECKPOINT_FORMAT = "vaepipe-sampling-checkpoint-1"

_FLOAT, _INT, _STR = "float", "int", "str"

#: The contract attributes of a samples file and their types.
SAMPLES_ATTRS: dict[str, str] = {
    "gamma": _FLOAT,
    "temperature": _FLOAT,
    "n_particles": _INT,
    "box_length": _FLOAT,
    "dim": _INT,
    "boundary": _STR,
    "cutoff": _FLOAT,
    "seed": _INT,
    "step_size": _FLOAT,
    "acceptance_rate": _FLOAT,
    "equilibration_sweeps": _INT,
    "decorrelation_sweeps": _INT,
    "vaepipe_version": _STR,
}

#: Keys every preliminary summary holds, and their types ("dict" for nested records).
PRELIMINARY_KEYS: dict[str, str] = {
    "file_format": _STR,
    "state": _STR,
    "gamma": _FLOAT,
    "temperature": _FLOAT,
    "step_size": _FLOAT,
    "acceptance_rate": _FLOAT,
    "tune_sweeps": _INT,
    "trace_sweeps": _INT,
    "equilibration_sweeps": _INT,
    "decorrelation_sweeps": _INT,
    "tau_int": _FLOAT,
    "statistical_inefficiency": _FLOAT,
    "n_eff": _FLOAT,
    "energy_mean": _FLOAT,
    "energy_sem": _FLOAT,
    "observables": "dict",
    "vaepipe_version": _STR,
    "provenance": "dict",
}


def _version() -> str:
    from vaepipe import __version__

    return str(__version__)


# --------------------------------------------------------------------------- atomic writes


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


# --------------------------------------------------------------------------- JSON


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


# --------------------------------------------------------------------------- provenance


@lru_cache(maxsize=None)
def git_commit(directory: str | None = None) -> str:
    """Commit of the git checkout holding vaepipe's sources, with "-dirty" when it has uncommitted changes
    ('' when not a checkout or git is missing), so a file never claims a commit whose code did not make it."""
    directory = directory or str(Path(__file__).resolve().parent)
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never refresh the index
    try:
        out = subprocess.run(["git", "-C", directory, "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def provenance(params: Mapping[str, Any], seed: np.random.SeedSequence | None = None) -> dict:
    """Provenance record of an output: the rule's parameters, the derived seed, version and commit.

    The SIMD kernel is deliberately not recorded in files (every kernel gives the same bits, so the files do
    not depend on it); the job logs name it.
    """
    from vaepipe.seeds import seed_provenance

    return {
        "config": _jsonable(dict(params)),
        "seed": seed_provenance(seed) if seed is not None else None,
        "vaepipe_version": _version(),
        "git_commit": git_commit(),
    }


# --------------------------------------------------------------------------- samples (HDF5)


@dataclass(frozen=True)
class Samples:
    """Contents of a samples file.

    positions : (S, N, dim) float64, sigma.   energy : (S,) float64, U / epsilon.   chain : (S,) int64.
    attrs : every HDF5 attribute as a Python scalar (``cutoff`` is NaN when there is none; the provenance
    attributes ``config`` and ``seed_entropy`` are JSON strings).
    """

    positions: np.ndarray
    energy: np.ndarray
    chain: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return int(self.energy.shape[0])


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


def write_samples(path: str | Path, positions, energy, chain, attrs: Mapping[str, Any]) -> Path:
    """Write a samples file atomically; see the module docstring for the layout.

    ``attrs`` must hold every contract attribute but ``vaepipe_version`` (filled in from ``vaepipe.__version__``
    when absent); ``cutoff`` may be None. Further attributes (provenance) are stored too: numbers and strings
    as they are, dicts and lists as JSON strings.
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    energy = np.ascontiguousarray(energy, dtype=np.float64)
    chain = np.ascontiguousarray(chain, dtype=np.int64)
    attrs = dict(attrs)
    attrs.setdefault("vaepipe_version", _version())
    attrs.setdefault("file_format", SAMPLES_FORMAT)
    missing = [k for k in SAMPLES_ATTRS if k not in attrs]
    if missing:
        raise ValueError(f"samples attrs lack the contract attribute(s) {missing}; pass them in attrs")
    if positions.ndim != 3:
        raise ValueError(f"positions must have shape (S, N, dim), got {positions.shape}")
    num, n, dim = positions.shape
    if energy.shape != (num,) or chain.shape != (num,):
        raise ValueError(f"energy and chain must have shape (S,) = ({num},) to match positions {positions.shape}, "
                         f"got {energy.shape} and {chain.shape}")
    if (n, dim) != (int(attrs["n_particles"]), int(attrs["dim"])):
        raise ValueError(f"positions {positions.shape} do not match attrs n_particles={attrs['n_particles']}, "
                         f"dim={attrs['dim']}")
    values = {name: _attr_value(name, attrs[name], SAMPLES_ATTRS.get(name)) for name in sorted(attrs)}

    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            for name, data in (("positions", positions), ("energy", energy), ("chain", chain)):
                f.create_dataset(name, data=data, track_times=False)
            for name, value in values.items():
                f.attrs[name] = value
    return Path(path)


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


def read_samples(path: str | Path) -> Samples:
    """Read and check a samples file; ValueError saying what is wrong if it does not follow the layout."""
    import h5py

    path = Path(path)
    with _open_hdf5(path, "samples", "sample") as f:
        problems = []
        for name, ndim in (("positions", 3), ("energy", 1), ("chain", 1)):
            if name not in f or not isinstance(f[name], h5py.Dataset):
                problems.append(f"dataset {name!r} is missing")
            elif f[name].ndim != ndim:
                problems.append(f"dataset {name!r} has {f[name].ndim} dimensions, expected {ndim}")
        missing = [k for k in SAMPLES_ATTRS if k not in f.attrs]
        if missing:
            problems.append(f"attributes {missing} are missing")
        if problems:
            raise ValueError(f"{path} is not a vaepipe samples file: {'; '.join(problems)}")
        positions = f["positions"][()]
        energy = f["energy"][()]
        chain = f["chain"][()]
        attrs = {k: _scalar(v) for k, v in f.attrs.items()}
    num, n, dim = positions.shape
    if positions.dtype != np.float64 or energy.dtype != np.float64 or not np.issubdtype(chain.dtype, np.integer):
        raise ValueError(f"{path}: expected float64 positions and energy and integer chain, got "
                         f"{positions.dtype}, {energy.dtype}, {chain.dtype}")
    if energy.shape != (num,) or chain.shape != (num,):
        raise ValueError(f"{path}: energy {energy.shape} and chain {chain.shape} do not match positions "
                         f"{positions.shape}")
    if (n, dim) != (attrs["n_particles"], attrs["dim"]):
        raise ValueError(f"{path}: positions {positions.shape} disagree with attrs n_particles="
                         f"{attrs['n_particles']}, dim={attrs['dim']}")
    return Samples(positions=positions, energy=energy, chain=chain, attrs=attrs)


# --------------------------------------------------------------------------- preliminary summary (JSON)


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


def write_preliminary(path: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write a preliminary-run summary (keys :data:`PRELIMINARY_KEYS`, more allowed) as canonical JSON, atomically."""
    data = _jsonable(dict(summary))
    data.setdefault("file_format", PRELIMINARY_FORMAT)
    data.setdefault("vaepipe_version", _version())
    _check_keys("preliminary summary", data, PRELIMINARY_KEYS, "preliminary summary")
    return write_json(path, data)


def read_preliminary(path: str | Path) -> dict:
    """Read and check a preliminary summary; ValueError naming what is wrong."""
    path = Path(path)
    try:
        data = read_json(path)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete it and rerun the preliminary rule") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a vaepipe preliminary summary: expected a JSON object")
    _check_keys(path, data, PRELIMINARY_KEYS, "preliminary summary")
    if data["step_size"] is None or data["step_size"] <= 0:
        raise ValueError(f"{path}: step_size = {data['step_size']!r}, expected > 0")
    if data["decorrelation_sweeps"] < 1 or data["equilibration_sweeps"] < 0:
        raise ValueError(f"{path}: decorrelation_sweeps = {data['decorrelation_sweeps']} (expected >= 1) or "
                         f"equilibration_sweeps = {data['equilibration_sweeps']} (expected >= 0) out of range")
    return data


# --------------------------------------------------------------------------- sampling checkpoint (HDF5)


@dataclass(frozen=True)
class ChainCheckpoint:
    """Where one chain of a sampling run stood: enough to continue it bit for bit.

    state : dict of :meth:`vaepipe.mc.Sampler.get_state`.
    positions : (k, N, dim) float64, sigma, the samples stored so far.  energy : (k,) float64, U/epsilon.
    burn_in_done : sweeps of the current burn-in already run (the initial one, or in mode 'restart' the one
        before sample k).
    """

    state: dict
    positions: np.ndarray
    energy: np.ndarray
    burn_in_done: int

    @property
    def num_samples(self) -> int:
        return int(self.energy.shape[0])


_CHECKPOINT_STATE_ATTRS = ("raw_energy", "energy", "step_size", "attempted", "accepted")


def write_checkpoint(path: str | Path, fingerprint: str, chains, attrs: Mapping[str, Any] | None = None) -> Path:
    """Write a sampling checkpoint atomically (layout in the module docstring).

    chains : one :class:`ChainCheckpoint` per chain, or None for a chain that has not reported yet.
    fingerprint : digest of everything the samples depend on; :func:`read_checkpoint` hands it back so that the
        caller can refuse a checkpoint of another run.
    """
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            f.attrs["file_format"] = CHECKPOINT_FORMAT
            f.attrs["fingerprint"] = str(fingerprint)
            f.attrs["num_chains"] = np.int64(len(chains))
            for name, value in sorted(dict(attrs or {}).items()):
                f.attrs[name] = _attr_value(name, value, None)
            for i, chain in enumerate(chains):
                if chain is None:
                    continue
                g = f.create_group(f"chain_{i}")
                state = chain.state
                g.create_dataset("positions", data=np.asarray(chain.positions, dtype=np.float64), track_times=False)
                g.create_dataset("energy", data=np.asarray(chain.energy, dtype=np.float64), track_times=False)
                g.create_dataset("sampler_positions", data=np.asarray(state["positions"], dtype=np.float64),
                                 track_times=False)
                g.create_dataset("rng_state", data=np.asarray(state["rng_state"], dtype=np.uint64),
                                 track_times=False)
                if state.get("neighbor_reference") is not None:
                    g.create_dataset("neighbor_reference", track_times=False,
                                     data=np.asarray(state["neighbor_reference"], dtype=np.float64))
                g.attrs["burn_in_done"] = np.int64(chain.burn_in_done)
                for name in ("raw_energy", "energy", "step_size"):
                    g.attrs[name] = np.float64(state[name])
                for name in ("attempted", "accepted"):
                    g.attrs[name] = np.int64(state[name])
    return Path(path)


def read_checkpoint(path: str | Path) -> tuple[str, list, dict]:
    """Read a sampling checkpoint: (fingerprint, [ChainCheckpoint or None per chain], attrs).

    ValueError when the file is not a readable checkpoint of this format (the caller then starts afresh).
    """
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _scalar(v) for k, v in f.attrs.items()}
            if attrs.get("file_format") != CHECKPOINT_FORMAT:
                raise ValueError(f"file_format {attrs.get('file_format')!r}, expected {CHECKPOINT_FORMAT!r}")
            chains = []
            for i in range(int(attrs["num_chains"])):
                g = f.get(f"chain_{i}")
                if g is None:
                    chains.append(None)
                    continue
                state = {name: _scalar(g.attrs[name]) for name in _CHECKPOINT_STATE_ATTRS}
                state["positions"] = g["sampler_positions"][()]
                state["rng_state"] = g["rng_state"][()]
                state["neighbor_reference"] = g["neighbor_reference"][()] if "neighbor_reference" in g else None
                chains.append(ChainCheckpoint(state=state, positions=g["positions"][()], energy=g["energy"][()],
                                              burn_in_done=int(g.attrs["burn_in_done"])))
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path} is not a readable sampling checkpoint ({type(exc).__name__}: {exc})") from exc
    except ValueError as exc:
        raise ValueError(f"{path} is not a readable sampling checkpoint ({exc})") from exc
    return str(attrs["fingerprint"]), chains, attrs


def remove_checkpoint(path: str | Path) -> None:
    """Delete a checkpoint once its run's result is safely written (no error when there is none), and any
    temporary file of a checkpoint write that was killed."""
    path = Path(path)
    path.unlink(missing_ok=True)
    if path.parent.is_dir():
        _remove_stale_temporaries(path)


# --------------------------------------------------------------------------- figures

_NO_DATES = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}


def save_figure(fig, path: str | Path, dpi: int = 120, provenance_record: Mapping[str, Any] | None = None) -> Path:
    """Save a matplotlib figure atomically, without version or date metadata (same figure -> same bytes).

    ``provenance_record`` (see :func:`provenance`) is embedded as canonical JSON: a PNG text chunk ``vaepipe``,
    a PDF's ``Subject``; :func:`figure_provenance` reads it back. A figure made by pyplot is closed afterwards; one
    made with ``matplotlib.figure.Figure`` needs no closing.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    try:
        if fmt not in _NO_DATES:
            raise ValueError(f"figure {path}: expected a .png or .pdf file name, got {path.suffix!r}")
        metadata = dict(_NO_DATES[fmt])
        if provenance_record is not None:
            metadata["vaepipe" if fmt == "png" else "Subject"] = dumps(provenance_record).strip()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata=metadata)
    finally:
        if getattr(fig.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path


def figure_provenance(path: str | Path) -> dict:
    """The provenance embedded in a PNG figure by :func:`save_figure` ({} when there is none)."""
    from PIL import Image

    with Image.open(path) as image:
        text = getattr(image, "text", {}).get("vaepipe")
    return json.loads(text) if text else {}


# --------------------------------------------------------------------------- features (HDF5)

FEATURES_FORMAT = "vaepipe-features-1"

#: Attributes every features file holds (besides provenance), and their types.
FEATURES_ATTRS: dict[str, str] = {
    "representation": _STR,
    "state": _STR,
    "gamma": _FLOAT,
    "temperature": _FLOAT,
    "n_particles": _INT,
    "box_length": _FLOAT,
    "dim": _INT,
    "boundary": _STR,
    "seed": _INT,
    "vaepipe_version": _STR,
    "file_format": _STR,
}

#: The parameters each representation adds to the attributes (``anchors`` is the JSON text of the spec).
FEATURES_REPRESENTATION_ATTRS: dict[str, dict[str, str]] = {
    "voxel": {"voxel_size": _FLOAT, "num_cells": _INT, "method": _STR, "width": _FLOAT, "normalize": _STR},
    "distance": {"anchors": _STR, "distance_scale": _FLOAT},
    "coordinates": {"sort_axis": _INT},
}

# Datasets beyond features/energy/chain/sample_index, per representation.
_FEATURES_EXTRAS = {"voxel": (), "distance": ("order", "anchors"), "coordinates": ("order",)}


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
    n, dim = int(attrs["n_particles"]), int(attrs["dim"])
    if representation == "voxel":
        cells = int(attrs["num_cells"])
        expected = (cells,) * dim
    elif representation == "distance":
        expected = (n + num_anchors,) * 2
    else:
        expected = (n * dim,)
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


def read_features(path: str | Path) -> Features:
    """Read and check a features file; ValueError saying what is wrong if it does not follow the layout."""
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
        data = {name: f[name][()] for name in names}
    features = data["features"]
    num = features.shape[0] if features.ndim else -1
    problems = []
    if features.dtype != np.float32 or features.ndim < 2:
        problems.append(f"features {features.dtype} {features.shape}, expected float32 (S, ...)")
    for name in ("energy", "chain", "sample_index"):
        if data[name].shape != (num,):
            problems.append(f"{name} has shape {data[name].shape}, expected (S,) = ({num},)")
    n, dim = int(attrs["n_particles"]), int(attrs["dim"])
    if "order" in data and data["order"].shape != (num, n):
        problems.append(f"order has shape {data['order'].shape}, expected (S, N) = ({num}, {n})")
    if "anchors" in data and data["anchors"].shape[1:] != (dim,):
        problems.append(f"anchors has shape {data['anchors'].shape}, expected (A, dim={dim})")
    if not problems and features.ndim >= 2:
        problem = _features_shape_problem(representation, features.shape[1:], attrs,
                                          data["anchors"].shape[0] if "anchors" in data else 0)
        if problem:
            problems.append(problem)
    if problems:
        raise ValueError(f"{path} is not a valid vaepipe features file: {'; '.join(problems)}")
    return Features(features=features, energy=data["energy"].astype(np.float64, copy=False),
                    chain=data["chain"].astype(np.int64, copy=False),
                    sample_index=data["sample_index"].astype(np.int64, copy=False),
                    order=data.get("order"), anchors=data.get("anchors"), attrs=attrs)


# --------------------------------------------------------------------------- models (.keras), histories, latents

MODEL_FORMAT = "vaepipe-model-1"
LATENT_FORMAT = "vaepipe-latent-1"
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


# --------------------------------------------------------------------------- reconstruction and generation (HDF5)

#: File formats of the array bundles written by the reconstruction and generation stages.
RECONSTRUCTION_FORMAT = "vaepipe-reconstruction-1"
GENERATED_FORMAT = "vaepipe-generated-1"


def write_arrays(path: str | Path, arrays: Mapping[str, Any], attrs: Mapping[str, Any], file_format: str) -> Path:
    """Write named arrays (each with the same first dimension S, one row per configuration) and attributes to
    an HDF5 file, atomically and byte-reproducibly (no timestamps). Strings become UTF-8 string datasets;
    dicts and lists in ``attrs`` are stored as JSON text."""
    import h5py

    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    sizes = {name: value.shape[0] for name, value in arrays.items() if value.ndim}
    if len(set(sizes.values())) > 1:
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


# --------------------------------------------------------------------------- summary

SUMMARY_FORMAT = "vaepipe-summary-1"


def write_summary(path: str | Path, summary: Mapping[str, float], provenance_record: Mapping[str, Any]) -> Path:
    """Write results/summary.json atomically: the flat ``{key: float}`` summary, NaN written as ``NaN`` (what
    Python's json, pandas and jq >= 1.7 read back as NaN), plus ``file_format`` and ``provenance``."""
    values = {}
    for key, value in summary.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"summary key {key} = {value!r}: expected a number (NaN where it does not apply)")
        values[key] = float(value)
    record = {**values, "file_format": SUMMARY_FORMAT, "provenance": _jsonable(provenance_record)}
    text = json.dumps(record, sort_keys=True, indent=2, allow_nan=True) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def read_summary(path: str | Path) -> dict:
    """Read results/summary.json: the numbers as floats (NaN included), with ``provenance`` and ``file_format``."""
    data = read_json(path)
    if data.get("file_format") != SUMMARY_FORMAT:
        raise ValueError(f"{path} is not a vaepipe summary (file_format {data.get('file_format')!r}, expected "
                         f"{SUMMARY_FORMAT!r}); produce it with the workflow's summary rule")
    return data


def write_summary_table(path: str | Path, summary: Mapping[str, float],
                        descriptions: Mapping[str, str] | None = None) -> Path:
    """The summary as a tab-separated table (quantity, value, meaning) for the report, atomically."""
    if descriptions is None:
        from vaepipe.mapping import SUMMARY_DESCRIPTIONS as descriptions
    lines = ["quantity\tvalue\tmeaning"]
    for key, value in summary.items():
        lines.append(f"{key}\t{float(value):.4g}\t{descriptions.get(key, '')}")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)
