"""Speed of the reconstruction kernels against per-configuration baselines measured in the same run.

    python benchmarks/bench_reconstruct.py                 # 400 configurations of 30 particles (the demo's test set)
    python benchmarks/bench_reconstruct.py --num 4000 --repeats 5

Cases (ours: vaepipe.reconstruct, batched over all configurations; baseline: the same result one configuration
at a time, the way a loop over samples would do it):
    classical_mds     one batched eigendecomposition of every Gram matrix | numpy.linalg.eigh per matrix
    align (Kabsch)    one batched SVD | scipy.spatial.transform.Rotation.align_vectors per configuration
                      (proper rotations, the same optimum)
    anchored          MDS of 38 points + Kabsch on the 8 anchors, batched | per configuration
Each time is the median of ``--repeats``; the table gives configurations per second and ours / baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

from vaepipe import reconstruct  # noqa: E402
from vaepipe.features import box_anchors  # noqa: E402


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _mds_loop(matrices: np.ndarray, dim: int) -> np.ndarray:
    out = np.empty((matrices.shape[0], matrices.shape[1], dim))
    n = matrices.shape[1]
    centring = np.eye(n) - 1.0 / n
    for s, d in enumerate(matrices):
        values, vectors = np.linalg.eigh(-0.5 * centring @ (d ** 2) @ centring)
        top = np.clip(values[::-1][:dim], 0.0, None)
        out[s] = vectors[:, ::-1][:, :dim] * np.sqrt(top)
    return out


def _align_loop(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    out = np.empty_like(moving)
    for s in range(moving.shape[0]):
        m, r = moving[s] - moving[s].mean(0), reference[s] - reference[s].mean(0)
        rotation, _ = Rotation.align_vectors(r, m)
        out[s] = rotation.apply(m) + reference[s].mean(0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=400, help="configurations (default 400)")
    parser.add_argument("--n-particles", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    box, dim = 5.0, 3
    positions = rng.uniform(0.0, box, (args.num, args.n_particles, dim))
    rotated = positions @ Rotation.random(random_state=1).as_matrix().T + rng.normal(0, 0.1, positions.shape)
    anchors = box_anchors(box, dim, "corners")
    full = np.concatenate([positions, np.broadcast_to(anchors, (args.num,) + anchors.shape)], axis=1)
    matrices = reconstruct.pairwise_distances(positions)
    full_matrices = reconstruct.pairwise_distances(full)

    # Same answers first: a benchmark of different results would be meaningless.
    assert np.max(reconstruct.align(_mds_loop(matrices, dim), reconstruct.classical_mds(matrices, dim))[1]) < 1e-8
    ours_aligned = reconstruct.kabsch(rotated, positions, allow_reflection=False)
    assert np.allclose(rotated @ ours_aligned[0] + ours_aligned[1][:, None], _align_loop(rotated, positions),
                       atol=1e-8)

    def anchored_loop():
        for s in range(args.num):
            reconstruct.anchored_positions(full_matrices[s], anchors, dim)

    cases = [
        ("classical_mds", lambda: reconstruct.classical_mds(matrices, dim), lambda: _mds_loop(matrices, dim)),
        ("align (Kabsch)", lambda: reconstruct.kabsch(rotated, positions, allow_reflection=False),
         lambda: _align_loop(rotated, positions)),
        ("anchored", lambda: reconstruct.anchored_positions(full_matrices, anchors, dim), anchored_loop),
    ]
    print(describe())
    print(f"{args.num} configurations of {args.n_particles} particles (+8 anchors where anchored), median of "
          f"{args.repeats}")
    print(f"{'case':<16} {'ours (conf/s)':>14} {'baseline (conf/s)':>18} {'ratio':>7}")
    for name, ours, baseline in cases:
        t_ours = _median_seconds(ours, args.repeats)
        t_base = _median_seconds(baseline, args.repeats)
        print(f"{name:<16} {args.num / t_ours:>14.0f} {args.num / t_base:>18.0f} {t_base / t_ours:>6.1f}x")


if __name__ == "__main__":
    main()
