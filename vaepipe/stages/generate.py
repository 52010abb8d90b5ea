"""Stage of workflow/rules/generate.smk: new configurations from each VAE, judged as physics.

Per trained representation and state point: a Gaussian mixture fitted to the latent means of the state point's
training samples (the aggregate posterior, not N(0, I)), draws from it decoded to particles (each
representation's :meth:`~vaepipe.representations.Representation.decode_positions`), optionally relaxed by k
Metropolis sweeps of the project's sampler, and compared with the state point's Monte Carlo test
configurations: validity, the energy distribution, g(r) and rho(z), and how far each lies from its nearest
training configuration. Positions are in sigma, energies in epsilon.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping

import numpy as np

from vaepipe import representations, structure, training
from vaepipe.datasets import load_test_set
from vaepipe.energy import total_energy
from vaepipe.io.arrays import GENERATED_FORMAT, RECONSTRUCTION_FORMAT, read_arrays, write_arrays
from vaepipe.io.latent import read_latent
from vaepipe.io.models import read_model
from vaepipe.io.samples import read_samples
from vaepipe.sampling import relax
from vaepipe.seeds import derive_seed, seed_int
from vaepipe.stages import StageResult, figure, json_record, multiple, path, paths, wildcard

__all__ = ["generate", "generation_metrics", "sample_mixture"]

#: Generated configurations whose nearest training configuration is searched (the novelty check).
NOVELTY_SAMPLES = 100
#: Bins of g(r) up to this distance (sigma) in the structure figure.
_G_BINS, _G_RANGE = 60, 3.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sample_mixture(z_train: np.ndarray, num: int, components: int, seed: np.random.SeedSequence) -> np.ndarray:
    """``num`` draws from a Gaussian mixture (full covariances) fitted to latent means (S, D); at most one
    component per 5 samples. Returns (num, D) float32, shuffled."""
    from sklearn.mixture import GaussianMixture

    k = int(max(1, min(components, len(z_train) // 5)))
    rng = np.random.default_rng(seed)
    mixture = GaussianMixture(k, covariance_type="full", random_state=seed_int(seed), reg_covar=1e-5)
    mixture.fit(np.asarray(z_train, dtype=np.float64))
    draws = mixture.sample(num)[0]
    return draws[rng.permutation(num)].astype(np.float32)


def _w1_over_std(sample: np.ndarray, reference: np.ndarray) -> float:
    """W1(sample, reference) / std(reference) over all samples; an infinite energy makes it infinite."""
    from scipy.stats import wasserstein_distance

    sample = np.asarray(sample, dtype=np.float64)
    if not np.all(np.isfinite(sample)):
        return math.inf
    std = float(np.std(reference, ddof=1))
    return float(wasserstein_distance(sample, reference) / std) if std > 0 else math.nan


def generation_metrics(generated: Mapping[int, tuple[np.ndarray, np.ndarray]], mc_test: np.ndarray,
                       mc_test_energy: np.ndarray, n_particles: int, box_length: float, min_distance: float) -> dict:
    """Per state point: ``generated`` {k: (positions (S, N, dim), total energies (S,))} with k = 0 as decoded,
    ``mc_test`` (T, N, dim) and its energies. Energies compare U/N, gravity included, by W1 / (MC std), over
    all samples (``*_valid``: the valid ones only)."""
    reference = mc_test_energy / n_particles
    positions, energy = generated[0]
    valid = structure.is_valid(positions, box_length, min_distance)
    out = {
        "num_generated": int(len(positions)),
        "valid_fraction": float(valid.mean()),
        "energy_w1_over_std": _w1_over_std(energy / n_particles, reference),
        "energy_w1_over_std_valid": (_w1_over_std(energy[valid] / n_particles, reference) if valid.any()
                                     else math.nan),
        "pair_distance_w1": structure.pair_distance_w1(positions, mc_test),
        "density_profile_w1": structure.density_profile_w1(positions, mc_test),
        "energy_per_particle_median": float(np.median(energy / n_particles)),
        "mc_energy_per_particle_median": float(np.median(reference)),
        "min_pair_distance_median": float(np.median(structure.min_pair_distance(positions))),
    }
    for k, (relaxed, relaxed_energy) in generated.items():
        if k == 0:
            continue
        out[f"valid_fraction_relaxed{k}"] = float(structure.valid_fraction(relaxed, box_length, min_distance))
        out[f"energy_w1_over_std_relaxed{k}"] = _w1_over_std(relaxed_energy / n_particles, reference)
        out[f"pair_distance_w1_relaxed{k}"] = structure.pair_distance_w1(relaxed, mc_test)
        out[f"density_profile_w1_relaxed{k}"] = structure.density_profile_w1(relaxed, mc_test)
    return out


def _density_curve(positions: np.ndarray, box_length: float, bins: int = 50):
    z = structure.heights(positions)
    counts, edges = np.histogram(z, bins=bins, range=(0.0, box_length))
    return 0.5 * (edges[1:] + edges[:-1]), counts / (len(positions) * (edges[1] - edges[0]))


def generate(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``generate``: generated configurations of one representation (wildcard ``representation``) at every
    trained state point. Outputs ``arrays`` (one file per state point, in the rule's order), ``metrics``, and the
    figures ``histograms`` (energies) and ``structure`` (g(r), rho(z)).

    input : ``model``, ``latent``, ``features`` and ``samples`` (one of each per trained state point, same order),
    ``reconstruction`` (the reconstruct rule's arrays of this representation, for the figure).
    params : ``seed``, ``split``, ``generation`` {num_generated, mixture_components, relax_sweeps, min_distance}.
    """
    from vaepipe.plots import generation as plots

    representation = wildcard(wildcards, "representation")
    training.configure_threads(threads)
    settings = params["generation"]
    rep = representations.get(representation)
    model = read_model(path(input, "model"))
    latent, _ = read_latent(path(input, "latent"))
    data = load_test_set(paths(input, "features"), paths(input, "samples"), params["seed"], params["split"],
                         which=None)
    attrs = data.attrs
    n, box = int(attrs["n_particles"]), float(attrs["box_length"])
    z_columns = [c for c in latent.columns if c.startswith("z_mean_")]
    recon, _ = read_arrays(path(input, "reconstruction"), RECONSTRUCTION_FORMAT)
    sweeps = sorted({int(k) for k in settings["relax_sweeps"]})
    per_state, files, energies, w1, curves = {}, {}, {}, {}, {}
    for sample_path in paths(input, "samples"):
        samples = read_samples(sample_path)
        state = str(samples.attrs["state"])
        gamma, temperature = float(samples.attrs["gamma"]), float(samples.attrs["temperature"])
        seed = derive_seed(params["seed"], "generate", f"{representation}:{state}")
        mixture_seed, relax_seed = seed.spawn(2)
        rows = (latent["state"] == state).to_numpy()
        z_train = latent.loc[rows & (latent["split"] == "train").to_numpy(), z_columns].to_numpy(np.float64)
        z = sample_mixture(z_train, int(settings["num_generated"]), int(settings["mixture_components"]),
                           mixture_seed)
        decoded = np.asarray(model.decoder.predict(z, batch_size=256, verbose=0))
        positions = rep.decode_positions(decoded, attrs)
        generated = {0: (positions, total_energy(positions, gamma, attrs, coincident="inf"))}
        system = {"n_particles": n, "box_length": box, "dim": int(attrs["dim"]),
                  "boundary": str(attrs.get("boundary", "reflect")), "cutoff": _cutoff(attrs),
                  "tail_correction": bool(attrs.get("tail_correction", False))}
        generated.update(relax(positions, sweeps, system, {"gamma": gamma, "temperature": temperature},
                               float(samples.attrs["step_size"]), relax_seed))
        in_state = (data.labels["state"] == state).to_numpy()
        test = in_state & (data.labels["split"] == "test").to_numpy()
        train = in_state & (data.labels["split"] == "train").to_numpy()
        mc_test, mc_train = data.positions[test], data.positions[train]
        mc_energy = total_energy(mc_test, gamma, attrs)
        metrics = generation_metrics(generated, mc_test, mc_energy, n, box, float(settings["min_distance"]))
        # The metric's own noise: the training configurations against the same test configurations.
        metrics["energy_w1_over_std_mc_train"] = _w1_over_std(total_energy(mc_train, gamma, attrs) / n,
                                                              mc_energy / n)
        # Novelty: the nearest training configuration (permutation-aware RMSD in the box frame) of generated
        # configurations, against that of Monte Carlo test configurations.
        nearest_generated, _ = structure.nearest_rmsd(positions[:NOVELTY_SAMPLES], mc_train)
        nearest_test, _ = structure.nearest_rmsd(mc_test, mc_train)
        metrics["nearest_training_rmsd_median"] = float(np.median(nearest_generated))
        metrics["nearest_training_rmsd_median_mc_test"] = float(np.median(nearest_test))
        metrics.update(state=state, gamma=gamma, temperature=temperature, mixture_components=int(
            max(1, min(int(settings["mixture_components"]), len(z_train) // 5))))
        per_state[state] = metrics
        kmax = sweeps[-1]
        _log(f"{representation} {state}: valid {metrics['valid_fraction']:.3f}, energy W1/std as decoded "
             f"{metrics['energy_w1_over_std']:.3g}, after {kmax} sweeps "
             f"{metrics[f'energy_w1_over_std_relaxed{kmax}']:.3g} (MC train vs test "
             f"{metrics['energy_w1_over_std_mc_train']:.3g}); nearest training RMSD {metrics['nearest_training_rmsd_median']:.3f} "
             f"(MC test {metrics['nearest_training_rmsd_median_mc_test']:.3f}) sigma")
        arrays = {"positions": positions, "energy": generated[0][1], "z": z}
        for k in sweeps:
            arrays[f"positions_relaxed{k}"], arrays[f"energy_relaxed{k}"] = generated[k]
        file_attrs = {"state": state, "gamma": gamma, "temperature": temperature, "representation": representation,
                      "n_particles": n, "box_length": box, "dim": int(attrs["dim"]),
                      "boundary": system["boundary"], "relax_sweeps": sweeps,
                      "step_size": float(samples.attrs["step_size"])}
        files[state] = (arrays, file_attrs)
        in_recon = np.asarray(recon["state"]).astype(str) == state
        energies[state] = {"Monte Carlo (test)": mc_energy / n,
                           "reconstructed": np.asarray(recon["energy_reconstructed"])[in_recon] / n,
                           "generated (as decoded)": generated[0][1] / n,
                           f"generated, {kmax} sweeps": generated[kmax][1] / n}
        w1[state] = {"reconstructed": _w1_over_std(energies[state]["reconstructed"], mc_energy / n),
                     "generated (as decoded)": metrics["energy_w1_over_std"],
                     f"generated, {kmax} sweeps": metrics[f"energy_w1_over_std_relaxed{kmax}"]}
        curves[state] = {
            "g": {label: structure.radial_distribution(x, box, _G_BINS, _G_RANGE) for label, x in (
                ("MC (test)", mc_test), ("generated (as decoded)", positions),
                (f"generated, {kmax} sweeps", generated[kmax][0]))},
            "rho": {label: _density_curve(x, box) for label, x in (
                ("MC (test)", mc_test), ("generated (as decoded)", positions),
                (f"generated, {kmax} sweeps", generated[kmax][0]))}}
    summary = {key: float(np.mean([m[key] for m in per_state.values()]))
               for key in next(iter(per_state.values())) if key not in ("state", "gamma", "temperature")}
    metrics = {"representation": representation, "relax_sweeps": sweeps, "mean_over_states": summary,
               "states": per_state}
    histograms = plots.state_energy_figure(energies, w1, representation, n)
    structure_plot = plots.structure_figure(curves, representation)

    @multiple
    def write_files(targets, prov):
        for target, (arrays, file_attrs) in zip(targets, files.values()):
            write_arrays(target, arrays, {**file_attrs, "provenance": prov}, GENERATED_FORMAT)

    return StageResult(outputs={"arrays": write_files, "metrics": json_record(metrics),
                                "histograms": figure(histograms), "structure": figure(structure_plot)},
                       seed=derive_seed(params["seed"], "generate", representation),
                       values={"metrics": metrics, "files": files})


def _cutoff(attrs: Mapping[str, Any]):
    value = attrs.get("cutoff")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
