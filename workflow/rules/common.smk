# Helpers shared by all stages (state points, wildcard constraints, code digests, per-rule parameters).
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from vaepipe._build import code_digest as closure_digest
from vaepipe import plan
from vaepipe.config import heldout_state_points, state_points, transfer_state_points
from vaepipe.representations import REPRESENTATIONS, canonical_params

# {name: {"gamma": g, "temperature": t}}, e.g. "gamma0.5_T1"; naming documented in vaepipe/config.py.
TRAIN_STATES = state_points(config)
# State points of the held-out gammas (analysis.heldout_gamma): sampled and featurized, never trained on.
HELDOUT_STATES = heldout_state_points(config)
STATES = {**TRAIN_STATES, **HELDOUT_STATES}
# State points of minimization.transfer_gamma: minimized only, never sampled (minimize.smk).
TRANSFER_STATES = transfer_state_points(config)
# REPRESENTATIONS ("voxel", "distance", "coordinates"): one features file each, see vaepipe/representations/.


# Only the configured state points: asking for another one fails as "missing input", not with a KeyError.
wildcard_constraints:
    state="|".join(re.escape(name) for name in {**STATES, **TRANSFER_STATES}),
    representation="|".join(REPRESENTATIONS),


# Each rule's params carry a digest of every package source its job runs: the import closure of its script,
# computed from the imports themselves, plus cpp/ and CMakeLists.txt when the closure loads the compiled core
# (vaepipe/_build.py, which also names the one exception: figures never resample). Snakemake sees neither the
# imported package nor the compiled extension by itself.
def code_digest(script_name):
    """Digest of the sources that workflow/scripts/{script_name}.py runs: it changes exactly when one of them is
    added, removed, renamed or edited."""
    script = Path(workflow.basedir) / "workflow" / "scripts" / f"{script_name}.py"
    try:
        return closure_digest(script, Path(workflow.basedir))
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"code digest of {script} -- {exc}")


def _canonical(value):
    """Same content, same repr: Snakemake compares params by repr, so dict keys are sorted."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def config_section(name):
    """One top-level section of the config, canonicalised, for a rule's params."""
    return _canonical(config[name])


def sampling_section():
    """The sampling section without the figure's binning, which is the density rule's business, and without
    the checkpoint cadence, which changes no result (see sample_checkpoint)."""
    return {
        k: v
        for k, v in config_section("sampling").items()
        if k not in ("density_bins", "checkpoint_interval")
    }


def sample_checkpoint(wildcards, resources):
    """Checkpoint file and cadence of a sample job: {"path": ..., "interval": seconds}.

    Not a declared output: Snakemake deletes the outputs of a failed job, and the checkpoint must outlive one.
    The cadence changes no sample, so it must not rerun sampling; Snakemake leaves parameters that are derived
    from input, output, threads or resources out of its params rerun trigger, and the `resources` argument
    (unused) marks this one as derived. tests/test_resume.py checks that a new interval reruns nothing.
    """
    return {
        "path": f"results/checkpoints/sample/{wildcards.state}.h5",
        "interval": float(config["sampling"]["checkpoint_interval"]),
    }


def state_point(wildcards):
    """{"gamma": g, "temperature": t} of the job's state point."""
    return STATES[wildcards.state]


def sampling_outputs():
    """Every file the sampling stages produce (targets of the default rule)."""
    return expand(
        [
            "results/preliminary/{state}.json",
            "results/preliminary/{state}.png",
            "results/samples/{state}.h5",
            "results/samples/{state}_density.png",
        ],
        state=STATES,
    )


def sample_mem_mb(wildcards):
    """Memory of a sample job in MB (vaepipe.plan, which checks every request against its cap)."""
    return plan.sample_mem_mb(config)


def preliminary_mem_mb(wildcards):
    """Memory of a preliminary job in MB: grows with the trace of preliminary.sweeps (vaepipe.plan)."""
    return plan.preliminary_mem_mb(config)


def feature_params(wildcards):
    """The config section features.{representation}, checked and canonical (a count grid carries no Gaussian
    width, anchor points are floats), so that only a change of what the features depend on reruns the job.
    """
    return _canonical(
        canonical_params(
            wildcards.representation, config["features"][wildcards.representation]
        )
    )


def feature_outputs():
    """Every features file: each representation of each state point."""
    return expand(
        "results/features/{representation}/{state}.h5",
        representation=REPRESENTATIONS,
        state=STATES,
    )


def featurize_mem_mb(wildcards):
    """Memory of a featurize job in MB (vaepipe.plan.featurize_mem_mb)."""
    return plan.featurize_mem_mb(config, wildcards.representation)


TRAINED = config["vae"]["representations"]


def training_features(wildcards):
    """The features files of every trained state point of the job's representation."""
    return expand(
        "results/features/{representation}/{state}.h5",
        representation=wildcards.representation,
        state=TRAIN_STATES,
    )


def split_params():
    """How samples are split into train / validation / test (the same for every representation)."""
    return {
        "validation_fraction": config["vae"]["validation_fraction"],
        "test_fraction": config["vae"]["test_fraction"],
        "split_block": config["vae"]["split_block"],
    }


def model_params(wildcards):
    """The config section vae.{representation}: architecture, beta-VAE loss and training settings."""
    return _canonical(config["vae"][wildcards.representation])


def learning_mem_mb(representation, stream="never"):
    """Memory of a job that reads a representation's features and runs TensorFlow, in MB: TensorFlow, the
    features (in memory, or two windows when streamed, vae.stream) and one batch's activations (vaepipe.plan).
    """
    return plan.learning_mem_mb(config, representation, stream)


def train_mem_mb(wildcards):
    """Memory of a job that holds a representation's features and TensorFlow, in MB (see learning_mem_mb)."""
    return learning_mem_mb(wildcards.representation)


def stream_mem_mb(wildcards):
    """Memory of a train_vae or encode job in MB (see learning_mem_mb): these read the features from disk a
    window or a slice at a time when vae.stream streams, so their memory does not grow with the samples.
    """
    return learning_mem_mb(wildcards.representation, config["vae"]["stream"])


def distance_mem_mb(wildcards):
    """Memory of the reconstruction and generation jobs in MB: the distance VAE's (see learning_mem_mb)."""
    return learning_mem_mb("distance")


def learning_outputs():
    """Every model, its history, metrics and figures, and every latent file."""
    return expand(
        [
            "results/models/{representation}/vae.keras",
            "results/models/{representation}/history.csv",
            "results/models/{representation}/metrics.json",
            "results/models/{representation}/loss.png",
            "results/models/{representation}/reconstructions.png",
            "results/latent/{representation}.parquet",
        ],
        representation=TRAINED,
    )


# The representation whose latent and anomaly numbers fill the summary's headline keys.
HEADLINE = config["analysis"]["representation"]


def training_samples(wildcards=None):
    """The samples files of every trained state point, in the order of training_features."""
    return expand("results/samples/{state}.h5", state=TRAIN_STATES)


def heldout_samples(wildcards=None):
    """The samples files of the held-out state points, in the order of heldout_features."""
    return expand("results/samples/{state}.h5", state=HELDOUT_STATES)


def heldout_features(wildcards):
    """The features files of the held-out state points of the job's representation (none configured: [])."""
    return expand(
        "results/features/{representation}/{state}.h5",
        representation=wildcards.representation,
        state=HELDOUT_STATES,
    )


def analysis_params(*keys):
    """Some keys of the analysis section, canonical: a job's params hold only what it reads."""
    return _canonical({k: config["analysis"][k] for k in keys})


def generation_params():
    """What a generate job reads: how many configurations per state point, the mixture, the relaxation sweeps,
    and the validity threshold."""
    return {
        **analysis_params("num_generated", "mixture_components", "relax_sweeps"),
        "min_distance": config["reconstruction"]["min_distance"],
    }


def reconstruction_params(wildcards):
    """What a reconstruct job reads: the validity threshold, and for the distance VAE the Gram route's settings
    (SMACOF iterations, the learned "Model 2")."""
    section = config_section("reconstruction")
    if wildcards.representation == "distance":
        return section
    return {"min_distance": section["min_distance"]}


def reconstruction_outputs():
    """Files of the reconstruction and generation stages of every trained representation, and the headline's
    latent energy landscape."""
    return (
        expand(
            [
                "results/reconstruction/{representation}/test.h5",
                "results/reconstruction/{representation}/metrics.json",
                "results/reconstruction/{representation}/examples.png",
                "results/reconstruction/{representation}/rmsd.png",
                "results/reconstruction/{representation}/energy.png",
                "results/generation/{representation}/metrics.json",
                "results/generation/{representation}/energy_histograms.png",
                "results/generation/{representation}/structure.png",
            ],
            representation=TRAINED,
        )
        + expand(
            "results/generation/{representation}/{state}.h5",
            representation=TRAINED,
            state=TRAIN_STATES,
        )
        + [
            f"results/landscape/{HEADLINE}.json",
            f"results/landscape/{HEADLINE}.png",
        ]
    )


def analysis_outputs():
    """Latent analysis and anomaly detection of every trained representation, and the summary."""
    return (
        expand(
            [
                "results/analysis/latent/{representation}.json",
                "results/analysis/latent/{representation}.png",
                "results/analysis/anomaly/{representation}.json",
                "results/analysis/anomaly/{representation}.png",
            ],
            representation=TRAINED,
        )
        + latent_scan_outputs()
        + ["results/summary.json", "results/summary.tsv"]
    )


def latent_scan_outputs():
    """The latent-size curve of the particle VAE, when it is trained."""
    if "particles" not in TRAINED:
        return []
    return [
        "results/analysis/latent_size/particles.json",
        "results/analysis/latent_size/particles.png",
    ]


# ---- the minimization stages (quench.smk, functional.smk, minimize.smk)

# The minimization needs both latent routes: the particle VAE (A) and the voxel VAE (B).
MINIMIZE = config["minimization"]["enabled"] and {"voxel", "particles"} <= set(TRAINED)
# Every state point minimized: trained, held out, and transfer gammas (never sampled).
MIN_STATES = {**TRAIN_STATES, **HELDOUT_STATES, **TRANSFER_STATES} if MINIMIZE else {}


def source_state(wildcards):
    """The sampled state point whose configurations a state point's minimization starts from: itself, or for a
    transfer gamma the nearest sampled gamma at the same temperature."""
    if wildcards.state in STATES:
        return wildcards.state
    point = TRANSFER_STATES[wildcards.state]
    same_t = [
        (abs(p["gamma"] - point["gamma"]), p["gamma"], name)
        for name, p in STATES.items()
        if p["temperature"] == point["temperature"]
    ]
    return min(same_t)[2]


def source_file(pattern):
    """An input function: ``pattern`` with {state} set to the job's source state point."""

    def files(wildcards):
        return pattern.format(state=source_state(wildcards))

    return files


def minimization_state_point(wildcards):
    """{"gamma": g, "temperature": t} of a minimized state point."""
    return MIN_STATES[wildcards.state]


def minimization_params(*keys):
    """Some keys of the minimization section, canonical."""
    return _canonical({k: config["minimization"][k] for k in keys})


def minimization_outputs():
    """Every file of the minimization stages (none when they do not run)."""
    if not MINIMIZE:
        return []
    return (
        expand("results/quench/{state}.h5", state=STATES)
        + expand("results/reference/{state}.h5", state=MIN_STATES)
        + [
            "results/functional/functional.keras",
            "results/functional/metrics.json",
            "results/functional/parity.png",
        ]
        + functional_transfer_outputs()
        + expand(
            [
                "results/minimization/{state}.json",
                "results/minimization/{state}.h5",
                "results/minimization/{state}.png",
            ],
            state=MIN_STATES,
        )
    )


def minimization_records():
    """The JSON record of every minimized state point (the summary's input)."""
    return expand("results/minimization/{state}.json", state=MIN_STATES)


def functional_metrics():
    """The functional's test metrics, when the minimization runs."""
    return ["results/functional/metrics.json"] if MINIMIZE else []


def transfer_metrics():
    """The functional's transfer metrics, when the minimization runs and a gamma is held out."""
    return functional_transfer_outputs()[:1]


def functional_mem_mb(wildcards):
    """Memory of a job that holds the voxel densities and TensorFlow, in MB (see learning_mem_mb)."""
    return learning_mem_mb("voxel")


def reference_files(wildcards):
    """The reference minima of every minimized state point (each is re-scored and quenched at the job's gamma)."""
    return expand("results/reference/{state}.h5", state=MIN_STATES)


def functional_transfer_outputs():
    """The functional's sample-efficiency files, when a gamma is held out."""
    if not (MINIMIZE and HELDOUT_STATES):
        return []
    return ["results/functional/transfer.json", "results/functional/transfer.png"]
