"""Voxel VAE training speed on grids whose side is not a multiple of 2^blocks (issue 10), oneDNN on against off.

Before issue 10 the voxel VAE zero-padded such grids (a ZeroPadding3D layer before the first Conv3D), and on Intel
AVX-512 CPUs TensorFlow 2.21's oneDNN graph rewrite broke that graph: the only way to run it there was
``TF_ENABLE_ONEDNN_OPTS=0``. The model now pools with ``padding="same"`` and holds no Pad op. This benchmark
measures what that workaround would cost: training samples per second of the same model, with TensorFlow's
oneDNN optimizations at their default (ours) and switched off (baseline), each in its own process, in the same
run. A grid that needs no padding (16^3) is measured too, as the reference.

    python benchmarks/bench_padded_grids.py                 # ~3 minutes on 2 idle cores
    python benchmarks/bench_padded_grids.py --json padded.json

Cases: the demo's voxel VAE (filters 8, 16, 32; latent 32; dense 256) on 13^3 and 16^3 random grids, and
config/paper.yaml's (filters 16, 32, 64, 128; latent 64; dense 512) on its 50^3 grids.
Speed: samples per second of each epoch after the first (the first includes tracing), median over ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

CASES = {
    "demo 13^3 (padded before)": dict(side=13, filters=(8, 16, 32), latent_dim=32, dense_units=256,
                                      batch_size=64, num_samples=256),
    "demo 16^3 (never padded)": dict(side=16, filters=(8, 16, 32), latent_dim=32, dense_units=256,
                                     batch_size=64, num_samples=256),
    "paper 50^3 (padded before)": dict(side=50, filters=(16, 32, 64, 128), latent_dim=64, dense_units=512,
                                       batch_size=8, num_samples=32),
}


def worker(spec: dict) -> dict:
    import numpy as np

    import keras

    from vaepipe.models import build_voxel_vae

    keras.utils.set_random_seed(0)
    side = spec["side"]
    model = build_voxel_vae((side,) * 3, latent_dim=spec["latent_dim"], filters=spec["filters"],
                            dense_units=spec["dense_units"], beta=0.01, seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = np.random.default_rng(0).random((spec["num_samples"], side, side, side), dtype=np.float32)
    marks = []

    class Timer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            marks.append(time.perf_counter())

    model.fit(x, batch_size=spec["batch_size"], epochs=spec["repeats"] + 1, verbose=0, callbacks=[Timer()])
    rates = [spec["num_samples"] / (b - a) for a, b in zip(marks[1:], marks[2:])]
    return {"samples_per_s": statistics.median(rates)}


def spawn(spec: dict, onednn: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    if not onednn:
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"rc {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per variant (after a warm-up epoch)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    print(f"Machine: {describe([f'TensorFlow {tf.__version__}'])}")
    avx512 = "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False
    print(f"AVX-512: {'yes' if avx512 else 'no'}\n")
    results = {}
    header = f"| {'case':<28} | {'ours: oneDNN on (samples/s)':>27} | {'baseline: oneDNN off':>20} | {'ratio':>7} |"
    print(header)
    print("|" + "|".join("-" * (len(c) + 0) for c in header.split("|")[1:-1]) + "|")
    for name in args.cases.split(","):
        spec = {**CASES[name], "repeats": args.repeats}
        on, off = spawn(spec, True), spawn(spec, False)
        results[name] = {"onednn_on": on, "onednn_off": off}
        fmt = lambda r: f"{r['samples_per_s']:.1f}" if "samples_per_s" in r else "failed"  # noqa: E731
        ratio = (f"{on['samples_per_s'] / off['samples_per_s']:.2f}x"
                 if "samples_per_s" in on and "samples_per_s" in off else "-")
        print(f"| {name:<28} | {fmt(on):>27} | {fmt(off):>20} | {ratio:>7} |", flush=True)
        for variant, r in (("on", on), ("off", off)):
            if "error" in r:
                print(f"  oneDNN {variant} failed: {r['error']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
