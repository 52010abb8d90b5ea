"""Samples file, ``results/samples/{state}.h5`` (contract; see README.md, "Output files")::

    positions  (S, N, dim) float64   particle coordinates in sigma, z = last coordinate in [0, L]
    energy     (S,)        float64   total potential energy U / epsilon of each configuration
    chain      (S,)        int64     index of the independent chain that produced it
    attrs      gamma, temperature, n_particles, box_length, dim, boundary, cutoff (NaN when none), seed,
               step_size, acceptance_rate, equilibration_sweeps, decorrelation_sweeps, vaepipe_version
               + provenance: file_format, state, config (JSON of the rule's parameters), seed_entropy (JSON),
               git_commit, and the sampling details (sampling_mode, num_chains, ...)

Preliminary summary, ``results/preliminary/{state}.json``: one JSON object, keys sorted, see
:data:`PRELIMINARY_KEYS`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe.io._files import (
    _FLOAT,
    _INT,
    _STR,
    _attr_value,
    _check_keys,
    _jsonable,
    _open_hdf5,
    _scalar,
    _version,
    atomic_path,
    read_json,
    write_json,
)


SAMPLES_FORMAT = "vaepipe-samples-1"

#: How far (relative to box_length) a stored coordinate may lie outside [0, L] and still count as inside. The
#: sampler keeps every boundary's coordinates in the closed box [0, L] (a periodic axis in [0, L); a coordinate of
#: exactly L there is the same point as 0, and the core accepts it), so this only forgives a rounding error in a
#: file someone else wrote.
BOX_TOLERANCE = 1e-9


PRELIMINARY_FORMAT = "vaepipe-preliminary-1"


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


def _check_positions(positions: np.ndarray, attrs: Mapping[str, Any], where: str, fix: str) -> None:
    """ValueError unless every coordinate is finite and inside the closed box [0, box_length] (within
    :data:`BOX_TOLERANCE`): the first bad sample, particle and axis named, and ``where`` (the call or the file)
    in front. One vectorised pass over the array, nothing when it is empty."""
    try:
        box_length = float(np.float64(attrs["box_length"]))  # as the file stores it
    except (TypeError, ValueError):
        box_length = math.nan
    if not (math.isfinite(box_length) and box_length > 0):
        raise ValueError(f"{where}: attrs box_length={attrs['box_length']!r} is invalid; expected a positive finite "
                         f"length in sigma; {fix}")
    if positions.size == 0:
        return
    finite = np.isfinite(positions)
    if not finite.all():
        sample, particle, axis = (int(i) for i in np.argwhere(~finite)[0])
        count = int((~finite).reshape(positions.shape[0], -1).any(axis=1).sum())
        raise ValueError(f"{where}: positions hold NaN or inf at sample {sample} (particle {particle}, axis {axis}; "
                         f"{count} bad sample(s) of {positions.shape[0]}); expected finite coordinates in sigma; "
                         f"{fix}")
    tolerance = BOX_TOLERANCE * box_length
    outside = (positions < -tolerance) | (positions > box_length + tolerance)
    if outside.any():
        sample, particle, axis = (int(i) for i in np.argwhere(outside)[0])
        count = int(outside.reshape(positions.shape[0], -1).any(axis=1).sum())
        value = float(positions[sample, particle, axis])
        raise ValueError(f"{where}: positions[{sample}, {particle}, {axis}] = {value!r} lies outside the box "
                         f"({count} bad sample(s) of {positions.shape[0]}, boundary {str(attrs.get('boundary'))!r}); "
                         f"expected coordinates in [0, box_length={box_length:g}] sigma (tolerance "
                         f"{tolerance:.3g}); {fix}")


def write_samples(path: str | Path, positions, energy, chain, attrs: Mapping[str, Any]) -> Path:
    """Write a samples file atomically; see the module docstring for the layout.

    ``attrs`` must hold every contract attribute but ``vaepipe_version`` (filled in from ``vaepipe.__version__``
    when absent); ``cutoff`` may be None. Further attributes (provenance) are stored too: numbers and strings
    as they are, dicts and lists as JSON strings. Positions must be finite and inside the closed box
    [0, box_length] (to :data:`BOX_TOLERANCE`), or ValueError; complex positions are a TypeError.
    """
    positions = np.asarray(positions)
    if np.iscomplexobj(positions):  # numpy would drop the imaginary part with only a warning
        raise TypeError(f"positions='<complex array of shape {positions.shape}>' is invalid: expected real numbers "
                        f"(float64); fix: pass positions.real if the imaginary part is meant to be zero")
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
    _check_positions(positions, attrs, f"write_samples({str(path)!r})",
                     "drop or repair those samples, or pass the box_length they were sampled in")
    values = {name: _attr_value(name, attrs[name], SAMPLES_ATTRS.get(name)) for name in sorted(attrs)}

    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            for name, data in (("positions", positions), ("energy", energy), ("chain", chain)):
                f.create_dataset(name, data=data, track_times=False)
            for name, value in values.items():
                f.attrs[name] = value
    return Path(path)


def read_samples(path: str | Path) -> Samples:
    """Read and check a samples file; ValueError saying what is wrong if it does not follow the layout, or if its
    positions are not finite or lie outside the box [0, box_length] (to :data:`BOX_TOLERANCE`)."""
    import h5py

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"read_samples: {path} is a directory; expected a samples .h5 file such as "
                         f"results/samples/{{state}}.h5 (one per state point); pass the file's path")
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
    _check_positions(positions, attrs, str(path), "the file is damaged: delete it and rerun the sample rule")
    return Samples(positions=positions, energy=energy, chain=chain, attrs=attrs)


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
