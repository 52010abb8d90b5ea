"""Stages of workflow/rules/quench.smk: minima of the exact energy (LJ + gravity, C++ energy and forces).

    quench              MC samples -> their inherent structures (local minima of the exact energy)
    reference_minimum   basin hopping on the exact energy, several seeds; CCD values at gamma = 0

Energies are totals in eps, gravity included; lengths in sigma. The helpers here (a file's system, the exact
energy, the VAEs' splits of a samples file) serve vaepipe.stages.minimize too.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping

import numpy as np

from vaepipe.datasets import assign_splits
from vaepipe.energy import energy_kwargs, potential_energy
from vaepipe.minimize import basin_hopping, quench as quench_to_minima
from vaepipe.io.arrays import QUENCH_FORMAT, REFERENCE_FORMAT, read_arrays, write_arrays
from vaepipe.io.samples import read_samples
from vaepipe.seeds import derive_seed
from vaepipe.stages import StageResult, path, wildcard

__all__ = ["quench", "reference_minimum", "cluster_minimum", "exact_energy", "quench_configurations", "sample_splits",
           "system_of"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def system_of(attrs: Mapping[str, Any]) -> dict:
    """box_length, boundary and cutoff of a samples or array file (an array file writes a cutoff of None as "")."""
    cutoff = attrs.get("cutoff")
    kwargs = energy_kwargs({**attrs, "cutoff": None if isinstance(cutoff, str) and cutoff == "" else cutoff})
    return {"box_length": float(attrs["box_length"]), "boundary": kwargs["boundary"], "cutoff": kwargs["cutoff"]}


def exact_energy(positions, gamma, system) -> np.ndarray:
    return np.asarray(potential_energy(positions, system["box_length"], gamma=float(gamma),
                                       boundary=system["boundary"], cutoff=system["cutoff"]), dtype=np.float64)


def quench_configurations(positions, gamma, system, max_iterations=2000):
    return quench_to_minima(positions, system["box_length"], gamma=float(gamma), boundary=system["boundary"],
                      cutoff=system["cutoff"], max_iterations=max_iterations)


def sample_splits(samples, seed: int, split: Mapping[str, Any]) -> np.ndarray:
    """Each sample's split, the same as the VAEs' (vaepipe.datasets.assign_splits)."""
    states = np.full(len(samples.energy), str(samples.attrs["state"]), dtype=object)
    return assign_splits(states, seed, split["validation_fraction"], split["test_fraction"], chain=samples.chain,
                         block=split["split_block"])


def cluster_minimum(n_particles: int) -> float | None:
    """The Cambridge Cluster Database global minimum of LJ_N (eps), or None when the table lacks N."""
    from importlib import resources

    text = resources.files("vaepipe").joinpath("data/lj_cluster_minima.csv").read_text(encoding="utf-8")
    for line in text.splitlines():
        fields = line.split(",")
        if fields and fields[0].strip().isdigit() and int(fields[0]) == int(n_particles):
            return float(fields[1])
    return None


# --------------------------------------------------------------------------- quench


def quench(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``quench``: ``quench_samples`` MC samples of one state point, evenly spread over the samples file,
    quenched to their inherent structures (:func:`vaepipe.minimize.quench`). Output ``arrays``: positions,
    energy (total, eps), energy_mc (before), sample_index, split, evaluations, converged."""
    samples = read_samples(path(input, "samples"))
    attrs = samples.attrs
    gamma, system = float(attrs["gamma"]), system_of(attrs)
    num = min(int(params["quench_samples"]), len(samples.energy))
    rows = np.unique(np.linspace(0, len(samples.energy) - 1, num).round().astype(np.int64)) if num else \
        np.zeros(0, np.int64)
    split = sample_splits(samples, params["seed"], params["split"])[rows]
    result = quench_configurations(samples.positions[rows], gamma, system)
    energy = np.atleast_1d(result.energy)
    _log(f"{attrs['state']}: {len(rows)} samples quenched; U/N {np.mean(samples.energy[rows]) / samples.positions.shape[1]:.3f}"
         f" -> {np.mean(energy) / samples.positions.shape[1]:.3f} eps (lowest {energy.min():.4f} eps), "
         f"{int(np.sum(result.converged))} converged, {int(np.mean(result.evaluations))} evaluations each")
    arrays = {"positions": result.positions, "energy": energy, "energy_mc": samples.energy[rows],
              "sample_index": rows, "split": split.astype(str), "evaluations": result.evaluations,
              "converged": np.asarray(result.converged)}
    file_attrs = {k: attrs[k] for k in ("state", "gamma", "temperature", "n_particles", "box_length", "dim",
                                        "boundary")}
    file_attrs["cutoff"] = system["cutoff"]
    return StageResult(outputs={"arrays": lambda target, prov: write_arrays(
        target, arrays, {**file_attrs, "provenance": prov}, QUENCH_FORMAT)}, values={"arrays": arrays})


# --------------------------------------------------------------------------- reference minimum


def reference_minimum(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``reference_minimum``: basin hopping on the exact energy at one state point (params ``state_point``
    {gamma, temperature}), ``seeds`` runs of ``steps`` hops; the first seeds start from the lowest inherent
    structures of the source's quench file, the rest from random configurations. Output ``arrays``: positions
    (1, N, dim) of the lowest minimum, seed_energies; attrs energy, seeds_agreeing, evaluations, and at gamma = 0
    the Cambridge Cluster Database value (ccd_energy) and whether the search reached it within 1e-4 eps."""
    state = wildcard(wildcards, "state")
    gamma = float(params["state_point"]["gamma"])
    quenched, qattrs = read_arrays(path(input, "quench"), QUENCH_FORMAT)
    system = system_of(qattrs)
    n, dim = int(qattrs["n_particles"]), int(qattrs["dim"])
    settings = params["reference"]
    # Rescore the quench file's structures at this gamma (the source may be another gamma), lowest first.
    rescored = exact_energy(quenched["positions"], gamma, system)
    order = np.argsort(rescored, kind="stable")
    seeds = int(settings["seeds"])
    num_from_quench = min(seeds // 2, len(order))
    seed = derive_seed(params["seed"], "reference_minimum", state)
    best, seed_energies, evaluations = None, [], 0
    for k, child in enumerate(seed.spawn(seeds)):
        start = quenched["positions"][order[k]] if k < num_from_quench else None
        result = basin_hopping(n, system["box_length"], gamma=gamma, boundary=system["boundary"],
                               cutoff=system["cutoff"], dim=dim, seeds=1, steps=int(settings["steps"]),
                               step_size=float(settings["step_size"]), temperature=float(settings["temperature"]),
                               seed=child, start=start)
        seed_energies.append(result.energy)
        evaluations += result.evaluations
        if best is None or result.energy < best.energy:
            best = result
        _log(f"{state}: seed {k + 1}/{seeds} ({'lowest quenched sample' if start is not None else 'random start'})"
             f": {result.energy:.6f} eps")
    seed_energies = np.asarray(seed_energies)
    agreeing = int(np.sum(seed_energies <= best.energy + float(settings["agreement"])))
    ccd = cluster_minimum(n) if gamma == 0.0 and dim == 3 else None
    file_attrs = {"state": state, "gamma": gamma, "temperature": float(params["state_point"]["temperature"]),
                  "n_particles": n, "box_length": system["box_length"], "dim": dim, "boundary": system["boundary"],
                  "cutoff": system["cutoff"], "energy": best.energy, "seeds_agreeing": agreeing,
                  "evaluations": evaluations, "ccd_energy": math.nan if ccd is None else ccd,
                  "ccd_reached": bool(ccd is not None and abs(best.energy - ccd) <= 1e-4)}
    _log(f"{state}: lowest {best.energy:.6f} eps, {agreeing}/{seeds} seeds agree"
         + (f"; CCD LJ{n} {ccd:.6f} ({'reached' if file_attrs['ccd_reached'] else 'NOT reached'})"
            if ccd is not None else ""))
    arrays = {"positions": best.positions[None], "seed_energies": seed_energies}
    return StageResult(outputs={"arrays": lambda target, prov: write_arrays(
        target, arrays, {**file_attrs, "provenance": prov}, REFERENCE_FORMAT, same_rows=False)},
        seed=seed, values={"attrs": file_attrs, "arrays": arrays})


