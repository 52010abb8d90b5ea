"""Training from disk (``vae.stream``): speed against training in memory, and memory against the number of samples.

Prints three tables:

1. **Throughput at the demo size**: the voxel VAE of config.yaml (Conv3D on 16^3 grids) trained by
   ``vaepipe.training.train_vae`` with ``stream="never"`` (the splits in memory, the baseline) and
   ``stream="always"`` (features read from the HDF5 files a window at a time), each variant in its own subprocess,
   run alternately ``--rounds`` times; samples/s = median over the epochs after the first; ratio streamed / memory.
2. **Peak memory against the number of samples**: synthetic 50^3 Gaussian grids (the paper config's voxel
   features: h = 0.1 sigma, width 0.2 sigma, 30 particles uniform in the 5 sigma box) in feature files of
   ``--sizes`` samples in all (4 state points each); per size, one subprocess trains a small Conv3D VAE on them
   (one epoch of ``--steps`` batches of 32, with the validation pass over the whole validation split) and
   encodes every sample; its peak RSS (``ru_maxrss``). Streamed at every size, in memory at the sizes that fit
   (``--memory-sizes``). Growth = peak at the largest size / peak at the smallest.
3. **The paper config's voxel VAE**: seconds per training sample of its Conv3D VAE (50^3, filters
   16-32-64-128, batch 32) measured here, streamed from the largest file set; the peak RSS of that job; and the
   memory the train_vae rule asks the scheduler for (``vaepipe.datasets.training_memory_mb``, as the rule calls
   it).

    python benchmarks/bench_streaming.py                       # ~15 minutes on 2 cores; ~1.3 GB of files in --workdir
    python benchmarks/bench_streaming.py --features results/features --json streaming.json

Targets (issue 14): peak RSS grows <= 10 % from 1 000 to 16 000 samples; streamed throughput >= 0.9x in memory
at the demo size; the paper-scale training job's memory estimate <= 8 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

SMALL_MODEL = dict(latent_dim=8, filters=[4, 8, 8], dense_units=32, beta=0.01, reconstruction_loss="bce",
                   free_bits=0.0, learning_rate=1e-3, epochs=1, batch_size=32, kl_warmup_epochs=0, patience=0)
STATES = 4


def workflow_config(extra: str | None = None) -> dict:
    import yaml

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if extra:
        for key, value in yaml.safe_load((ROOT / extra).read_text()).items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


# --------------------------------------------------------------------------- data


def write_state(path: Path, grids: np.ndarray, system: dict, params: dict, k: int, seed: int) -> None:
    """A voxel features file of state point k (gamma = k): the grids as 8 chains in file order."""
    from vaepipe import io

    num = len(grids)
    attrs = {"gamma": float(k), "temperature": 1.0, "n_particles": system["n_particles"],
             "box_length": system["box_length"], "dim": 3, "boundary": system["boundary"], "seed": seed,
             "state": f"gamma{k}_T1", "voxel_size": params["voxel_size"], "num_cells": grids.shape[1],
             "method": params["method"], "width": params["width"], "normalize": params.get("normalize", "max")}
    io.write_features(path, "voxel", grids, np.zeros(num), np.arange(num) // max(num // 8, 1), np.arange(num), attrs)


def synthetic_files(folder: Path, config: dict, num_samples: int, seed: int) -> list[str]:
    """Feature files of ``num_samples`` voxel grids in all, ``STATES`` state points, featurized with the config's
    voxel settings from 30 particles placed uniformly at random in the box; made once per folder."""
    from vaepipe import features

    folder.mkdir(parents=True, exist_ok=True)
    system, params = config["system"], config["features"]["voxel"]
    box, n = system["box_length"], system["n_particles"]
    num_cells = features.num_cells(box, params["voxel_size"])
    paths = []
    for k in range(STATES):
        path = folder / f"gamma{k}_T1.h5"
        paths.append(str(path))
        if path.exists():
            continue
        num = num_samples // STATES
        rng = np.random.default_rng([seed, k])
        grids = np.empty((num,) + (num_cells,) * 3, dtype=np.float32)
        for a in range(0, num, 500):
            positions = rng.uniform(0.0, box, (min(500, num - a), n, 3))
            grids[a:a + len(positions)] = features.voxel_grid(
                positions, box, params["voxel_size"], method=params["method"], width=params["width"],
                normalize=params.get("normalize", "max"), boundary=system["boundary"])
        write_state(path, grids, system, params, k, seed)
    return paths


def write_grids(folder: Path, num_samples: int, seed: int = 0) -> list[str]:
    """Synthetic 50^3 Gaussian grids with the paper config's voxel settings."""
    return synthetic_files(folder, workflow_config("config/paper.yaml"), num_samples, seed)


def demo_paths(features_dir: str | None, workdir: Path) -> list[str]:
    """The demo's voxel feature files (``--features``), or synthetic ones at the demo's size and settings."""
    if features_dir:
        paths = sorted(str(p) for p in (Path(features_dir) / "voxel").glob("*.h5"))
        if not paths:
            raise FileNotFoundError(f"--features {features_dir}: no voxel/*.h5 there; pass results/features")
        return paths
    return synthetic_files(workdir / "demo", workflow_config(), 4000, 1)


# --------------------------------------------------------------------------- workers (one per subprocess)


def _batch_timer():
    """A callback recording the wall time of every training batch (validation excluded)."""
    import keras

    class BatchTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    return BatchTimer()


def _train(paths, params, stream, max_steps=None, encode=False):
    """train_vae (and encode) as the workflow's stages call them; returns epoch marks, peak RSS and the split."""
    import resource

    from vaepipe import training
    from vaepipe.datasets import load_training_data

    config = workflow_config()
    training.configure_threads(int(os.environ.get("BENCH_THREADS", "2")))
    data = load_training_data(paths, config["seed"], config["vae"]["validation_fraction"],
                              config["vae"]["test_fraction"], lazy=True)
    from bench_vae import _epoch_timer

    timer = _epoch_timer()
    batch_timer = _batch_timer()
    workflow_callbacks = training._callbacks
    training._callbacks = lambda *a, **k: workflow_callbacks(*a, **k) + [timer, batch_timer]
    try:
        result = training.train_vae(data, params, 7, progress=False, stream=stream, max_steps_per_epoch=max_steps)
    finally:
        training._callbacks = workflow_callbacks
    if encode:
        training.encode(result.model, data.features)
    num_train = int((data.labels["split"] == "train").sum())
    steps = min(num_train // min(params["batch_size"], num_train), max_steps or num_train)
    return {"marks": timer.marks, "batch_seconds": batch_timer.seconds,
            "samples_per_epoch": steps * min(params["batch_size"], num_train),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "num_train": num_train,
            "num_samples": len(data.labels)}


def worker(args) -> None:
    job = json.loads(args.worker)
    if job.get("window_mb"):
        from vaepipe import datasets

        datasets.STREAM_WINDOW_BYTES = int(job["window_mb"] * 2 ** 20)
    if job["kind"] == "throughput":
        params = {**workflow_config()["vae"]["voxel"], "epochs": job["epochs"], "patience": 0}
        out = _train(job["paths"], params, job["stream"])
    elif job["kind"] == "memory":
        out = _train(job["paths"], {**SMALL_MODEL}, job["stream"], max_steps=job["steps"], encode=True)
    else:  # paper
        base, paper = workflow_config()["vae"]["voxel"], workflow_config("config/paper.yaml")["vae"]["voxel"]
        params = {**base, **paper, "epochs": 2, "patience": 0, "kl_warmup_epochs": 0}
        out = _train(job["paths"], params, "always", max_steps=job["steps"])
    print("RESULT " + json.dumps(out))


def run_worker(job: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(job)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"worker {job['kind']} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# --------------------------------------------------------------------------- driver


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--features", help="the workflow's results/features (demo voxel files); default synthetic")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "vaepipe-bench-streaming"))
    parser.add_argument("--sizes", default="1000,4000,16000")
    parser.add_argument("--memory-sizes", default="1000,4000", help="sizes also trained in memory")
    parser.add_argument("--steps", type=int, default=20, help="training batches per memory run")
    parser.add_argument("--paper-steps", type=int, default=6, help="training batches of the paper model")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--small-window-mb", type=float, default=8.0,
                        help="window of the re-reading variant (smaller than the demo's training split)")
    parser.add_argument("--parts", default="throughput,memory,paper")
    parser.add_argument("--json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    import h5py
    import tensorflow as tf

    workdir = Path(args.workdir)
    parts = args.parts.split(",")
    report = {"machine": describe([f"h5py {h5py.__version__}", f"tensorflow {tf.__version__}"])}
    print(report["machine"])

    if "throughput" in parts:
        paths = demo_paths(args.features, workdir)
        variants = {"never": ("never", None), "always": ("always", None), "reread": ("always", args.small_window_mb)}
        rates = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (stream, window) in variants.items():
                out = run_worker({"kind": "throughput", "paths": paths, "stream": stream, "epochs": args.epochs,
                                  "window_mb": window})
                seconds = np.diff(out["marks"])[1:]
                rates[name] += [out["samples_per_epoch"] / s for s in seconds]
        median = {name: statistics.median(r) for name, r in rates.items()}
        report["throughput"] = {**median, "ratio": median["always"] / median["never"],
                                "ratio_reread": median["reread"] / median["never"], "epochs": rates}
        print("\nThroughput, voxel VAE at the demo size (config.yaml: Conv3D 16^3, batch 64, 2 threads; median "
              f"over {args.rounds} x {args.epochs - 1} epochs after the first; variants alternate)\n")
        print("| case | streamed (samples/s) | in memory (samples/s) | ratio |\n|---|---:|---:|---:|")
        print(f"| voxel 16^3, {out['num_train']} training samples, 128 MB window (the split fits: read once) | "
              f"{median['always']:.0f} | {median['never']:.0f} | {median['always'] / median['never']:.2f}x |")
        print(f"| the same, {args.small_window_mb:g} MB window (every window read from disk each pass) | "
              f"{median['reread']:.0f} | {median['never']:.0f} | {median['reread'] / median['never']:.2f}x |")

    if "memory" in parts or "paper" in parts:
        sizes = [int(s) for s in args.sizes.split(",")]
        files = {size: write_grids(workdir / f"grids{size}", size) for size in sizes}

    if "memory" in parts:
        rows = []
        for size in sizes:
            for stream in ("always", "never"):
                if stream == "never" and str(size) not in args.memory_sizes.split(","):
                    continue
                out = run_worker({"kind": "memory", "paths": files[size], "stream": stream, "steps": args.steps})
                rows.append({"samples": size, "stream": stream, "peak_rss_mb": out["peak_rss_mb"]})
        report["memory"] = rows
        streamed = [r["peak_rss_mb"] for r in rows if r["stream"] == "always"]
        report["memory_growth"] = streamed[-1] / streamed[0]
        print("\nPeak RSS of a training + encoding job, 50^3 grids (small Conv3D VAE, one epoch of "
              f"{args.steps} batches of 32, validation and encoding of every sample)\n")
        print("| samples | streamed (MB) | in memory (MB) |\n|---:|---:|---:|")
        for size in sizes:
            got = {r["stream"]: r["peak_rss_mb"] for r in rows if r["samples"] == size}
            mem = f"{got['never']:.0f}" if "never" in got else "not run"
            print(f"| {size} | {got['always']:.0f} | {mem} |")
        print(f"\nStreamed: peak RSS at {sizes[-1]} / at {sizes[0]} samples = {report['memory_growth']:.3f} "
              f"(target <= 1.10)")

    if "paper" in parts:
        from vaepipe.datasets import training_memory_mb

        paper = workflow_config("config/paper.yaml")
        vae = paper["vae"]
        out = run_worker({"kind": "paper", "paths": files[sizes[-1]], "steps": args.paper_steps})
        # the batches of the second epoch (the first traces), without the validation pass
        per_sample = float(np.median(out["batch_seconds"][args.paper_steps:])) / paper["vae"]["voxel"]["batch_size"]
        states = 9
        samples = states * paper["sampling"]["chains"] * paper["sampling"]["samples_per_chain"]
        train_states = 8
        num_train = int((1 - vae["validation_fraction"] - vae["test_fraction"]) * train_states
                        * paper["sampling"]["chains"] * paper["sampling"]["samples_per_chain"])
        estimate = training_memory_mb(samples, num_train, 4 * 50 ** 3, vae["voxel"]["batch_size"], "auto")
        report["paper"] = {"seconds_per_sample": per_sample, "peak_rss_mb": out["peak_rss_mb"],
                           "rule_mem_mb": estimate, "num_train": num_train,
                           "epoch_hours": per_sample * num_train / 3600}
        print("\nThe paper config's voxel VAE (Conv3D 50^3, filters 16-32-64-128, batch 32), streamed\n")
        print(f"- measured: {per_sample * 1000:.0f} ms per training sample ({os.environ.get('BENCH_THREADS', '2')} "
              f"threads), peak RSS {out['peak_rss_mb']:.0f} MB (with the validation pass over "
              f"{out['num_samples'] // 10} samples)")
        print(f"- the rule asks for mem_mb = {estimate} (target <= 8000)")
        print(f"- extrapolated: one epoch of {num_train} training samples = {per_sample * num_train / 3600:.1f} h; "
              f"{vae['voxel']['epochs']} epochs = {per_sample * num_train * vae['voxel']['epochs'] / 3600:.0f} h")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
