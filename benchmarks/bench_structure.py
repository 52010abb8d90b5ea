"""Speed of vaepipe.structure.nearest_rmsd (pruned by lower bounds) against brute force, measured in the same run.

    python benchmarks/bench_structure.py                    # Q = 400, R = 3200, N = 30, dim 3: ~2 minutes
    python benchmarks/bench_structure.py --sweeps 20 --brute-queries 5    # quick look

Cases (N = 30 particles in the seed's 5 sigma box, dim 3):
    liquid   a layer on the floor: Lennard-Jones Metropolis at gamma = 1, T = 1, reflecting walls (the model of
             tests/unit/reference_mc.py), all Q + R chains at once, vectorised over the chains, from a random
             start with no pair closer than 1 sigma
    gas      uniform random points (an ideal gas)
Ours: nearest_rmsd over all Q queries. Baseline: one Hungarian matching per pair (what nearest_rmsd returns
exactly), timed on ``--brute-queries`` queries and scaled to Q. The table also gives the exact matchings per
query that the pruning leaves.
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

from vaepipe import structure  # noqa: E402

N_PARTICLES, BOX_LENGTH, DIM = 30, 5.0, 3


def _random_start(num: int, rng: np.random.Generator) -> np.ndarray:
    x = np.empty((num, N_PARTICLES, DIM))
    for i in range(N_PARTICLES):
        todo = np.arange(num)
        while todo.size:
            trial = rng.uniform(0.5, BOX_LENGTH - 0.5, size=(todo.size, DIM))
            gap = np.sqrt(np.sum((x[todo, :i] - trial[:, None]) ** 2, axis=-1)).min(axis=1, initial=np.inf)
            x[todo[gap > 1.0], i] = trial[gap > 1.0]
            todo = todo[gap <= 1.0]
    return x


def liquid(num: int, sweeps: int, rng: np.random.Generator, gamma: float = 1.0, temperature: float = 1.0,
           step: float = 0.3) -> np.ndarray:
    """(num, N, 3) end points of ``num`` independent Metropolis chains of ``sweeps`` sweeps each."""
    x = _random_start(num, rng)

    def energy(i, p):  # particle i at p (num, 3): its pair energies plus 4 gamma z
        r2 = np.sum((x - p[:, None]) ** 2, axis=-1)
        r2[:, i] = np.inf
        inv6 = 1.0 / r2 ** 3
        return np.sum(4.0 * inv6 * (inv6 - 1.0), axis=1) + 4.0 * gamma * p[:, -1]

    for _ in range(sweeps * N_PARTICLES):
        i = rng.integers(N_PARTICLES)
        trial = x[:, i] + rng.uniform(-step, step, size=(num, DIM))
        trial = np.where(trial < 0, -trial, np.where(trial > BOX_LENGTH, 2 * BOX_LENGTH - trial, trial))
        accept = rng.random(num) < np.exp(np.minimum(0.0, -(energy(i, trial) - energy(i, x[:, i])) / temperature))
        x[accept, i] = trial[accept]
    return x


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--references", type=int, default=3200)
    parser.add_argument("--sweeps", type=int, default=100, help="Metropolis sweeps of each liquid chain")
    parser.add_argument("--brute-queries", type=int, default=10)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(2024)
    total = args.queries + args.references
    start = time.perf_counter()
    cases = {"liquid gamma=1 T=1": liquid(total, args.sweeps, rng),
             "gas (uniform)": rng.uniform(0.0, BOX_LENGTH, size=(total, N_PARTICLES, DIM))}
    print(f"configurations made in {time.perf_counter() - start:.0f} s; {describe()}\n")
    print(f"Q = {args.queries}, R = {args.references}, N = {N_PARTICLES}, dim = {DIM}\n")
    print("| case                | ours (s) | brute force (s) | ratio | matchings / query | median nearest RMSD |")
    print("|---------------------|---------:|----------------:|------:|------------------:|--------------------:|")
    for label, x in cases.items():
        queries, references = x[:args.queries], x[args.queries:]
        start = time.perf_counter()
        rmsd, index = structure.nearest_rmsd(queries, references)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        for k in range(args.brute_queries):
            brute = structure.matched_rmsd(np.broadcast_to(queries[k], references.shape), references)
            assert brute.min() == rmsd[k] and brute.argmin() == index[k], k
        baseline = (time.perf_counter() - start) / args.brute_queries * args.queries
        bounds = structure.matched_lower_bound(queries[:20], references)
        kept = np.mean(np.sum(bounds <= (rmsd[:20, None] ** 2) * N_PARTICLES, axis=1))
        print(f"| {label:19} | {ours:8.2f} | {baseline:15.1f} | {baseline / ours:4.0f}x | {kept:17.0f} "
              f"| {np.median(rmsd):19.3f} |")


if __name__ == "__main__":
    main()
