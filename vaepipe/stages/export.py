"""Stage of workflow/rules/export.smk: every kind of configuration the pipeline produces as extended XYZ, for
OVITO, VMD and ASE (the file layout: vaepipe.io.export).

    export   results/export/samples/{state}.extxyz                                 MC samples, file order
             results/export/reconstruction/{representation}/{original,reconstructed}.extxyz
                                                                                   test configurations, row order
             results/export/generation/{representation}/{state}.extxyz            generated, as decoded
             results/export/minima/{state}.extxyz             best configuration of each minimization method
             results/export/quench/{state}.extxyz             inherent structures of MC samples

Energies are totals U/eps, gravity included; lengths in sigma. Every frame names the HDF5 file it comes from
(``source``), which carries the full provenance.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from vaepipe.io._files import read_json
from vaepipe.io.arrays import (GENERATED_FORMAT, MINIMIZATION_FORMAT, QUENCH_FORMAT, RECONSTRUCTION_FORMAT,
                               read_arrays)
from vaepipe.io.export import write_extxyz
from vaepipe.io.samples import read_samples
from vaepipe.reconstruct import min_pair_distance
from vaepipe.stages import StageResult, multiple, paths
from vaepipe.structure import is_valid

__all__ = ["export", "MINIMA_METHODS", "RECONSTRUCTION_VERSIONS"]

#: The frames of a minima file, in order: the reference minimum, then each method's best configuration.
MINIMA_METHODS = ("reference", "latent_exact", "latent_functional", "grid_descent", "quench_only")

#: The two files of a representation's reconstructions; frame k of both is row k of its test.h5.
RECONSTRUCTION_VERSIONS = ("original", "reconstructed")

# One file's content: the keyword arguments of write_extxyz but its path.
Frames = dict


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _frames(positions, energy, attrs: Mapping[str, Any], source: str, frame_info=None, info=None) -> Frames:
    return {"positions": np.asarray(positions, dtype=np.float64), "energy": np.asarray(energy, dtype=np.float64),
            "box_length": float(attrs["box_length"]), "boundary": str(attrs["boundary"]),
            "frame_info": frame_info or {}, "info": {**(info or {}), "source": str(source)}}


def _writer(files: dict[Any, Frames], key: Callable[[Path], Any]) -> Callable:
    """A writer of a list output: each target path gets the frames its key (from the path) names."""

    def write(targets: list, provenance: dict) -> None:
        keys = {key(Path(t)): t for t in targets}
        if set(keys) != set(files):
            raise RuntimeError(f"the export rule's outputs {sorted(map(str, keys))} do not match the configurations "
                               f"read, {sorted(map(str, files))}; rule and stage must name them alike")
        for k, target in keys.items():
            write_extxyz(target, **files[k])

    return multiple(write)


def _state_points(samples: dict) -> dict[str, dict]:
    return {state: {"gamma": float(s.attrs["gamma"]), "temperature": float(s.attrs["temperature"])}
            for state, s in samples.items()}


def _system(samples: dict) -> dict:
    """The system every file shares (the config's ``system``): box_length and boundary of the samples files."""
    systems = {(float(s.attrs["box_length"]), str(s.attrs["boundary"])) for s in samples.values()}
    if not systems:
        raise ValueError("the export needs the samples files (input samples): they name the system and the chains")
    if len(systems) != 1:
        raise ValueError(f"the samples files disagree on the system (box_length, boundary): {sorted(systems)}")
    box, boundary = systems.pop()
    return {"box_length": box, "boundary": boundary}


def _reference_energy(record: Mapping[str, Any], source: str) -> float:
    """U/eps of the stored reference configuration: that of the search it came from (``reference_from``), not
    ``energy_reference``, which at gamma = 0 is the Cambridge Cluster Database value."""
    origin = str(record["reference_from"])
    key = f"energy_{origin[len('method:'):]}" if origin.startswith("method:") else f"reference_{origin}"
    if key not in record:
        raise ValueError(f"{source}: reference_from={origin!r} but the record has no {key!r}")
    return float(record[key])


def export(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``export``: inputs ``samples`` (every sampled state point), ``reconstruction`` (each trained
    representation's test.h5), ``generation`` (each representation and trained state point), ``minimization``
    and ``records`` (the .h5 and .json of each minimized state point, in the same order) and ``quench`` (each
    sampled state point); the last three are empty when the minimization does not run. params ``min_distance``
    (sigma, the validity threshold of generated configurations). Outputs of the same names, one file each
    (reconstruction: two per representation); see this module's docstring and vaepipe.io.export."""
    min_distance = float(params["min_distance"])
    samples, sources = {}, {}
    for source in paths(input, "samples"):
        data = read_samples(source)
        # the state point's name (attribute `state`, written by the sample rule), else the file's
        state = str(data.attrs.get("state", Path(source).stem))
        samples[state], sources[state] = data, source
    points, system = _state_points(samples), _system(samples)

    def chains(states, rows) -> np.ndarray:
        missing = sorted(set(states) - set(samples))
        if missing:
            raise ValueError(f"configurations of state points {missing} need their samples files among the inputs")
        return np.asarray([samples[s].chain[i] for s, i in zip(states, rows)], dtype=np.int64)

    out = {"samples": {}, "reconstruction": {}, "generation": {}, "minima": {}, "quench": {}}
    for state, s in samples.items():
        out["samples"][state] = _frames(
            s.positions, s.energy, s.attrs, sources[state],
            frame_info={"chain": s.chain, "sample_index": np.arange(len(s.energy))},
            info={"state": state, **points[state]})

    for source in paths(input, "reconstruction"):
        arrays, attrs = read_arrays(source, RECONSTRUCTION_FORMAT)
        representation = str(attrs["representation"])
        states = [str(v) for v in arrays["state"]]
        rows = np.asarray(arrays["sample_index"], dtype=np.int64)
        chain = chains(states, rows)
        common = {"state": np.asarray(states, dtype=object), "gamma": np.asarray(arrays["gamma"], np.float64),
                  "temperature": np.asarray([points[s]["temperature"] for s in states], np.float64),
                  "chain": chain, "sample_index": rows}
        out["reconstruction"][(representation, "original")] = _frames(
            arrays["original"], arrays["energy_original"], attrs, source, frame_info=common,
            info={"representation": representation})
        out["reconstruction"][(representation, "reconstructed")] = _frames(
            arrays["reconstructed"], arrays["energy_reconstructed"], attrs, source,
            frame_info={**common, "rmsd": arrays["rmsd"], "valid": np.asarray(arrays["valid"]).astype(bool),
                        "closest_pair": arrays["min_distance"]},
            info={"representation": representation})

    for source in paths(input, "generation"):
        arrays, attrs = read_arrays(source, GENERATED_FORMAT)
        positions, box = arrays["positions"], float(attrs["box_length"])
        closest = min_pair_distance(positions) if positions.shape[1] > 1 else np.full(len(positions), np.inf)
        out["generation"][(str(attrs["representation"]), str(attrs["state"]))] = _frames(
            positions, arrays["energy"], {**system, **attrs}, source,
            frame_info={"draw": np.arange(len(positions)), "valid": is_valid(positions, box, min_distance),
                        "closest_pair": closest},
            info={"state": str(attrs["state"]), "gamma": float(attrs["gamma"]),
                  "temperature": float(attrs["temperature"]), "representation": str(attrs["representation"])})

    minimization, records = paths(input, "minimization"), paths(input, "records")
    if len(minimization) != len(records):
        raise ValueError(f"inputs minimization ({len(minimization)} files) and records ({len(records)}) must name "
                         "the same state points in the same order")
    for source, record_path in zip(minimization, records):
        arrays, attrs = read_arrays(source, MINIMIZATION_FORMAT)
        record = read_json(record_path)
        state = str(attrs["state"])
        if str(record["state"]) != state:
            raise ValueError(f"{record_path} is the record of {record['state']!r}, {source} of {state!r}")
        energy = np.asarray([_reference_energy(record, record_path)]
                            + [float(record[f"energy_{m}"]) for m in MINIMA_METHODS[1:]])
        reference = float(record["energy_reference"])
        out["minima"][state] = _frames(
            np.stack([arrays[m] for m in MINIMA_METHODS]), energy, {**system, **attrs}, source,
            frame_info={"method": np.asarray(MINIMA_METHODS, dtype=object),
                        "relative_gap": (energy - reference) / abs(reference)},
            info={"state": state, "gamma": float(attrs["gamma"]), "temperature": float(attrs["temperature"]),
                  "energy_reference": reference, "reference_source": str(record["reference_source"])})

    for source in paths(input, "quench"):
        arrays, attrs = read_arrays(source, QUENCH_FORMAT)
        state = str(attrs["state"])
        rows = np.asarray(arrays["sample_index"], dtype=np.int64)
        out["quench"][state] = _frames(
            arrays["positions"], arrays["energy"], attrs, source,
            frame_info={"sample_index": rows, "chain": chains([state] * len(rows), rows),
                        "split": np.asarray([str(v) for v in arrays["split"]], dtype=object),
                        "energy_mc": arrays["energy_mc"], "converged": np.asarray(arrays["converged"], bool),
                        "evaluations": arrays["evaluations"]},
            info={"state": state, "gamma": float(attrs["gamma"]), "temperature": float(attrs["temperature"])})

    for kind, files in out.items():
        if files:
            _log(f"{kind}: {len(files)} files, {sum(len(f['energy']) for f in files.values())} frames")
    keys = {"samples": lambda p: p.stem, "reconstruction": lambda p: (p.parent.name, p.stem),
            "generation": lambda p: (p.parent.name, p.stem), "minima": lambda p: p.stem, "quench": lambda p: p.stem}
    return StageResult(outputs={kind: _writer(files, keys[kind]) for kind, files in out.items()},
                       values={"frames": out})
