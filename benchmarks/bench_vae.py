"""Training speed of the VAEs at the demo sizes: the workflow's training path against keras.io-style ``fit``.

Prints training samples per second for each model, ours and the baseline measured in the same run, and their
ratio; then where the ratio comes from (batch size, input pipeline, op determinism), the first-epoch (tracing)
times, the Keras backends, and where the time of a Conv3D training step goes.

    python benchmarks/bench_vae.py                      # all models: ~10 minutes on 2 idle cores, far more if busy
    python benchmarks/bench_vae.py --quick              # smoke run (256 samples, 2 timed epochs): ~5 minutes busy
    python benchmarks/bench_vae.py --features results/features --json vae.json

Models (the config's ``vae`` sections, so the same layers, sizes and seeds as the workflow):
    voxel        Conv3D VAE of 16^3 Gaussian-smeared grids
    distance     Conv2D VAE of 38 x 38 distance matrices (30 particles + 8 box corners)
    coordinates  dense VAE of 90 sorted coordinates (the seed's model)
Data: 30 particles placed uniformly at random in the 5 sigma box, featurized with vaepipe.features and the
config's feature settings (``--num-samples`` configurations), or with ``--features DIR`` the training split of
the workflow's feature files DIR/{voxel,distance,coordinates}/*.h5.

Variants, each in its own subprocess (thread pools and op determinism are process-wide in TensorFlow):
    baseline     the keras.io VAE example's way: numpy array into ``fit(x, batch_size=None (32), shuffle=True)``,
                 default threads, no op determinism, no tf.data, no callbacks. ``verbose=0``, so neither side
                 pays for console output (the progress bar would also sync every batch, as ours does).
    baseline_bs  the same at our batch size (--batch-size): separates the pipeline from the batch size.
    ours         ``vaepipe.training.train_vae`` itself: configure_threads, the repeated tf.data pipeline with
                 steps_per_epoch, the config's batch size, op determinism on (the workflow default), the
                 workflow's callbacks (KL warm-up, per-batch NaN check); no validation split.
    ours_nodet   the same with op determinism off.
Same weights: every variant seeds Keras with the workflow's training seed before building the model.
Speed: samples per second of each epoch after the first (the first includes tracing), median over
``--repeats`` epochs; an epoch is timed from the end of the previous one, so epoch-start stalls count.
Target (issue): ours >= 1.3x the baseline on the Conv3D model.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

MODELS = {
    "voxel": "voxel: Conv3D VAE 16^3",
    "distance": "distance: Conv2D VAE 38x38",
    "coordinates": "coordinates: dense VAE 90",
}
VARIANTS = ("baseline", "ours", "ours_nodet", "baseline_bs")
BREAKDOWN_STEPS, BREAKDOWN_ROUNDS = 20, 3  # the breakdown times per batch: a few batches and rounds suffice
BACKENDS = ("tensorflow", "jax", "torch")
TARGET_RATIO = 1.3  # issue: ours >= 1.3x the baseline on the Conv3D model
# Environment variables that set thread counts: the baseline runs with the frameworks' defaults, whatever the
# shell that started the benchmark had set.
THREAD_ENV = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- data (no TensorFlow here)


def workflow_config() -> dict:
    """The demo config.yaml with the schema's defaults filled in."""
    from vaepipe.config import load_config

    return load_config(ROOT / "config.yaml")


def training_data(representation: str, num_samples: int, features_dir: str | None, seed: int):
    """A TrainingData whose every row is in the "train" split (no validation pass: we time training only)."""
    import pandas as pd

    from vaepipe.datasets import TrainingData, load_training_data

    config = workflow_config()
    if features_dir:
        paths = sorted(str(p) for p in (Path(features_dir) / representation).glob("*.h5"))
        if not paths:
            raise FileNotFoundError(f"--features {features_dir}: no {representation}/*.h5 files there; pass the "
                                    f"workflow's results/features folder")
        vae = config["vae"]
        full = load_training_data(paths, config["seed"], vae["validation_fraction"], vae["test_fraction"])
        x, attrs, gamma = full.split("train"), full.attrs, full.split_labels("train", "gamma")
    else:
        x, attrs = synthetic_features(representation, num_samples, config, seed)
        gamma = np.zeros(x.shape[0])
    # train_vae feeds each sample's gamma along (the particle VAE's loss holds the gravity energy)
    labels = pd.DataFrame({"split": ["train"] * x.shape[0], "gamma": gamma})
    return TrainingData(features=np.ascontiguousarray(x, dtype=np.float32), labels=labels, attrs=attrs)


def synthetic_features(representation: str, num_samples: int, config: dict, seed: int):
    """Features of random configurations (uniform in the box), made with the workflow's featurizers."""
    from vaepipe import features

    system, params = config["system"], config["features"][representation]
    box_length, n_particles, dim = system["box_length"], system["n_particles"], system["dim"]
    positions = np.random.default_rng(seed).uniform(0.0, box_length, (num_samples, n_particles, dim))
    attrs = {"representation": representation, "box_length": box_length, "n_particles": n_particles, "dim": dim}
    if representation == "voxel":
        x = features.voxel_grid(positions, box_length, params["voxel_size"], method=params["method"],
                                width=params.get("width"), normalize=params["normalize"],
                                boundary=system["boundary"])
    elif representation == "distance":
        anchors = features.box_anchors(box_length, dim, params["anchors"])
        x, _ = features.distance_matrix(positions, box_length, anchors=anchors, boundary=system["boundary"])
        attrs["distance_scale"] = box_length * dim ** 0.5
        attrs["anchor_points"] = anchors.tolist()
    else:
        x, _ = features.sorted_coordinates(positions, box_length, sort_axis=params["sort_axis"])
    return x, attrs


# --------------------------------------------------------------------------- worker (one variant, one process)


def _epoch_timer():
    """A callback recording the wall time at the start of fit and at the end of every epoch."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.marks = [time.perf_counter()]

        def on_epoch_end(self, epoch, logs=None):
            self.marks.append(time.perf_counter())

    return EpochTimer()


def _rates(marks, samples_per_epoch):
    """(first-epoch seconds, [samples/s of each later epoch])."""
    seconds = np.diff(marks)
    return float(seconds[0]), [samples_per_epoch / s for s in seconds[1:]]


def run_baseline(data, params, seed_int, batch_size, epochs):
    import keras

    from vaepipe.training import build_model

    x = data.split("train")
    keras.utils.set_random_seed(seed_int)
    model = build_model(data.representation, x.shape[1:], params, seed=seed_int, attrs=data.attrs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=params["learning_rate"]))
    timer = _epoch_timer()
    model.fit(x, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer])
    return _rates(timer.marks, x.shape[0]), (batch_size or 32)


def run_ours(data, params, seed_int, batch_size, epochs, threads, deterministic):
    from vaepipe import training

    params = {**params, "batch_size": batch_size, "epochs": epochs, "patience": 0}
    timer = _epoch_timer()
    workflow_callbacks = training._callbacks
    # train_vae takes no extra callbacks; add the timer to the workflow's own list, so the timed fit is exactly
    # the workflow's.
    training._callbacks = lambda *args, **kwargs: workflow_callbacks(*args, **kwargs) + [timer]
    try:
        training.train_vae(data, params, seed_int, threads=threads, progress=False, deterministic=deterministic)
    finally:
        training._callbacks = workflow_callbacks
    n = data.split("train").shape[0]
    used = min(batch_size, n)
    return _rates(timer.marks, (n // used) * used), used


def run_breakdown(data, params, seed_int, batch_size, repeats, threads, deterministic):
    """Wall-clock split of our training step: seconds for ``steps`` batches of each part (median of rounds)."""
    from vaepipe import training

    training.configure_threads(threads)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed_int)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    x = data.split("train")
    steps = max(1, min(x.shape[0] // batch_size, BREAKDOWN_STEPS))
    model = training.build_model(data.representation, x.shape[1:], params, seed=seed_int, attrs=data.attrs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=params["learning_rate"]))
    dataset = training._dataset(x, data.split_labels("train", "gamma"), batch_size, seed_int, repeat=True)
    iterator = iter(dataset)

    def pipeline():
        for _ in range(steps):
            next(iterator)

    batches = [next(iterator) for _ in range(steps)]  # the compute parts run on batches already in memory
    inputs = [b[0] for b in batches]  # (features, gamma label) -> features
    encode = tf.function(lambda b: model.encoder(b, training=True), autograph=False)
    latents = [encode(b)[2] for b in inputs]
    decode = tf.function(lambda z: model.decoder(z, training=True), autograph=False)
    forward_loss = tf.function(lambda b: model.compute_loss(x=b, y_pred=model(b, training=True)), autograph=False)
    train_step = tf.function(model.train_step)

    def loop(fn, inputs):
        def run():
            for item in inputs:
                out = fn(item)
            keras.tree.map_structure(lambda t: t.numpy(), out)  # wait for the last result
        return run

    class EpochSeconds(keras.callbacks.Callback):
        # Times the epoch alone, not fit's set-up (which a long training pays once).
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.start

    def fit(callbacks):
        def run():
            timer = EpochSeconds()
            model.fit(dataset, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0,
                      callbacks=[timer] + callbacks)
            return timer.seconds
        return run

    parts = {
        "input pipeline alone (iterate the tf.data dataset)": pipeline,
        "encoder forward": loop(encode, inputs),
        "decoder forward": loop(decode, latents),
        "forward + loss (VAE call, compute_loss)": loop(forward_loss, inputs),
        "train step (forward, backward, Adam) on batches in memory": loop(train_step, batches),
        "fit, our pipeline, no callbacks": fit([]),
        "fit, our pipeline, the workflow's callbacks":
            fit(training._callbacks(model.name, int(params["kl_warmup_epochs"]), 0, False)),
    }
    times = {name: [] for name in parts}
    # Round 0 warms up (tracing); every round runs every part, so a change in the machine's load hits all alike.
    for round_ in range(1 + min(repeats, BREAKDOWN_ROUNDS)):
        for name, fn in parts.items():
            start = time.perf_counter()
            seconds = fn()
            if round_:
                times[name].append(seconds if seconds is not None else time.perf_counter() - start)
    parts = {name: float(statistics.median(values)) for name, values in times.items()}
    return {"steps": steps, "batch_size": batch_size, "seconds": parts,
            "layers": layer_times(model, batch_size, min(repeats, BREAKDOWN_ROUNDS))}


def layer_times(model, batch_size, repeats):
    """Per layer with weights, alone on a random batch of its input shape: ms per batch of the forward pass and
    of forward + gradients (w.r.t. its weights and its input; the first layer needs no input gradient in
    training). Rounds alternate layers, median over ``repeats`` after a warm-up."""
    import keras
    import tensorflow as tf

    def forward_backward(layer):
        def run(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(layer(x, training=True))
            return tape.gradient(y, [x] + layer.trainable_weights)
        return tf.function(run, autograph=False)

    cases = {}
    for sub in (model.encoder, model.decoder):
        for layer in sub.layers:
            if not layer.trainable_weights:
                continue
            shape = (batch_size, *layer.input.shape[1:])
            x = keras.random.uniform(shape, seed=0)
            desc = f"{sub.name}/{layer.name} {layer.__class__.__name__} {tuple(shape[1:])} -> " \
                   f"{tuple(layer.output.shape[1:])}"
            cases[desc] = (tf.function(lambda x, layer=layer: layer(x, training=True), autograph=False),
                           forward_backward(layer), x)
    times = {desc: ([], []) for desc in cases}
    for round_ in range(1 + repeats):
        for desc, (forward, both, x) in cases.items():
            for fn, store in zip((forward, both), times[desc]):
                start = time.perf_counter()
                keras.tree.map_structure(lambda t: t.numpy(), fn(x))
                if round_:
                    store.append(1e3 * (time.perf_counter() - start))
    return {desc: [float(statistics.median(f)), float(statistics.median(b))] for desc, (f, b) in times.items()}


def worker(spec: dict) -> dict:
    from vaepipe.seeds import seed_int as _seed_int
    from vaepipe.seeds import derive_seed

    config = workflow_config()
    representation = spec["model"]
    params = dict(config["vae"][representation])
    seed_int = _seed_int(derive_seed(config["seed"], "train", representation))
    data = training_data(representation, spec["num_samples"], spec["features"], seed=config["seed"])
    epochs = 1 + spec["repeats"]
    variant = spec["variant"]
    result = {"model": representation, "variant": variant, "num_samples": int(data.features.shape[0])}
    if variant == "breakdown":
        result.update(run_breakdown(data, params, seed_int, spec["batch_size"], spec["repeats"], spec["threads"],
                                    deterministic=True))
    else:
        if variant == "baseline":
            (first, rates), used = run_baseline(data, params, seed_int, None, epochs)
        elif variant == "baseline_bs":
            (first, rates), used = run_baseline(data, params, seed_int, spec["batch_size"], epochs)
        else:
            (first, rates), used = run_ours(data, params, seed_int, spec["batch_size"], epochs, spec["threads"],
                                            deterministic=variant == "ours")
        result.update(batch_size=used, first_epoch_seconds=first, epoch_rates=rates,
                      samples_per_second=float(statistics.median(rates)))
    import keras

    result["backend"] = keras.backend.backend()
    return result


def spawn(spec: dict, backend: str = "tensorflow", timeout: float | None = None) -> dict:
    """Run one worker in a fresh Python (its own TensorFlow runtime); its result, or {"error": why}."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    if spec["variant"].startswith("baseline"):
        for name in THREAD_ENV:
            env.pop(name, None)
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        # TensorFlow's start-up lines (oneDNN, CUDA stubs) are noise; the last other line says what failed.
        errors = [line for line in proc.stderr.splitlines()
                  if line.strip() and not line.startswith(("I0000", "W0000", "WARNING: All log", "To enable"))]
        return {"error": errors[-1] if errors else f"exit status {proc.returncode}"}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- driver


def machine():
    return describe([f"{name} {_version(name)}" for name in ("keras", "tensorflow", "jax", "torch")
                     if _version(name)])


def _version(module: str) -> str | None:
    """Installed version of a framework (TensorFlow may come as tensorflow-cpu), without importing it."""
    from importlib.metadata import PackageNotFoundError, version

    for distribution in (module, f"{module}-cpu"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return None


def _fmt(value, spec=".3g"):
    width = spec.split(".")[0]
    return format("n/a", f">{width}") if value is None else format(value, spec)


def _times(ratio, spec=".2f"):
    """A ratio as "1.23x", or "n/a" when a side is missing."""
    return "n/a" if ratio is None else f"{ratio:{spec}}x"


def _rate(result):
    return None if "error" in result else result["samples_per_second"]


def _ratio(a, b):
    return None if a is None or b is None else a / b


def print_tables(results, models, backends, breakdown, args):
    rows = []
    for model in models:
        r = results[model]
        base = _rate(r["baseline"])
        rows.append((MODELS[model], _rate(r["ours"]), base))
        rows.append((MODELS[model] + ", determinism off", _rate(r["ours_nodet"]), base))
    width = max(len(label) for label, _, _ in rows)
    print(f"| {'case':<{width}} | ours (samples/s) | baseline (samples/s) |  ratio |")
    print(f"|{'-' * (width + 2)}|-----------------:|---------------------:|-------:|")
    for label, ours, base in rows:
        print(f"| {label:<{width}} | {_fmt(ours, '16.0f')} | {_fmt(base, '20.0f')} | "
              f"{_times(_ratio(ours, base), '5.2f'):>6} |")
    print()
    print(f"ours: train_vae, batch {args.batch_size}, {args.threads} threads, tf.data + repeat; baseline: numpy into "
          f"fit, batch 32 (Keras default), default threads. Median over {args.repeats} epochs after the first.")
    if "voxel" in models:
        ratio = _ratio(_rate(results["voxel"]["ours"]), _rate(results["voxel"]["baseline"]))
        if ratio is not None:
            verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
            print(f"Conv3D: ours / baseline = {ratio:.2f}x, {verdict} the target >= {TARGET_RATIO}x; at the same "
                  f"batch size ({args.batch_size}) as the baseline: "
                  f"{_times(_ratio(_rate(results['voxel']['ours']), _rate(results['voxel']['baseline_bs'])))}")
    errors = [(m, v, r["error"]) for m in models for v, r in results[m].items() if "error" in r]
    for model, variant, why in errors:
        print(f"  {model} {variant}: failed: {why}")

    print()
    print("Where the ratio comes from (samples/s; each step's factor over the previous column):")
    print()
    print(f"| model       | baseline, batch 32 | baseline, batch {args.batch_size:<3}| ours, determinism off | "
          f"ours, determinism on |")
    print("|-------------|-------------------:|-------------------:|----------------------:|---------------------:|")
    for model in models:
        r = results[model]
        b32, b_bs, off, on = (_rate(r[v]) for v in ("baseline", "baseline_bs", "ours_nodet", "ours"))
        print(f"| {model:<11} | {_fmt(b32, '18.0f')} | {_fmt(b_bs, '10.0f')} ({_times(_ratio(b_bs, b32))}) | "
              f"{_fmt(off, '13.0f')} ({_times(_ratio(off, b_bs))}) | {_fmt(on, '12.0f')} "
              f"({_times(_ratio(on, off))}) |")
    print()
    print("First epoch (tracing, iterator start-up), seconds:")
    print()
    print("| model       | " + " | ".join(f"{v:>11}" for v in VARIANTS) + " |")
    print("|-------------|" + "|".join("------------:" for _ in VARIANTS) + "|")
    for model in models:
        cells = [_fmt(results[model][v].get("first_epoch_seconds"), "11.1f") for v in VARIANTS]
        print(f"| {model:<11} | " + " | ".join(cells) + " |")

    if backends:
        print()
        print(f"Keras backends (train_vae with op determinism off, {args.backend_samples} samples, median of "
              f"{args.backend_repeats} epochs after the first; samples/s and ratio to TensorFlow):")
        print()
        print("| backend    | " + " | ".join(f"{m:<20}" for m in models) + " | first epoch (s) |")
        print("|------------|" + "|".join("-" * 22 for _ in models) + "|----------------:|")
        reference = backends.get("tensorflow", {})
        for backend, per_model in backends.items():
            if isinstance(per_model, str):
                print(f"| {backend:<10} | {per_model} |")
                continue
            cells, firsts = [], []
            for model in models:
                res = per_model[model]
                if "error" in res:
                    cells.append(f"failed: {res['error']}"[:60])
                    continue
                ref = reference.get(model, {}) if isinstance(reference, dict) else {}
                ratio = _ratio(_rate(res), _rate(ref)) if "error" not in ref else None
                cells.append(f"{_rate(res):>8.0f} ({_times(ratio)})")
                firsts.append(f"{res['first_epoch_seconds']:.1f}")
            print(f"| {backend:<10} | " + " | ".join(f"{c:<20}" for c in cells) + f" | {'/'.join(firsts):>15} |")

    if breakdown:
        print()
        if "error" in breakdown:
            print(f"Conv3D breakdown failed: {breakdown['error']}")
            return
        ms = {name: 1e3 * value / breakdown["steps"] for name, value in breakdown["seconds"].items()}
        total = ms["fit, our pipeline, the workflow's callbacks"]
        step = ms["train step (forward, backward, Adam) on batches in memory"]
        print(f"Where the time of a Conv3D training step goes (ms per batch of {breakdown['batch_size']}, "
              f"{args.threads} threads, determinism on; median of {min(args.repeats, BREAKDOWN_ROUNDS)} rounds of "
              f"{breakdown['steps']} batches; share of the workflow's fit):")
        print()
        print("| part | ms / batch | share |")
        print("|------|-----------:|------:|")
        for name, value in ms.items():
            print(f"| {name} | {value:.1f} | {100 * value / total:.0f} % |")
        derived = {
            "backward + Adam (train step - forward + loss)": step - ms["forward + loss (VAE call, compute_loss)"],
            "Keras loop + pipeline not hidden (fit, no callbacks - train step)":
                ms["fit, our pipeline, no callbacks"] - step,
            "the workflow's callbacks (per-batch NaN check, KL warm-up)":
                total - ms["fit, our pipeline, no callbacks"],
        }
        for name, value in derived.items():
            print(f"| = {name} | {value:.1f} | {100 * value / total:.0f} % |")
        layers = breakdown.get("layers") or {}
        if layers:
            print()
            print(f"Per layer, alone, ms per batch of {breakdown['batch_size']} (forward + backward includes the "
                  f"input gradient; share: of one train step, {step:.0f} ms):")
            print()
            print("| layer (input -> output shape) | forward | forward + backward | share |")
            print("|-------------------------------|--------:|-------------------:|------:|")
            for desc, (forward, both) in layers.items():
                print(f"| {desc} | {forward:.1f} | {both:.1f} | {100 * both / step:.0f} % |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="voxel,distance,coordinates",
                        help="comma-separated subset of voxel,distance,coordinates")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="synthetic training samples (default 3200, the demo's training split; --quick: 256; "
                             "ignored with --features)")
    parser.add_argument("--features", default=None,
                        help="folder with {voxel,distance,coordinates}/*.h5 feature files (e.g. results/features): "
                             "time on their training split instead of synthetic data")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed epochs after the first; the median counts (default 5; --quick: 2)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="our batch size (default: the config's, 64); baseline_bs uses it too")
    parser.add_argument("--threads", type=int, default=None, help="our threads (default: the config's, 2)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="Keras backends to compare (those not installed are skipped; '' for none)")
    parser.add_argument("--backend-samples", type=int, default=None,
                        help="samples for the backend comparison (default 640, --quick: 128; JAX's Conv3D is "
                             "~30x slower on CPU)")
    parser.add_argument("--backend-repeats", type=int, default=None,
                        help="timed epochs per backend run (default 2; --quick: 1)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the Conv3D time breakdown")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a worker is given up")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: smaller defaults (256 samples, 2 timed epochs, 128 samples per backend)")
    parser.add_argument("--json", default=None, help="also write every result (per-epoch rates too) here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        parser.error(f"--models {args.models!r}: unknown {unknown}; expected a subset of {list(MODELS)}")
    defaults = dict(num_samples=(3200, 256), repeats=(5, 2), backend_samples=(640, 128), backend_repeats=(2, 1))
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    config = workflow_config()
    if args.batch_size is None:
        args.batch_size = int(config["vae"]["voxel"]["batch_size"])
    if args.threads is None:
        args.threads = int(config["vae"]["threads"])
    for name in ("num_samples", "repeats", "batch_size", "threads", "backend_samples", "backend_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    base = dict(num_samples=args.num_samples, features=args.features, repeats=args.repeats,
                batch_size=args.batch_size, threads=args.threads)
    print(f"machine: {machine()}", flush=True)
    results = {}
    for model in models:
        # Interleaved per model, so a change in the machine's load hits baseline and ours alike.
        results[model] = {}
        for variant in VARIANTS:
            print(f"  running {model} {variant} ...", file=sys.stderr, flush=True)
            results[model][variant] = spawn(dict(base, model=model, variant=variant), timeout=args.timeout)

    backends = {}
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if importlib.util.find_spec(backend) is None:
            backends[backend] = "not installed, skipped"
            continue
        backends[backend] = {}
        for model in models:
            print(f"  running {model} on {backend} ...", file=sys.stderr, flush=True)
            spec = dict(base, model=model, variant="ours_nodet", num_samples=args.backend_samples,
                        repeats=args.backend_repeats, features=None)
            backends[backend][model] = spawn(spec, backend=backend, timeout=args.timeout)

    breakdown = None
    if "voxel" in models and not args.no_breakdown:
        print("  running the Conv3D breakdown ...", file=sys.stderr, flush=True)
        breakdown = spawn(dict(base, model="voxel", variant="breakdown"), timeout=args.timeout)

    print()
    print_tables(results, models, backends, breakdown, args)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "machine": machine(), "args": vars(args), "results": results, "backends": backends,
            "breakdown": breakdown}, indent=1))


if __name__ == "__main__":
    main()
