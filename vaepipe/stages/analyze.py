"""Stages of workflow/rules/analyze.smk: the latent space against gamma, anomaly detection, and the summary, each
judged against the references that physics sets.

- :func:`latent_analysis`: gamma clustering of one representation's latent means, beside the ceiling: at fixed T
  the Boltzmann weight depends on gamma only through S = sum_i z_i, so the k-NN accuracy of gamma from S alone
  is what any latent space can hope for.
- :func:`anomaly`: ROC of model-based anomaly scores against five kinds of anomaly, beside the physics
  references (the ceiling -S for a held-out gamma; the energy and the closest pair for overlaps and random
  configurations; for tilted layers, which keep both the energy and S exactly, those two at chance).
- :func:`summary`: ``results/summary.json``, the numbers users read first (:func:`summarize`).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping, Sequence

import numpy as np

from vaepipe import analysis, plots, representations, structure, training
from vaepipe.datasets import TestSet, load_test_set
from vaepipe.energy import total_energy
from vaepipe.io._files import read_json
from vaepipe.io.latent import read_latent
from vaepipe.io.models import read_model
from vaepipe.io.samples import read_samples
from vaepipe.io.summary import SUMMARY_KEYS, write_summary, write_summary_table
from vaepipe.seeds import derive_seed, seed_int
from vaepipe.stages import StageResult, figure, json_record, path, paths

__all__ = ["latent_analysis", "anomaly", "summary", "summarize", "anomaly_scores", "MODEL_SCORES"]

#: Model-based anomaly scores (higher = more anomalous): the negative ELBO (the model's reconstruction
#: likelihood of its decoded posterior mean + KL, nats); the representation's reconstruction error; the latent
#: means' negative log density under a Gaussian mixture of the training latent means, and the same for the
#: model's state block alone (the particle VAE's profile dimensions; the whole latent otherwise); and the input's pair
#: energy per particle minus that of its own reconstruction (epsilon): the model says what a physical version of
#: the input looks like, physics says how far the input is from it.
MODEL_SCORES = ("neg_elbo", "recon_error", "latent_nll", "energy_gap", "decoded_sum_z")
ANOMALY_KINDS = ("overlap", "uniform", "heldout_gamma", "tilted")
_REFERENCES = {"overlap": ("energy", "closest_pair"), "uniform": ("energy", "closest_pair"),
               "heldout_gamma": ("sum_z",), "tilted": ("energy", "sum_z")}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _sum_heights(latent, sample_paths) -> np.ndarray:
    """S = sum_i z_i (sigma) of every row of a latent file, from the samples files."""
    out = np.full(len(latent), np.nan)
    for sample_path in sample_paths:
        samples = read_samples(sample_path)
        rows = np.flatnonzero((latent["state"] == samples.attrs["state"]).to_numpy())
        out[rows] = samples.positions[latent["sample_index"].to_numpy()[rows], :, -1].sum(axis=1)
    return out


def latent_analysis(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``latent_analysis``: gamma clustering of one representation's latent means (input ``latent``;
    ``samples`` of the trained state points for the ceiling). Outputs ``metrics`` and ``figure``.

    The clustering is judged on the latent's informative dimensions (:func:`vaepipe.analysis.informative_dimensions`:
    signal-to-noise at least half the largest, found without labels): a beta-VAE spreads little information over
    many dimensions, and a k-NN on the whole latent measures mostly the dimensions that know nothing of gravity.
    Beside it: the whole latent's k-NN accuracy, a linear probe of the whole latent, the particle VAE's profile
    block (``profile_dim`` dimensions encoded from the sorted heights), and the ceiling, the k-NN accuracy from
    sum(z) alone. params : ``seed`` and ``analysis`` (knn_neighbors, cv_folds).
    """
    latent, attrs = read_latent(path(input, "latent"))
    representation = attrs.get("representation", "")
    columns = [c for c in latent.columns if c.startswith("z_mean_")]
    z = latent[columns].to_numpy(np.float64)
    z_log_var = latent[[c.replace("z_mean_", "z_log_var_") for c in columns]].to_numpy(np.float64)
    informative = analysis.informative_dimensions(z, z_log_var)
    profile = int(attrs.get("profile_dim", 0))
    z_state = z[:, informative]
    gamma = latent["gamma"].to_numpy(np.float64)
    settings = params["analysis"]
    k, folds = int(settings["knn_neighbors"]), int(settings["cv_folds"])
    seed = seed_int(derive_seed(params["seed"], "latent", representation))
    stats = analysis.gamma_clustering(z_state, gamma, neighbors=k, folds=folds, seed=seed)
    heights = _sum_heights(latent, paths(input, "samples"))
    if stats["num_gammas"] > 1:
        stats["knn_accuracy_full"] = analysis.knn_accuracy(z, gamma, k, folds, seed)[0]
        stats["knn_accuracy_profile"] = (analysis.knn_accuracy(z[:, :profile], gamma, k, folds, seed)[0]
                                         if profile else math.nan)
        stats["knn_accuracy_ceiling"] = analysis.knn_accuracy(heights, gamma, k, folds, seed)[0]
        stats["linear_probe_accuracy"] = analysis.linear_probe_accuracy(z, gamma, folds, seed)
    else:
        stats.update(knn_accuracy_full=math.nan, knn_accuracy_profile=math.nan, knn_accuracy_ceiling=math.nan,
                     linear_probe_accuracy=math.nan)
    stats["judged_on"] = f"{len(informative)} informative dimension{'s' * (len(informative) != 1)}"
    stats["informative_dimensions"] = informative.tolist()
    # The plotted plane: the informative dimensions with the profile block, at least the two most informative.
    snr_order = np.argsort(-(z.std(axis=0) / np.exp(0.5 * z_log_var).mean(axis=0)))
    shown = np.union1d(np.union1d(informative, np.arange(profile)), snr_order[:2])
    plane = analysis.latent_pca(z[:, shown])
    _log(f"{representation}: gamma k-NN accuracy {stats['knn_accuracy']:.3f} on {stats['judged_on']} (whole latent "
         f"{stats['knn_accuracy_full']:.3f}, linear probe {stats['linear_probe_accuracy']:.3f}); ceiling sum(z) "
         f"{stats['knn_accuracy_ceiling']:.3f}, chance {stats['chance']:.3f}")
    metrics = {"representation": representation, **stats, "latent_dim": len(columns), "profile_dim": profile,
               "explained_variance": plane.explained.tolist()}
    plot = plots.latent_figure(plane.project(z[:, shown]), gamma, plane.explained, stats, representation)
    return StageResult(outputs={"metrics": json_record(metrics), "figure": figure(plot)}, values={"metrics": metrics})


def anomaly_scores(model, representation: str, features: np.ndarray, positions: np.ndarray,
                   attrs: Mapping[str, Any], mixture=None, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per-sample scores, higher = more anomalous: :data:`MODEL_SCORES` and the physics references ``energy``
    (pair energy per particle U_LJ/N, epsilon), ``closest_pair`` (minus the closest pair distance, sigma) and
    ``sum_z`` (minus the sum of heights, sigma). positions : (S, N, dim) sigma, the configurations behind
    ``features``.

    The model's scores: ``neg_elbo`` and ``recon_error``; ``latent_nll``, the negative log density of the latent
    mean under ``mixture`` (an sklearn GaussianMixture of the training latent means; NaN without it);
    ``energy_gap``, U_LJ/N of the input minus that of its reconstruction; ``decoded_sum_z``, minus the sum of
    heights of the reconstruction (the sufficient statistic of gamma, read off what the model decodes rather
    than off the input)."""
    from keras import ops

    from vaepipe.models import kl_divergence

    z_mean, z_log_var = training.encode(model, features, batch_size)
    decoded = np.asarray(model.decoder.predict(z_mean, batch_size=batch_size, verbose=0))
    nll = np.concatenate([np.asarray(ops.convert_to_numpy(model.reconstruction_nll(
        features[i:i + batch_size], decoded[i:i + batch_size])), dtype=np.float64)
        for i in range(0, len(features), batch_size)])
    kl = np.asarray(kl_divergence(z_mean, z_log_var), dtype=np.float64).sum(axis=1)
    n = positions.shape[1]
    energy = total_energy(positions, 0.0, attrs, coincident="inf") / n
    rep = representations.get(representation)
    decoded_positions = rep.decode_positions(decoded, attrs)
    decoded_energy = total_energy(decoded_positions, 0.0, attrs, coincident="inf") / n
    out = {
        "neg_elbo": nll + kl,
        "recon_error": training.sample_errors(representation, features, decoded, attrs)["recon_error"],
        "latent_nll": (-mixture.score_samples(z_mean.astype(np.float64)) if mixture is not None
                       else np.full(len(features), np.nan)),
        "energy_gap": np.where(np.isfinite(decoded_energy), energy - decoded_energy, -np.inf),
        "decoded_sum_z": -decoded_positions[..., -1].sum(axis=1),
        "energy": energy,
        "closest_pair": -structure.min_pair_distance(positions),
        "sum_z": -positions[..., -1].sum(axis=1),
    }
    return out


def _mixture(z: np.ndarray, seed: int):
    from sklearn.mixture import GaussianMixture

    return GaussianMixture(int(max(1, min(8, len(z) // 20))), covariance_type="full", reg_covar=1e-5,
                           random_state=seed).fit(np.asarray(z, dtype=np.float64))


def _tilted(test: TestSet, max_degrees: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict]:
    """The test configurations under gravity, each rotated about a random horizontal axis through its centre of
    mass by the largest angle up to ``max_degrees`` (random sign) that keeps it in the box: same pair distances,
    same sum(z), so the same Boltzmann weight. Returns (rows, tilted positions, angle statistics)."""
    rows = np.flatnonzero(test.labels["gamma"].to_numpy() > 0)
    box = float(test.attrs["box_length"])
    positions = test.positions[rows]
    dim = positions.shape[-1]
    axis = rng.integers(0, dim - 1, len(rows)) if dim == 3 else np.zeros(len(rows), dtype=int)
    sign = rng.choice([-1.0, 1.0], len(rows))
    out = np.empty_like(positions)
    angles = np.empty(len(rows))
    for a in np.unique(axis):
        for s in (-1.0, 1.0):
            mine = (axis == a) & (sign == s)
            if not mine.any():
                continue
            limit = structure.max_tilt_angle(positions[mine], box, s * np.radians(max_degrees), axis=int(a))
            angles[mine] = limit
            out[mine] = np.clip(structure.tilt(positions[mine], box, limit, axis=int(a)), 0.0, box)  # rounding
    return rows, out, {"tilt_angle_median_degrees": float(np.degrees(np.median(np.abs(angles)))),
                       "num_tilted": int(len(rows))}


def anomaly(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``anomaly``: ROC of one representation's anomaly scores. Outputs ``metrics`` and ``figure``.

    Normal: the test split of the trained state points. Anomalies: (i) ``overlap``: the same configurations
    with one particle moved into an overlap (r in analysis.overlap_distance); (ii) ``uniform``: as many uniformly
    random configurations; (iii) ``heldout_gamma``: the test split of the held-out gammas (NaN without any);
    (iv) ``tilted``: the test configurations under gravity rigidly tilted about a horizontal axis through their
    centre of mass (against those same configurations untilted), which leaves the energy and sum(z) exactly
    unchanged: neither can see it. Every score of :func:`anomaly_scores` is reported for every kind; the
    headline AUC of a kind uses ``analysis.anomaly_score[kind]``.

    input : ``model``, ``features`` and ``samples`` (per trained state point), ``heldout`` and
    ``heldout_samples`` (per held-out state point, maybe none).
    params : ``seed``, ``split`` and ``analysis`` (anomaly_score, overlap_distance, tilt_angle).
    """
    training.configure_threads(threads)
    settings = params["analysis"]
    full = load_test_set(paths(input, "features"), paths(input, "samples"), params["seed"], params["split"],
                         which=None)
    test = full.subset((full.labels["split"] == "test").to_numpy())
    attrs = full.attrs
    representation = attrs["representation"]
    rep = representations.get(representation)
    model = read_model(path(input, "model"))
    seed = derive_seed(params["seed"], "anomaly", representation)
    rng = np.random.default_rng(seed)
    box, n, dim = float(attrs["box_length"]), int(attrs["n_particles"]), int(attrs["dim"])
    feature_params = rep.canonical_params(rep.params_from_attrs(attrs))
    boundary = str(attrs.get("boundary", "reflect"))

    def featurize(positions):
        return rep.featurize(np.asarray(positions, dtype=np.float64), box, boundary, feature_params).features

    z_train, _ = training.encode(model, full.features[(full.labels["split"] == "train").to_numpy()])
    mixture = _mixture(z_train, seed_int(seed))
    overlap = analysis.inject_overlap(test.positions, box, rng, distance=tuple(settings["overlap_distance"]))
    uniform = analysis.uniform_configurations(len(test.positions), n, dim, box, rng)
    tilted_rows, tilted, tilt_stats = _tilted(test, float(settings["tilt_angle"]), rng)
    sets = {"normal": (test.features, test.positions), "overlap": (featurize(overlap), overlap),
            "uniform": (featurize(uniform), uniform)}
    if len(tilted_rows):
        sets["tilted"] = (featurize(tilted), tilted)
    heldout_features = paths(input, "heldout")
    if heldout_features:
        heldout = load_test_set(heldout_features, paths(input, "heldout_samples"), params["seed"], params["split"])
        sets["heldout_gamma"] = (heldout.features, heldout.positions)
    scores = {name: anomaly_scores(model, representation, x, p, attrs, mixture)
              for name, (x, p) in sets.items()}
    chosen = dict(settings["anomaly_score"])
    metrics = {"representation": representation, "score": chosen, "num_normal": int(len(test.features)),
               **tilt_stats}
    curves = {}
    for kind in ANOMALY_KINDS:
        if kind not in scores:
            for name in (kind, f"{kind}_ceiling", f"{kind}_trivial"):
                metrics[f"auc_{name}"] = math.nan
            continue
        normal = scores["normal"] if kind != "tilted" else {k: v[tilted_rows] for k, v in scores["normal"].items()}
        results = {score: analysis.roc(normal[score], scores[kind][score])
                   for score in MODEL_SCORES + _REFERENCES[kind] if np.isfinite(normal[score]).any()}
        for score, result in results.items():
            metrics[f"auc_{kind}_{score}"] = result["auc"]
        metrics[f"auc_{kind}"] = results[chosen[kind]]["auc"]
        best = max(_REFERENCES[kind], key=lambda s: results[s]["auc"])
        metrics[f"auc_{kind}_{'ceiling' if kind == 'heldout_gamma' else 'trivial'}"] = results[best]["auc"]
        curves[kind] = {"model": results[chosen[kind]], "score": chosen[kind], "reference": results[best],
                        "reference_name": {"energy": "energy U_LJ/N", "closest_pair": "closest pair",
                                           "sum_z": "-sum(z)"}[best]}
    if "heldout_gamma" not in scores:
        metrics["auc_heldout_gamma_trivial"] = math.nan
    _log(f"{representation}: ROC AUC, model (physics): " + ", ".join(
        f"{kind} {metrics[f'auc_{kind}']:.3f} ({metrics.get(f'auc_{kind}_ceiling', metrics.get(f'auc_{kind}_trivial')):.3f})"
        for kind in ANOMALY_KINDS))
    plot = plots.roc_figure(curves, representation)
    return StageResult(outputs={"metrics": json_record(metrics), "figure": figure(plot)},
                       seed=seed, values={"metrics": metrics})


def _number(value) -> float:
    return math.nan if value is None else float(value)


#: The per-representation keys of each family, and where they come from in the stage metrics.
_GENERATION = ("valid_fraction", "energy_w1_over_std", "energy_w1_over_std_valid", "energy_w1_over_std_relaxed1",
               "energy_w1_over_std_relaxed10", "pair_distance_w1", "density_profile_w1", "valid_fraction_relaxed10",
               "pair_distance_w1_relaxed10", "density_profile_w1_relaxed10", "energy_w1_over_std_mc_train",
               "nearest_training_rmsd_median", "nearest_training_rmsd_median_mc_test")
_RECONSTRUCTION = ("valid_fraction", "rmsd_anchored_median", "energy_abs_error_per_particle_median",
                   "rmsd_nearest_training_median", "rmsd_random_pair_median")
_LATENT = {"gamma_knn_accuracy": "knn_accuracy", "gamma_knn_accuracy_ceiling": "knn_accuracy_ceiling",
           "gamma_knn_accuracy_full": "knn_accuracy_full", "gamma_linear_probe_accuracy": "linear_probe_accuracy",
           "gamma_chance": "chance", "gamma_silhouette": "silhouette"}
_ANOMALY = ("auc_heldout_gamma", "auc_heldout_gamma_ceiling", "auc_overlap", "auc_overlap_trivial", "auc_uniform",
            "auc_uniform_trivial", "auc_tilted", "auc_tilted_trivial")


_MINIMIZATION_GAPS = ("latent_exact", "latent_functional", "quench_only", "grid_descent")


def _minimization_summary(records: Sequence[Mapping], functional: Mapping | None, transfer: Mapping | None) -> dict:
    """minimization.*: medians over the trained state points, and ``_heldout`` twins over the others."""
    out = {}
    groups = {"": [r for r in records if not r.get("heldout")], "_heldout": [r for r in records if r.get("heldout")]}
    for suffix, group in groups.items():
        for method in _MINIMIZATION_GAPS:
            values = [r[f"relative_gap_{method}"] for r in group]
            out[f"minimization.relative_gap_{method}{suffix}"] = float(np.median(values)) if values else math.nan
        valid = [np.mean([r["valid_path_fraction"]["latent_exact"], r["valid_path_fraction"]["latent_functional"]])
                 for r in group]
        out[f"minimization.valid_path_fraction_latent{suffix}"] = float(np.median(valid)) if valid else math.nan
    out["minimization.functional_error_per_particle"] = _number(
        (functional or {}).get("test", {}).get("mae_per_particle"))
    out["minimization.functional_error_per_particle_heldout"] = _number(
        (transfer or {}).get("as_trained", {}).get("mae_per_particle"))
    return out


def summarize(model_metrics: Mapping[str, Mapping], reconstruction: Mapping[str, Mapping],
              generation: Mapping[str, Mapping], latent: Mapping[str, Mapping], anomaly: Mapping[str, Mapping],
              headline: str, minimization: Sequence[Mapping] = (), functional: Mapping | None = None,
              transfer: Mapping | None = None) -> dict:
    """The flat summary: every key of :data:`SUMMARY_KEYS` (float, NaN where it does not apply), each family's
    numbers of the ``headline`` representation under ``{family}.{key}`` and of every representation under
    ``{family}.{representation}.{key}``. The arguments up to headline are {representation: metrics dict};
    ``minimization`` the records of the minimize jobs (with ``heldout`` set on held-out and transfer state
    points), ``functional`` and ``transfer`` the functional's metrics."""
    out = _minimization_summary(minimization, functional, transfer)
    for representation in representations.REPRESENTATIONS:
        m = model_metrics.get(representation, {})
        for key in ("recon_error", "baseline_error", "error_ratio", "active_units"):
            out[f"vae.{representation}.{key}"] = _number(m.get(key))
    families = {
        "generation": {r: {k: m.get("mean_over_states", {}).get(k) for k in _GENERATION}
                       for r, m in generation.items()},
        "reconstruction": {r: {k: m.get(k) for k in _RECONSTRUCTION} for r, m in reconstruction.items()},
        "latent": {r: {k: m.get(v) for k, v in _LATENT.items()} for r, m in latent.items()},
        "anomaly": {r: {k: m.get(k) for k in _ANOMALY} for r, m in anomaly.items()},
    }
    keys = {"generation": _GENERATION, "reconstruction": _RECONSTRUCTION, "latent": tuple(_LATENT),
            "anomaly": _ANOMALY}
    for family, by_representation in families.items():
        for representation, values in by_representation.items():
            for key, value in values.items():
                out[f"{family}.{representation}.{key}"] = _number(value)
        for key in keys[family]:
            out[f"{family}.{key}"] = _number(by_representation.get(headline, {}).get(key))
    distance = reconstruction.get("distance", {}).get("distance", {})
    for key in ("rmsd_gram_median", "rmsd_smacof_median", "rmsd_learned_median"):
        out[f"reconstruction.distance.{key}"] = _number(distance.get(key))
    missing = [k for k in SUMMARY_KEYS if k not in out]
    assert not missing, missing
    return dict(sorted(out.items()))


def _optional(input, name: str) -> list[str]:
    """A named input list that a rule may leave out (the minimization stages, when they do not run)."""
    try:
        return paths(input, name)
    except (KeyError, AttributeError):
        return []


def summary(input, params: Mapping[str, Any], wildcards=None, threads: int = 1) -> StageResult:
    """Rule ``summary``: ``results/summary.json`` (output ``summary``) and its table for the report (``table``).

    input : per trained representation, in ``params["representations"]`` order: the ``models``' metrics,
    ``reconstruction``, ``generation``, ``latent`` and ``anomaly`` metrics.
    """
    names = params["representations"]

    def by_name(key):
        return dict(zip(names, map(read_json, paths(input, key))))

    heldout = set(params.get("heldout_states", ()))
    records = [{**read_json(p), "heldout": read_json(p)["state"] in heldout} for p in _optional(input, "minimization")]
    functional = [read_json(p) for p in _optional(input, "functional")]
    transfer = [read_json(p) for p in _optional(input, "transfer")]
    result = summarize(model_metrics=by_name("models"), reconstruction=by_name("reconstruction"),
                       generation=by_name("generation"), latent=by_name("latent"), anomaly=by_name("anomaly"),
                       headline=params["headline"], minimization=records,
                       functional=functional[0] if functional else None, transfer=transfer[0] if transfer else None)
    return StageResult(outputs={"summary": lambda target, prov: write_summary(target, result, prov),
                                "table": lambda target, prov: write_summary_table(target, result)},
                       values={"summary": result})
