"""Speed of the C++ energy and forces (vaepipe.energy) against a vectorised NumPy baseline, measured in the same run.

    python benchmarks/bench_forces.py              # ~30 s
    python benchmarks/bench_forces.py --repeats 3  # quick look

Cases: S configurations of N particles in a closed box at gamma = 0.5 (reflecting walls, no cutoff; quench-like
use: one configuration per call, and batch use: all S in one call):
    N = 30  in the seed's 5 sigma box (the demo), and N = 200 in a 10 sigma box.
Ours: vaepipe.energy.potential_energy and forces. Baseline: the same energy and forces in NumPy, all pairs at once
(broadcast differences, r^-6 and r^-12 from the squared distances). The table gives configurations per second and
ours / baseline; both are checked to agree to 1e-9 relative first.
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

from vaepipe.energy import forces, potential_energy  # noqa: E402

GAMMA = 0.5


def numpy_energy_forces(x: np.ndarray) -> tuple[float, np.ndarray]:
    """U = sum_{i<j} 4 (r^-12 - r^-6) + 4 gamma sum z and F = -grad U of one (N, 3) configuration."""
    d = x[:, None, :] - x[None, :, :]
    r2 = np.einsum("ijk,ijk->ij", d, d)
    np.fill_diagonal(r2, np.inf)
    inv6 = r2 ** -3
    energy = 2.0 * np.sum(inv6 * inv6 - inv6) + 4.0 * GAMMA * np.sum(x[:, -1])
    scale = (48.0 * inv6 * inv6 - 24.0 * inv6) / r2
    f = np.einsum("ij,ijk->ik", scale, d)
    f[:, -1] -= 4.0 * GAMMA
    return float(energy), f


def configurations(num: int, n: int, box: float, rng: np.random.Generator) -> np.ndarray:
    """``num`` configurations of n particles, no pair closer than 0.9 sigma (random sequential insertion)."""
    out = np.empty((num, n, 3))
    for s in range(num):
        placed = 0
        while placed < n:
            p = rng.uniform(0, box, 3)
            if placed == 0 or np.min(np.sum((out[s, :placed] - p) ** 2, axis=1)) >= 0.81:
                out[s, placed] = p
                placed += 1
    return out


def timed(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configurations", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(describe())
    print(f"{'case':<46} {'ours (conf/s)':>14} {'NumPy (conf/s)':>15} {'ratio':>7}")
    for n, box in ((30, 5.0), (200, 10.0)):
        x = configurations(args.configurations, n, box, rng)
        for i in range(3):  # the two agree
            e, f = numpy_energy_forces(x[i])
            assert abs(potential_energy(x[i], box, gamma=GAMMA) - e) <= 1e-9 * abs(e)
            np.testing.assert_allclose(forces(x[i], box, gamma=GAMMA), f, rtol=1e-9, atol=1e-9)

        def ours_each():
            for c in x:
                potential_energy(c, box, gamma=GAMMA)
                forces(c, box, gamma=GAMMA)

        def ours_batch():
            potential_energy(x, box, gamma=GAMMA)
            forces(x, box, gamma=GAMMA)

        def baseline():
            for c in x:
                numpy_energy_forces(c)

        t_base = timed(baseline, args.repeats)
        for label, fn in (("one configuration per call", ours_each), ("all in one call", ours_batch)):
            t = timed(fn, args.repeats)
            print(f"{f'N = {n}, energy + forces, {label}':<46} {len(x) / t:>14.0f} {len(x) / t_base:>15.0f} "
                  f"{t_base / t:>7.2f}")


if __name__ == "__main__":
    main()
