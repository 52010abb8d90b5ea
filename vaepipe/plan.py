"""What a workflow config asks of the machine, checked before any job runs.

:func:`vaepipe.config.check_config` checks the config's keys against each other and against physics. This module
checks the *plan* they imply, which needs the learning layer: how many samples each split of each state point
gets (:func:`vaepipe.datasets.assign_splits`, the same code that splits them later), the batch sizes and
neighbour counts those samples allow, and the memory and work of every job against one shared cap
(:data:`MAX_JOB_MEMORY_MB`, :data:`MAX_TRIAL_MOVES`). The workflow's rules ask the scheduler for the memory these
functions compute (workflow/rules/common.smk), so a request the scheduler would refuse, or a job that would run
out of memory or for months, is refused here instead, naming the config key that drives it.
"""

from __future__ import annotations

import math

import numpy as np

from vaepipe.config import config_error as _fail
from vaepipe.config import heldout_state_points, state_points, transfer_state_points
from vaepipe.datasets import assign_splits, training_memory_mb
from vaepipe.features import CHUNK_BYTES
from vaepipe.representations import REPRESENTATIONS, feature_shape

__all__ = [
    "MAX_JOB_MEMORY_MB",
    "MAX_TRIAL_MOVES",
    "split_counts",
    "samples_per_state",
    "positions_bytes",
    "feature_bytes",
    "sample_mem_mb",
    "preliminary_mem_mb",
    "featurize_mem_mb",
    "learning_mem_mb",
    "export_mem_mb",
    "check_plan",
]

#: The most memory one job may ask for, in MB (about 250 GB, more than most compute nodes have). Every rule's
#: ``mem_mb`` goes through :func:`check_plan` against it, as the samples files go through
#: :data:`vaepipe.config.MAX_SAMPLES_BYTES`: a request beyond it is a typo in a size (a voxel of 0.005 sigma asks
#: for terabytes), and fails now instead of after hours of sampling.
MAX_JOB_MEMORY_MB = 256_000

#: The most Metropolis trial moves one preliminary job may make: about a day at 1e7 moves per second (the seed
#: system runs 1.5e7 on one core). More is a typo (preliminary.sweeps: 1e12 would run for decades).
MAX_TRIAL_MOVES = 10**12

# Python floats and numpy arrays the preliminary run holds per recorded sweep and observable, with the
# autocorrelation's FFT working copies: a generous factor on the 8-byte trace.
_TRACE_COPIES = 6


def samples_per_state(config: dict) -> int:
    """Configurations stored per state point."""
    return int(config["sampling"]["chains"]) * int(config["sampling"]["samples_per_chain"])


def positions_bytes(config: dict) -> int:
    """Bytes of one state point's positions array (float64)."""
    system = config["system"]
    return samples_per_state(config) * int(system["n_particles"]) * int(system["dim"]) * 8


def feature_bytes(config: dict, representation: str) -> int:
    """Bytes of one sample's float32 features of a representation."""
    system = config["system"]
    shape = feature_shape(representation, config["features"][representation], system["n_particles"],
                          system["dim"], system["box_length"])
    return 4 * math.prod(shape)


def sample_mem_mb(config: dict) -> int:
    """Memory of a sample job in MB: the positions array a few times over, plus the interpreter."""
    return 1000 + 4 * positions_bytes(config) // 1_000_000


def preliminary_mem_mb(config: dict) -> int:
    """Memory of a preliminary job in MB: the interpreter, plus the trace of every observable after every sweep."""
    prelim = config["preliminary"]
    trace = int(prelim["sweeps"]) * len(prelim["observables"]) * 8
    return 1000 + _TRACE_COPIES * trace // 1_000_000


def featurize_mem_mb(config: dict, representation: str) -> int:
    """Memory of a featurize job in MB: the samples, the float32 features twice over (array and HDF5 write),
    one chunk of float64 working memory, plus the interpreter."""
    features = samples_per_state(config) * feature_bytes(config, representation)
    return 1000 + (2 * positions_bytes(config) + 2 * features + 2 * CHUNK_BYTES) // 1_000_000


def learning_mem_mb(config: dict, representation: str, stream: str = "never") -> int:
    """Memory of a job that reads a representation's features and runs TensorFlow, in MB: TensorFlow itself
    (about 1.5 GB), the float32 features (a few times over in memory; two windows when streamed, vae.stream),
    plus the activations of one batch, generously (:func:`vaepipe.datasets.training_memory_mb`)."""
    per_state = samples_per_state(config)
    train_states = state_points(config)
    num = (len(train_states) + len(heldout_state_points(config))) * per_state
    vae = config["vae"]
    train_share = 1 - vae["validation_fraction"] - vae["test_fraction"]
    return training_memory_mb(num, int(train_share * len(train_states) * per_state),
                              feature_bytes(config, representation), vae[representation]["batch_size"], stream)


def export_mem_mb(config: dict) -> int:
    """Memory of the export job in MB: every configuration it reads (float64), ten times over for the text and
    ASE's frames of one file, a few kB per frame for ASE's Atoms, plus the interpreter."""
    trained = config["vae"]["representations"]
    train_states, heldout = state_points(config), heldout_state_points(config)
    minimize = config["minimization"]["enabled"] and {"voxel", "particles"} <= set(trained)
    minimized = len(train_states) + len(heldout) + len(transfer_state_points(config)) if minimize else 0
    frames = (samples_per_state(config) * (len(train_states) + len(heldout)) * (3 if minimize else 2)
              + int(config["analysis"]["num_generated"]) * len(trained) * len(train_states) + 5 * minimized)
    frame_bytes = 8 * int(config["system"]["n_particles"]) * int(config["system"]["dim"])
    return 1000 + frames * (10 * frame_bytes + 5000) // 1_000_000


def split_counts(config: dict) -> dict[str, int]:
    """Samples of each split ("train", "validation", "test") of one state point: the blocks that
    :func:`vaepipe.datasets.assign_splits` deals out (the counts are the same for every state point and seed)."""
    sampling, vae = config["sampling"], config["vae"]
    chains, per_chain = int(sampling["chains"]), int(sampling["samples_per_chain"])
    chain = np.repeat(np.arange(chains), per_chain)
    split = assign_splits(np.full(chain.size, "gamma0_T1"), 0, vae["validation_fraction"],
                          vae["test_fraction"], chain=chain, block=int(vae["split_block"]))
    return {name: int(np.count_nonzero(split == name)) for name in ("train", "validation", "test")}


def _check_splits(config: dict) -> dict[str, int]:
    vae = config["vae"]
    if vae["validation_fraction"] + vae["test_fraction"] >= 1:
        raise _fail("vae.validation_fraction", vae["validation_fraction"],
                    f"validation_fraction + test_fraction < 1 (with vae.test_fraction={vae['test_fraction']!r} "
                    f"no sample is left to train on)",
                    "lower vae.validation_fraction or vae.test_fraction, e.g. 0.1 each")
    counts = split_counts(config)
    per_state = samples_per_state(config)
    for name, key in (("train", None), ("validation", "vae.validation_fraction"), ("test", "vae.test_fraction")):
        wanted = key is None or vae[key.split(".")[1]] > 0
        if wanted and counts[name] == 0:
            raise _fail("sampling.samples_per_chain", config["sampling"]["samples_per_chain"],
                        f"enough samples per state point for every split: {per_state} samples in blocks of "
                        f"vae.split_block={vae['split_block']} give the {name} split none "
                        f"(train/validation/test = {counts['train']}/{counts['validation']}/{counts['test']})",
                        "raise sampling.samples_per_chain or sampling.chains, or lower vae.split_block")
    return counts


def _check_batches(config: dict, counts: dict[str, int]) -> None:
    """A VAE's batch may not exceed the samples it is drawn from, the training split of every trained state point
    (one batch per epoch is a typo, not a setting). The energy functional's small data sets (quench_samples per
    state point) may take a larger batch: Keras then trains on all of them at once, as the memory estimate
    assumes (min(batch, samples))."""
    num_train = counts["train"] * len(state_points(config))
    keys = [f"vae.{r}.batch_size" for r in config["vae"]["representations"]]
    if "distance" in config["vae"]["representations"]:
        keys.append("reconstruction.learned.batch_size")
    for key in keys:
        section, *rest = key.split(".")
        value = config[section]
        for part in rest:
            value = value[part]
        if value > num_train:
            raise _fail(key, value, f"at most the {num_train} training samples of the trained state points "
                        f"({counts['train']} per state point)", f"set {key} to at most {num_train}, e.g. 64")


def _check_neighbors(config: dict) -> None:
    """k of the gamma k-NN: at most the samples of the smallest training fold of the cross-validation."""
    per_state = samples_per_state(config)
    num_states = len(state_points(config))
    analysis = config["analysis"]
    folds = min(int(analysis["cv_folds"]), per_state)
    smallest_train_fold = num_states * (per_state - math.ceil(per_state / folds))
    k = analysis["knn_neighbors"]
    if num_states > 1 and k > smallest_train_fold:
        raise _fail("analysis.knn_neighbors", k,
                    f"at most the {smallest_train_fold} latent means of a training fold ({num_states} state points "
                    f"x {per_state} samples, {folds}-fold cross-validation)",
                    f"set analysis.knn_neighbors to at most {smallest_train_fold}, e.g. 5")


def _check_memory(config: dict) -> None:
    system = config["system"]
    jobs = [("preliminary", preliminary_mem_mb(config), "preliminary.sweeps", config["preliminary"]["sweeps"],
             "lower preliminary.sweeps"),
            ("sample", sample_mem_mb(config), "sampling.samples_per_chain",
             config["sampling"]["samples_per_chain"], "lower sampling.samples_per_chain or sampling.chains"),
            ("export", export_mem_mb(config), "sampling.samples_per_chain", config["sampling"]["samples_per_chain"],
             "lower sampling.samples_per_chain or analysis.num_generated")]
    for representation in REPRESENTATIONS:
        if representation == "voxel":
            key, value = "features.voxel.voxel_size", config["features"]["voxel"]["voxel_size"]
            fix = "raise features.voxel.voxel_size (fewer, larger cells) or lower sampling.samples_per_chain"
        else:
            key, value = "system.n_particles", system["n_particles"]
            fix = "lower system.n_particles or sampling.samples_per_chain"
        jobs.append((f"featurize ({representation})", featurize_mem_mb(config, representation), key, value, fix))
        if representation in config["vae"]["representations"]:
            # train_vae and encode stream as vae.stream says; the analysis jobs hold the features in memory
            jobs.append((f"train_vae ({representation})",
                         learning_mem_mb(config, representation, config["vae"]["stream"]), key, value,
                         fix + " (or set vae.stream: always)"))
            jobs.append((f"analysis ({representation})", learning_mem_mb(config, representation), key, value, fix))
    for job, mb, key, value, fix in jobs:
        if mb > MAX_JOB_MEMORY_MB:
            raise _fail(key, value, f"jobs that fit in memory: the {job} job would ask for {mb:,} MB, over the "
                        f"cap of {MAX_JOB_MEMORY_MB:,} MB per job (vaepipe.plan.MAX_JOB_MEMORY_MB)", fix)


def _check_work(config: dict) -> None:
    prelim = config["preliminary"]
    moves = (int(prelim["tune_sweeps"]) + int(prelim["sweeps"])) * int(config["system"]["n_particles"])
    if moves > MAX_TRIAL_MOVES:
        raise _fail("preliminary.sweeps", prelim["sweeps"],
                    f"at most {MAX_TRIAL_MOVES:.0e} trial moves per preliminary job (about a day on one core); "
                    f"(tune_sweeps + sweeps) x n_particles = {moves:.2e}",
                    "lower preliminary.sweeps: 30000 finds the decorrelation time of the demo's system")


def check_plan(config: dict) -> dict:
    """Refuse a schema-validated, :func:`~vaepipe.config.check_config`-checked config whose jobs cannot run:
    splits without samples, batches or neighbour counts larger than their data, a job over the memory cap or
    the work cap. Returns the config unchanged; raises ValueError naming the key, the value, what is expected
    and the fix."""
    counts = _check_splits(config)
    _check_batches(config, counts)
    _check_neighbors(config)
    _check_work(config)
    _check_memory(config)
    return config


def _merge(base: dict, override: dict) -> dict:
    """``override`` into ``base``, key by key at every depth, as Snakemake merges --configfile files."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def main(argv: list[str] | None = None) -> int:
    """``python -m vaepipe.plan config.yaml [override.yaml ...]``: every check the workflow makes before its
    first job, on the files merged in order (as ``snakemake --configfile``), with the line of a YAML syntax
    error, which Snakemake's own loader does not give for a --configfile."""
    import argparse

    from vaepipe.config import prepare_config, read_config_file

    parser = argparse.ArgumentParser(prog="python -m vaepipe.plan", description=main.__doc__)
    parser.add_argument("files", nargs="+", help="YAML config files; later ones override earlier ones key by key")
    args = parser.parse_args(argv)
    try:
        config: dict = {}
        for path in args.files:
            _merge(config, read_config_file(path))
        check_plan(prepare_config(config))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return 1
    states = len(state_points(config)) + len(heldout_state_points(config))
    largest = max([featurize_mem_mb(config, r) for r in REPRESENTATIONS]
                  + [learning_mem_mb(config, r) for r in config["vae"]["representations"]])
    print(f"ok: {states} state points, {samples_per_state(config)} samples each "
          f"(train/validation/test {'/'.join(map(str, split_counts(config).values()))}), largest job {largest:,} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
