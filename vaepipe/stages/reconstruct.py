"""Stages of workflow/rules/reconstruct.smk: what each VAE decodes, turned back into particles and judged as
physics, and the latent energy landscape.

- :func:`reconstruct` (every representation): the test configurations encoded, decoded, and placed as particles
  (:meth:`~vaepipe.representations.Representation.decode_positions`: Gaussian deposits fitted to voxel grids,
  anchored classical MDS of distance matrices, coordinates as they are); their validity, permutation-aware RMSD
  in the box frame and energy error, beside the baselines that bound them (the nearest training configuration;
  two random configurations of the same state point). The distance VAE also gets the seed's Gram-matrix steps
  (MDS + Kabsch alignment, SMACOF, the learned "Model 2").
- :func:`landscape`: the energy of configurations decoded on the plane of the two leading principal components
  of a VAE's latent means.

Energies are the sampler's own (:mod:`vaepipe.energy`), gravity included; positions in sigma, energies in eps.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping

import numpy as np

from vaepipe import analysis, plots, representations, structure, training
from vaepipe.datasets import TestSet, TrainingData, example_rows, load_test_set
from vaepipe.energy import total_energy
from vaepipe.io.arrays import RECONSTRUCTION_FORMAT, write_arrays
from vaepipe.io.latent import read_latent
from vaepipe.io.models import read_model
from vaepipe.reconstruct import align, align_permutation, classical_mds, smacof
from vaepipe.seeds import derive_seed, seed_int
from vaepipe.stages import StageResult, figure, json_record, path, paths, wildcard

__all__ = ["reconstruct", "landscape", "decoded_positions", "reconstruction_baselines"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _median(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.nanmedian(x)) if np.isfinite(x).any() else math.nan


def decoded_positions(model, representation: str, features: np.ndarray, attrs: Mapping[str, Any]):
    """Encode (posterior means), decode, and place as particles: (decoded features, positions (S, N, dim))."""
    z_mean, _ = training.encode(model, features)
    decoded = np.asarray(model.decoder.predict(z_mean, batch_size=256, verbose=0))
    return decoded, representations.get(representation).decode_positions(decoded, attrs)


def reconstruction_baselines(data: TestSet, seed: np.random.SeedSequence) -> dict[str, np.ndarray]:
    """Per test configuration (in ``data``'s test order): the permutation-aware RMSD in the box frame to its
    nearest training configuration of the same state point, and to a random other test configuration of it."""
    split, states = data.labels["split"].to_numpy(), data.labels["state"].to_numpy()
    test_rows = np.flatnonzero(split == "test")
    nearest, random_pair = np.empty(test_rows.size), np.empty(test_rows.size)
    rng = np.random.default_rng(seed)
    for state in dict.fromkeys(states[test_rows].tolist()):
        mine = states[test_rows] == state
        queries = data.positions[test_rows[mine]]
        nearest[mine] = structure.nearest_rmsd(queries, data.positions[(split == "train") & (states == state)])[0]
        partner = (np.arange(len(queries)) + rng.integers(1, max(len(queries), 2), len(queries))) % len(queries)
        random_pair[mine] = structure.matched_rmsd(queries, queries[partner])
    return {"rmsd_nearest_training": nearest, "rmsd_random_pair": random_pair}


def reconstruct(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``reconstruct``: the test configurations of one representation's VAE (wildcard ``representation``)
    back as particles. Outputs ``arrays`` (per test configuration), ``metrics`` and the figures ``examples``,
    ``rmsd`` and ``energy``.

    input : ``model``, ``features`` and ``samples`` (one of each per trained state point, in the same order).
    params : ``seed``, ``split`` and ``reconstruction`` (min_distance; smacof_iterations and learned {...} for the
    distance VAE's extras).
    """
    representation = wildcard(wildcards, "representation")
    training.configure_threads(threads)
    settings = params["reconstruction"]
    full = load_test_set(paths(input, "features"), paths(input, "samples"), params["seed"], params["split"],
                         which=None)
    attrs = full.attrs
    n, box = int(attrs["n_particles"]), float(attrs["box_length"])
    test = full.subset((full.labels["split"] == "test").to_numpy())
    gamma = test.labels["gamma"].to_numpy()
    model = read_model(path(input, "model"))
    decoded, positions = decoded_positions(model, representation, test.features, attrs)
    rmsd = np.atleast_1d(structure.matched_rmsd(positions, test.positions))
    valid = structure.is_valid(positions, box, float(settings["min_distance"]))
    energy_original = total_energy(test.positions, gamma, attrs)
    energy_reconstructed = total_energy(positions, gamma, attrs, coincident="inf")
    error = np.abs(energy_reconstructed - energy_original) / n
    baselines = reconstruction_baselines(full, derive_seed(params["seed"], "reconstruct", representation))
    _log(f"{representation}: {len(test.positions)} test configurations; valid {valid.mean():.3f}; matched RMSD "
         f"median {np.median(rmsd):.3f} sigma (nearest training configuration "
         f"{np.median(baselines['rmsd_nearest_training']):.3f}, random pair "
         f"{np.median(baselines['rmsd_random_pair']):.3f}); |dU|/N median {np.median(error):.3g} eps")
    metrics = {
        "representation": representation, "num_test": int(len(rmsd)),
        "valid_fraction": float(valid.mean()),
        "rmsd_anchored_median": _median(rmsd),
        "rmsd_nearest_training_median": _median(baselines["rmsd_nearest_training"]),
        "rmsd_random_pair_median": _median(baselines["rmsd_random_pair"]),
        "energy_abs_error_per_particle_median": _median(error),
        "energy_error_per_particle_quantiles": np.quantile(
            np.where(np.isfinite(error), (energy_reconstructed - energy_original) / n, np.inf),
            [0.05, 0.25, 0.5, 0.75, 0.95]).tolist(),
        "min_pair_distance_median": _median(structure.min_pair_distance(positions)),
        "min_distance_threshold": float(settings["min_distance"]),
        "states": {state: {"valid_fraction": float(valid[m].mean()), "rmsd_anchored_median": _median(rmsd[m]),
                           "energy_abs_error_per_particle_median": _median(error[m]),
                           "rmsd_nearest_training_median": _median(baselines["rmsd_nearest_training"][m])}
                   for state in dict.fromkeys(test.labels["state"]) for m in [(test.labels["state"] == state).to_numpy()]},
    }
    arrays = {"state": test.labels["state"].to_numpy(dtype=object), "gamma": gamma,
              "sample_index": test.labels["sample_index"].to_numpy(), "original": test.positions,
              "reconstructed": positions, "rmsd": rmsd, "valid": valid.astype(np.int8),
              "min_distance": structure.min_pair_distance(positions), "energy_original": energy_original,
              "energy_reconstructed": energy_reconstructed, **baselines}
    curves = {"VAE, decoded particles": rmsd, "nearest training configuration": baselines["rmsd_nearest_training"],
              "random pair, same state point": baselines["rmsd_random_pair"]}
    if representation == "distance":
        extra_metrics, extra_arrays, extra_curves = _distance_extras(full, test, decoded, settings, params["seed"])
        metrics["distance"] = extra_metrics
        arrays.update(extra_arrays)
        curves.update(extra_curves)
    rows = example_rows(TrainingData(test.features, test.labels.assign(split="test"), attrs))
    matched = np.stack([positions[r][structure.matched_rmsd(test.positions[r], positions[r],
                                                            return_permutation=True)[1]] for r in rows])
    examples = plots.configuration_figure(test.positions[rows], {f"{representation} VAE": matched}, box,
                                          [f"{test.labels['state'][r]} #{test.labels['sample_index'][r]}"
                                           for r in rows])
    energy_plot = plots.energy_mapping_figure(energy_original / n, energy_reconstructed / n, None, gamma)
    file_attrs = {k: attrs[k] for k in ("n_particles", "dim", "box_length", "boundary", "cutoff",
                                        "tail_correction") if k in attrs}
    file_attrs["representation"] = representation

    def write_arrays_file(target, prov):
        write_arrays(target, arrays, {**file_attrs, "provenance": prov}, RECONSTRUCTION_FORMAT)

    return StageResult(
        outputs={"arrays": write_arrays_file, "metrics": json_record(metrics), "examples": figure(examples),
                 "rmsd": figure(plots.rmsd_figure(curves)), "energy": figure(energy_plot)},
        seed=derive_seed(params["seed"], "reconstruct", representation),
        values={"arrays": arrays, "metrics": metrics})


def _distance_extras(full: TestSet, test: TestSet, decoded: np.ndarray, settings: Mapping[str, Any], seed: int):
    """The seed's Gram-matrix route for decoded distance matrices: classical MDS aligned onto the original
    (Kabsch, in the decoded order and permutation-aware), its floor on the original matrices, SMACOF, and the
    learned "Model 2" (a dense network from a matrix to coordinates, trained on the original matrices)."""
    from vaepipe.models.regressor import train_coordinate_regressor

    attrs = full.attrs
    n, dim, box, scale = int(attrs["n_particles"]), int(attrs["dim"]), float(attrs["box_length"]), \
        float(attrs["distance_scale"])
    matrices = decoded.astype(np.float64) * scale
    mds = classical_mds(matrices[:, :n, :n], dim, return_info=True)
    _, rmsd_gram = align(mds.positions, test.positions)
    exact = classical_mds(test.features[:, :n, :n].astype(np.float64) * scale, dim)
    _, rmsd_exact = align(exact, test.positions)
    _, rmsd_permutation, _ = align_permutation(mds.positions, test.positions)
    refined, stress = smacof(matrices[:, :n, :n], mds.positions, max_iter=int(settings["smacof_iterations"]))
    _, rmsd_smacof = align(refined, test.positions)
    learned = settings["learned"]
    train = full.subset((full.labels["split"] == "train").to_numpy())
    val = full.subset((full.labels["split"] == "validation").to_numpy())
    regressor = train_coordinate_regressor(train.features, train.positions, val.features, val.positions, learned,
                                           box, seed_int(derive_seed(seed, "reconstruct", "learned")))
    learned_positions = np.asarray(regressor.predict(decoded, batch_size=256, verbose=0)) * box
    _, rmsd_learned = align(learned_positions, test.positions)
    _log(f"distance, Gram route: RMSD median Gram + alignment {np.median(rmsd_gram):.3f}, permutation-aware "
         f"{np.median(rmsd_permutation):.3f}, SMACOF {np.median(rmsd_smacof):.3f}, learned {np.median(rmsd_learned):.3f}; "
         f"exact matrices {np.median(rmsd_exact):.2e} sigma")
    metrics = {"rmsd_gram_median": _median(rmsd_gram), "rmsd_gram_permutation_median": _median(rmsd_permutation),
               "rmsd_smacof_median": _median(rmsd_smacof), "rmsd_learned_median": _median(rmsd_learned),
               "rmsd_exact_median": _median(rmsd_exact),
               "negative_fraction_median": _median(mds.negative_fraction),
               "stress_smacof_median": _median(stress)}
    arrays = {"gram": mds.positions, "rmsd_gram": rmsd_gram, "rmsd_smacof": rmsd_smacof,
              "rmsd_learned": rmsd_learned, "negative_fraction": mds.negative_fraction}
    curves = {"Gram + alignment": rmsd_gram, "SMACOF": rmsd_smacof, "learned (Model 2)": rmsd_learned}
    return metrics, arrays, curves


def landscape(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``landscape``: the energy U_LJ/N of configurations decoded on a grid over the plane of the two
    leading principal components of one representation's latent means (the other components at their mean),
    with the encoded test samples on top. Outputs ``metrics`` and ``figure``.

    input : ``model``, ``latent``, ``features`` (one trained state point's file suffices for the attributes).
    params : ``landscape`` {landscape_grid, landscape_extent}.
    """
    from vaepipe.datasets import load_training_data

    representation = wildcard(wildcards, "representation")
    training.configure_threads(threads)
    model = read_model(path(input, "model"))
    latent, _ = read_latent(path(input, "latent"))
    attrs = load_training_data(paths(input, "features")[:1], 0).attrs
    columns = [c for c in latent.columns if c.startswith("z_mean_")]
    plane = analysis.latent_pca(latent[columns].to_numpy(np.float64))
    settings = params["landscape"]
    extent, steps = float(settings["landscape_extent"]), int(settings["landscape_grid"])
    scale = np.where(plane.scale > 0, plane.scale, 1.0)
    u = np.linspace(-extent, extent, steps)
    grid = np.stack(np.meshgrid(u * scale[0], u * scale[1]), axis=-1).reshape(-1, 2)
    decoded = np.asarray(model.decoder.predict(plane.lift(grid).astype(np.float32), batch_size=256, verbose=0))
    positions = representations.get(representation).decode_positions(decoded, attrs)
    energy = (total_energy(positions, 0.0, attrs, coincident="inf") / positions.shape[1]).reshape(steps, steps)
    test = latent[latent["split"] == "test"]
    projected = plane.project(test[columns].to_numpy(np.float64)) / scale
    metrics = {"representation": representation, "explained_variance": plane.explained.tolist(), "grid": steps,
               "extent_std": extent, "min_energy_per_particle": float(np.min(energy)),
               "fraction_negative": float(np.mean(energy < 0))}
    plot = plots.landscape_figure(u, u, energy, projected, test["gamma"].to_numpy(), plane.explained)
    return StageResult(outputs={"metrics": json_record(metrics), "figure": figure(plot)}, values={"metrics": metrics})
