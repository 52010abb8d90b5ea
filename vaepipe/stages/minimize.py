"""Stage of workflow/rules/minimize.smk: energy minima through a VAE's latent space, against the exact ones of
vaepipe.stages.quench, with the functional of vaepipe.stages.functional.

    minimize            latent descent (A: exact energy of decoded particles; B: F_theta of decoded densities),
                        descent directly on the density, and the quench-only baseline, against the reference

Energies are totals in eps (gravity included unless named U_LJ); lengths in sigma. A state point's
configurations come from its own samples, or, for a gamma that was never sampled (minimization.transfer_gamma),
from the nearest sampled gamma at the same temperature (its "source").
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping

import numpy as np

from vaepipe import structure
from vaepipe.energy import total_energy
from vaepipe.io.arrays import MINIMIZATION_FORMAT, REFERENCE_FORMAT, read_arrays, write_arrays
from vaepipe.io.samples import read_samples
from vaepipe.seeds import derive_seed
from vaepipe.stages import StageResult, figure, json_record, path, paths, wildcard
from vaepipe.stages.functional import densities, read_functional, setup_tensorflow, voxel_width
from vaepipe.stages.quench import quench_configurations, sample_splits, system_of

__all__ = ["minimize", "METHODS"]

#: The minimization methods, in the order of the files' datasets and the figures.
METHODS = ("latent_exact", "latent_functional", "grid_descent", "quench_only")
#: Validity threshold of a configuration along a path (sigma), as the issue defines it.
MIN_DISTANCE = 0.8


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)




# --------------------------------------------------------------------------- minimize


def _starts(feature_path, samples, seed, split, num, rng):
    """Rows of the features file: ``num`` test samples evenly spread, and ``num`` training samples drawn at
    random (for the aggregate posterior), and the file's features."""
    from vaepipe.io.features import read_features

    feats = read_features(feature_path)
    rows = np.asarray(feats.sample_index)
    s = sample_splits(samples, seed, split)[rows]
    test, train = np.flatnonzero(s == "test"), np.flatnonzero(s == "train")
    if len(test) == 0 or len(train) == 0:
        raise ValueError(f"{feature_path} has {len(test)} test and {len(train)} training samples; the minimization "
                         f"needs both: sample more (sampling.samples_per_chain) or raise vae.test_fraction")
    pick_test = test[np.unique(np.linspace(0, len(test) - 1, min(num, len(test))).round().astype(int))]
    pick_train = rng.choice(train, size=min(num, len(train)), replace=False)
    return np.concatenate([pick_test, np.sort(pick_train)]), len(pick_test), feats


def _latent_starts(model, features, num_test, rng):
    """Encoder means of the first ``num_test`` inputs; draws from the aggregate posterior (mean + its own
    posterior noise) of the rest."""
    z_mean, z_log_var, _ = model.encoder.predict(features, batch_size=256, verbose=0)
    z = np.asarray(z_mean, dtype=np.float64).copy()
    noise = rng.standard_normal(z[num_test:].shape)
    z[num_test:] += np.exp(0.5 * np.asarray(z_log_var, dtype=np.float64)[num_test:]) * noise
    return z.astype(np.float32)


def _fit(grids, attrs, n, box, boundary, init=None, quick=False):
    from vaepipe.gaussfit import fit_gaussian_deposits

    width = voxel_width(attrs) or float(attrs["voxel_size"]) / math.sqrt(12.0)
    kwargs = dict(max_iter=20, max_repairs=0) if quick else {}
    return fit_gaussian_deposits(np.clip(np.asarray(grids, dtype=np.float64), 0.0, None), n, box, width,
                                 normalize="none", boundary=boundary, init=init, dim=int(attrs["dim"]), **kwargs)


def _separated(positions: np.ndarray, box: float, gap: float = 0.05) -> np.ndarray:
    """Configurations with particles on the same point (a Gaussian fit of a poor density can put several there),
    the later particle of each such pair moved ``gap`` sigma along a direction fixed by its index: the forces are
    defined again, and nothing else moves. Deterministic."""
    out = np.array(positions, dtype=np.float64, copy=True)
    n, dim = out.shape[-2:]
    directions = np.random.default_rng(0).standard_normal((n, dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    for x in out:
        for _ in range(10 * n):
            d = np.sqrt(np.sum((x[:, None] - x[None]) ** 2, axis=-1)) + 10.0 * np.eye(n)
            i, j = np.unravel_index(np.argmin(d), d.shape)
            if d[i, j] >= 1e-3:
                break
            k = max(i, j)
            step = gap * directions[k]
            x[k] = np.clip(x[k] + np.where((x[k] + step < 0) | (x[k] + step > box), -step, step), 0.0, box)
    return out


def _best_after_quench(positions, gamma, system):
    """Quench every configuration; (best positions, best energy, energies before, energies after, evaluations)."""
    before = total_energy(positions, gamma, system, coincident="inf")
    result = quench_configurations(_separated(positions, system["box_length"]), gamma, system)
    after = np.atleast_1d(result.energy)
    k = int(np.argmin(after))
    return result.positions[k], float(after[k]), before, after, int(np.sum(result.evaluations))


def minimize(input, params: Mapping[str, Any], wildcards, threads: int = 1) -> StageResult:
    """Rule ``minimize``: at one state point (params ``state_point``), from the same starts (encoder means of
    ``starts`` test configurations of the source state point, and as many draws from the aggregate posterior of
    its training configurations), descend

    - A: the exact energy of the particle VAE's decoded configuration, over z;
    - B: F_theta(n(z)) + 4 gamma sum_c z_c n_c over the voxel VAE's z (positions: Gaussians fitted to n);
    - the direct route: the same energy over the density itself (projected onto n >= 0, sum N);

    each for ``steps`` steps, then quench the end points; and quench the MC configurations behind the starts
    (quench-only). Everything is compared with the lowest of the reference minima of every state point,
    re-scored and quenched at this gamma (cross-polishing). Outputs ``record`` (JSON), ``arrays`` (HDF5),
    ``figure`` (descent curves and best configurations)."""
    from vaepipe.latent_descent import (decoded_energy, descend, functional_energy, grid_energy,
                                        project_density)
    from vaepipe.plots import minimization as plots

    state = wildcard(wildcards, "state")
    gamma = float(params["state_point"]["gamma"])
    temperature = float(params["state_point"]["temperature"])
    settings = params["minimization"]
    setup_tensorflow(threads)
    samples = read_samples(path(input, "samples"))
    system = system_of(samples.attrs)
    box, n = system["box_length"], int(samples.attrs["n_particles"])
    seed = derive_seed(params["seed"], "minimize", state)
    rng = np.random.default_rng(seed)
    num = int(settings["starts"])
    steps, lr, interval = int(settings["steps"]), float(settings["learning_rate"]), int(settings["record_interval"])

    # --- the reference: the lowest of every state point's reference minimum, quenched at this gamma
    ref_candidates, own_attrs, own_positions = [], None, None
    for ref_path in paths(input, "references"):
        arrays, rattrs = read_arrays(ref_path, REFERENCE_FORMAT)
        ref_candidates.append(arrays["positions"][0])
        if rattrs["state"] == state:
            own_attrs, own_positions = rattrs, arrays["positions"][0]
    if own_attrs is None:
        raise ValueError(f"none of the reference files {paths(input, 'references')} holds state point {state!r}")
    # Cross-polishing: every state point's reference minimum, re-scored and quenched at this gamma. E_min(gamma) is
    # nondecreasing and concave, so a lower energy here means this state point's own search missed.
    polished = quench_configurations(np.stack(ref_candidates), gamma, system)
    kp = int(np.argmin(polished.energy))
    known = {"basinhopping": (float(own_attrs["energy"]), own_positions),
             "cross_polished": (float(polished.energy[kp]), polished.positions[kp])}
    ccd = float(own_attrs["ccd_energy"])
    source = "ccd" if math.isfinite(ccd) else "basinhopping"
    reference_energy = ccd if source == "ccd" else min(e for e, _ in known.values())

    # --- starts: the same MC configurations for every method
    particle_model = read_functional(path(input, "particle_model"))
    rows, num_test, pfeats = _starts(path(input, "particle_features"), samples, params["seed"], params["split"],
                                     num, rng)
    mc_starts = samples.positions[np.asarray(pfeats.sample_index)[rows]]
    z_particles = _latent_starts(particle_model, np.asarray(pfeats.features)[rows], num_test, rng)
    from vaepipe.io.features import read_features

    vfeats = read_features(path(input, "voxel_features"))
    vindex = {int(s): i for i, s in enumerate(np.asarray(vfeats.sample_index))}
    vrows = [vindex[int(s)] for s in np.asarray(pfeats.sample_index)[rows]]
    voxel_model = read_functional(path(input, "voxel_model"))
    functional = read_functional(path(input, "functional"))
    z_voxel = _latent_starts(voxel_model, np.asarray(vfeats.features)[vrows], num_test, rng)
    vattrs = dict(vfeats.attrs)
    _log(f"{state}: gamma {gamma:g}, reference {reference_energy:.6f} eps ({source}); {len(rows)} starts "
         f"({num_test} test encoder means, {len(rows) - num_test} aggregate-posterior draws), {steps} steps each")

    path_exact, path_pred, path_valid = {}, {}, {}

    # --- A: exact energy of decoded particles
    energy_a = decoded_energy(particle_model.decoder, box, gamma)
    a_exact, a_valid = [], []

    def record_a(step, z, e):
        x = np.clip(np.asarray(particle_model.decoder.predict(z, verbose=0), dtype=np.float64) * box, 0.0, box)
        a_exact.append(total_energy(x, gamma, system, coincident="inf"))
        a_valid.append(structure.is_valid(x, box, MIN_DISTANCE))

    result_a = descend(energy_a, z_particles, steps, lr, settings["optimizer"], interval, on_record=record_a)
    decoded_a = np.clip(np.asarray(particle_model.decoder.predict(result_a.final, verbose=0), dtype=np.float64)
                        * box, 0.0, box)
    path_exact["latent_exact"], path_pred["latent_exact"] = np.asarray(a_exact), result_a.energy
    path_valid["latent_exact"] = np.asarray(a_valid)
    best_a, e_a, before_a, _, q_evals_a = _best_after_quench(decoded_a, gamma, system)
    _log(f"{state}: A (exact energy, particle VAE): decoded {np.min(before_a):.4f}, after quench {e_a:.4f} eps")

    # --- B: the learned functional on the voxel VAE's densities, and the direct route on the density
    def fitted_record(store_exact, store_valid, to_grid):
        previous = [None]

        def record(step, variables, e):
            grids = to_grid(variables)
            x = _fit(grids, vattrs, n, box, system["boundary"], init=previous[0], quick=True)
            previous[0] = x
            store_exact.append(total_energy(x, gamma, system, coincident="inf"))
            store_valid.append(structure.is_valid(x, box, MIN_DISTANCE))
        return record

    def voxel_density(z):
        return densities(np.asarray(voxel_model.decoder.predict(z, verbose=0)), n)

    b_exact, b_valid = [], []
    energy_b = functional_energy(voxel_model.decoder, functional, n, box, gamma)
    result_b = descend(energy_b, z_voxel, steps, lr, settings["optimizer"], interval,
                       on_record=fitted_record(b_exact, b_valid, voxel_density))
    path_exact["latent_functional"], path_pred["latent_functional"] = np.asarray(b_exact), result_b.energy
    path_valid["latent_functional"] = np.asarray(b_valid)
    fitted_b = _fit(voxel_density(result_b.final), vattrs, n, box, system["boundary"])
    best_b, e_b, before_b, after_b, q_evals_b = _best_after_quench(fitted_b, gamma, system)
    predicted_b = float(result_b.energy[-1][int(np.argmin(after_b))])
    _log(f"{state}: B (functional, voxel VAE): predicted {np.min(result_b.energy[-1]):.4f}, fitted "
         f"{np.min(before_b):.4f}, after quench {e_b:.4f} eps")

    g_exact, g_valid = [], []
    start_density = voxel_density(z_voxel)
    result_g = descend(grid_energy(functional, box, gamma), start_density, steps, lr, settings["optimizer"],
                       interval, project=project_density(n),
                       on_record=fitted_record(g_exact, g_valid, lambda v: np.asarray(v)))
    path_exact["grid_descent"], path_pred["grid_descent"] = np.asarray(g_exact), result_g.energy
    path_valid["grid_descent"] = np.asarray(g_valid)
    fitted_g = _fit(result_g.final, vattrs, n, box, system["boundary"])
    best_g, e_g, before_g, _, q_evals_g = _best_after_quench(fitted_g, gamma, system)
    _log(f"{state}: direct descent on the density: predicted {np.min(result_g.energy[-1]):.4f}, fitted "
         f"{np.min(before_g):.4f}, after quench {e_g:.4f} eps")

    # --- quench-only: the MC configurations behind the starts
    quenched = quench_configurations(mc_starts, gamma, system)
    k = int(np.argmin(quenched.energy))
    best_q, e_q = quenched.positions[k], float(quenched.energy[k])
    _log(f"{state}: quench-only from the same MC starts: {e_q:.4f} eps")

    energies = {"latent_exact": e_a, "latent_functional": e_b, "grid_descent": e_g, "quench_only": e_q}
    # The reference is the lowest energy known at this gamma: a method that ends below the global searches
    # replaces it (reference_from says which did; at gamma = 0 the CCD value stands, and no method can beat it).
    best = {"latent_exact": best_a, "latent_functional": best_b, "grid_descent": best_g, "quench_only": best_q}
    known.update({f"method:{m}": (e, best[m]) for m, e in energies.items()})
    reference_from = min(known, key=lambda name: known[name][0])
    if source != "ccd":
        reference_energy = known[reference_from][0]
    reference_positions = known[reference_from][1]
    starts = len(rows)
    evaluations = {"latent_exact": steps * starts + q_evals_a, "latent_functional": steps * starts + q_evals_b,
                   "grid_descent": steps * starts + q_evals_g, "quench_only": int(np.sum(quenched.evaluations))}
    valid = {m: float(np.mean(path_valid[m])) for m in path_valid}
    valid["quench_only"] = 1.0
    record = {
        "state": state, "gamma": gamma, "temperature": temperature, "n_particles": n, "box_length": box,
        "source_state": str(samples.attrs["state"]), "starts": starts, "starts_test": num_test, "steps": steps,
        "energy_reference": reference_energy, "reference_source": source, "reference_from": reference_from,
        "reference_seeds_agreeing": int(own_attrs["seeds_agreeing"]),
        "reference_basinhopping": known["basinhopping"][0], "reference_cross_polished": known["cross_polished"][0],
        "energy_latent_exact": e_a, "energy_latent_exact_before_quench": float(np.min(before_a)),
        "energy_latent_functional": e_b, "energy_latent_functional_predicted": predicted_b,
        "energy_latent_functional_before_quench": float(np.min(before_b)),
        "energy_grid_descent": e_g, "energy_grid_descent_predicted": float(np.min(result_g.energy[-1])),
        "energy_grid_descent_before_quench": float(np.min(before_g)),
        "energy_quench_only": e_q,
        "evaluations": evaluations, "valid_path_fraction": valid,
        # What each route's functional claims against what its configuration has, at the end of the path:
        "predicted_minus_exact_latent_functional": float(np.median(result_b.energy[-1] - np.asarray(b_exact[-1]))),
        "predicted_minus_exact_grid_descent": float(np.median(result_g.energy[-1] - np.asarray(g_exact[-1]))),
    }
    for m, e in energies.items():
        record[f"relative_gap_{m}"] = (e - reference_energy) / abs(reference_energy)
    _log(f"{state}: relative gaps " + ", ".join(f"{m} {record[f'relative_gap_{m}']:+.4f}" for m in energies)
         + "; valid along the paths " + ", ".join(f"{m} {v:.3f}" for m, v in valid.items()))

    best = {"reference": reference_positions, **best}
    path_methods = ("latent_exact", "latent_functional", "grid_descent")
    arrays = {**{name: np.asarray(x, dtype=np.float64) for name, x in best.items()},
              "path_step": result_a.steps,
              "path_energy_exact": np.stack([path_exact[m] for m in path_methods]),
              "path_energy_predicted": np.stack([path_pred[m] for m in path_methods]),
              "path_valid": np.stack([path_valid[m] for m in path_methods])}
    file_attrs = {"state": state, "gamma": gamma, "temperature": temperature, "n_particles": n, "box_length": box,
                  "dim": int(samples.attrs["dim"]), "path_methods": list(path_methods)}
    fig = plots.minimization_figure(state, result_a.steps, path_exact, path_pred, best, energies, reference_energy,
                                    box)
    return StageResult(outputs={"record": json_record(record),
                                "arrays": lambda target, prov: write_arrays(
                                    target, arrays, {**file_attrs, "provenance": prov}, MINIMIZATION_FORMAT,
                                    same_rows=False),
                                "figure": figure(fig)},
                       seed=seed, values={"record": record, "arrays": arrays})
