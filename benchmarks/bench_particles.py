"""Training speed of the particle VAE (vaepipe/models/particles.py) with XLA against without, measured in the same
run, at the demo's size (N = 30, latent 68, batch 128, 3 refinement layers, Sinkhorn matching with 30
iterations, the energy and generation terms).

    python benchmarks/bench_particles.py              # ~3 minutes on 2 cores

Each case trains on Metropolis configurations (gamma = 0.5, T = 1) for --steps steps after a warm-up of
--warmup steps (which holds XLA's compilation) with TensorFlow's op determinism on, as the pipeline does; the
table gives the steady-state steps per second and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402


def _steps_per_second(x, gamma, jit: bool, warmup: int, steps: int, threads: int) -> float:
    import keras

    from vaepipe.models import build_particle_vae

    keras.utils.set_random_seed(0)
    model = build_particle_vae((30, 3), 30, 3, 5.0, latent_dim=68, profile_dim=4, seed=0)
    model.initialize_from_data(x)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), jit_compile=False)
    model._jit_compile = jit  # as vaepipe.training.train_vae does under op determinism
    batch = 128
    model.fit(x[: batch * warmup], gamma[: batch * warmup], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    start = time.perf_counter()
    model.fit(x[: batch * steps], gamma[: batch * steps], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from vaepipe import training

    training.configure_threads(args.threads)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    from vaepipe.mc import Sampler

    sampler = Sampler(30, 5.0, 1.0, gamma=0.5, seed=1, step_size=0.32)
    sampler.run(2000)
    positions, _ = sampler.sample(128 * args.steps, interval=20)
    x = (positions / 5.0).astype(np.float32)
    gamma = np.full(len(x), 0.5, dtype=np.float32)
    plain = _steps_per_second(x, gamma, False, args.warmup, args.steps, args.threads)
    xla = _steps_per_second(x, gamma, True, args.warmup, args.steps, args.threads)
    print(describe())
    print(f"particle VAE, N = 30, latent 68, batch 128, {args.steps} steps after {args.warmup} warm-up steps, "
          f"{args.threads} threads, op determinism on\n")
    print("| case | ours (XLA) steps/s | baseline (no XLA) steps/s | ratio |")
    print("|---|---|---|---|")
    print(f"| training step | {xla:.2f} | {plain:.2f} | {xla / plain:.2f}x |")


if __name__ == "__main__":
    main()
