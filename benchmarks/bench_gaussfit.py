"""Speed and accuracy of the Gaussian-deposit fit of decoded-like voxel grids: the pipeline's settings for decoded
grids (vaepipe.representations.voxel: DECODE_MAX_ITER, DECODE_TOL, DECODE_REPAIRS) against the fit's defaults,
measured in the same run.

    python benchmarks/bench_gaussfit.py              # 200 grids of the demo (16^3, width 0.5, N = 30): ~2 minutes

A VAE's decoded grid is a blurred density, which no set of deposits fits to rounding. The stand-in here: Monte
Carlo configurations (gamma = 0.5, T = 1, the project's sampler) rendered with a Gaussian of width 0.6 sigma
(blurred), max-normalised, and fitted with the featurizer's width 0.5. Columns: wall time, median permutation-
aware RMSD to the true configuration (sigma), valid fraction (every pair >= 0.8 sigma), median |U_fit - U_MC|/N
(epsilon).
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
from vaepipe.energy import potential_energy  # noqa: E402
from vaepipe.features import voxel_grid  # noqa: E402
from vaepipe.gaussfit import fit_gaussian_deposits  # noqa: E402
from vaepipe.mc import Sampler  # noqa: E402
from vaepipe.representations.voxel import DECODE_MAX_ITER, DECODE_REPAIRS, DECODE_TOL  # noqa: E402

L, N, H = 5.0, 30, 0.3125


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=200)
    args = parser.parse_args()
    sampler = Sampler(N, L, 1.0, gamma=0.5, seed=3, step_size=0.32)
    sampler.run(2000)
    truth, _ = sampler.sample(args.grids, interval=150)
    grids = voxel_grid(truth, L, H, method="gaussian", width=0.6, normalize="max")
    cases = {"fit defaults (tol 1e-6, 200 iterations, N repairs)": {},
             f"pipeline (tol {DECODE_TOL:g}, {DECODE_MAX_ITER} iterations, {DECODE_REPAIRS} repairs)":
                 dict(max_iter=DECODE_MAX_ITER, tol=DECODE_TOL, max_repairs=DECODE_REPAIRS)}
    energy = np.array([potential_energy(p, L, 0.5) for p in truth])
    rows = []
    for name, kwargs in cases.items():
        start = time.perf_counter()
        fitted = fit_gaussian_deposits(grids, N, L, 0.5, normalize="max", dim=3, **kwargs)
        seconds = time.perf_counter() - start
        valid = structure.is_valid(fitted, L, 0.8)
        fit_energy = np.array([potential_energy(p, L, 0.5) if v else np.inf for p, v in zip(fitted, valid)])
        rows.append((name, seconds, float(np.median(structure.matched_rmsd(fitted, truth))), float(valid.mean()),
                     float(np.median(np.abs(fit_energy - energy) / N))))
    print(describe())
    print(f"{args.grids} blurred grids (16^3, rendered with width 0.6, fitted with 0.5), N = {N}\n")
    print("| settings | seconds | median RMSD (sigma) | valid | median abs dU/N (eps) |")
    print("|---|---|---|---|---|")
    for name, seconds, rmsd, valid, error in rows:
        print(f"| {name} | {seconds:.1f} | {rmsd:.3f} | {valid:.3f} | {error:.3g} |")
    print(f"\nratio of the times (defaults / pipeline): {rows[0][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
