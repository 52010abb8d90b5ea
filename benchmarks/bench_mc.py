"""Speed of the C++ Metropolis sampler against the plain NumPy reference (tests/unit/reference_mc.py).

Prints one table: case, ours (trial moves/s), baseline (moves/s), ratio; then the per-move cost of the large bulk
case relative to the small one, and, when the extension honours VAEPIPE_SIMD, the speed under each SIMD level
(one subprocess per level, since the kernel is chosen at import).

    python benchmarks/bench_mc.py                 # all cases, ~1 minute
    python benchmarks/bench_mc.py --seconds 0.5 --repeats 2 --cases a   # quick look

Cases (reduced LJ units):
    a  seed system: N = 30, L = 5, reflect, gamma = 0.1, T = 1, no cutoff
    b  bulk liquid: N = 500, rho = 0.776, T = 0.85, periodic, rc = 3 (+ tail correction)
    c  bulk liquid: N = 4000, same state as b
Targets (issue 2): >= 10 M moves/s on a, >= 1 M moves/s on b, c within 1.5x of b per move.
Step sizes are tuned to 40 % acceptance before timing (the speed depends on it through the accepted moves).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit"))  # the NumPy reference lives with the tests it serves
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

import reference_mc  # noqa: E402

CASES = {
    "a": dict(label="a: seed N=30 L=5 reflect gamma=0.1 T=1", n_particles=30, box_length=5.0, temperature=1.0,
              gamma=0.1, boundary="reflect", cutoff=None, tail_correction=False),
    "b": dict(label="b: bulk N=500 rho=0.776 T=0.85 periodic rc=3", n_particles=500,
              box_length=(500 / 0.776) ** (1 / 3), temperature=0.85, gamma=0.0, boundary="periodic", cutoff=3.0,
              tail_correction=True),
    "c": dict(label="c: bulk N=4000 rho=0.776 T=0.85 periodic rc=3", n_particles=4000,
              box_length=(4000 / 0.776) ** (1 / 3), temperature=0.85, gamma=0.0, boundary="periodic", cutoff=3.0,
              tail_correction=True),
}
SIMD_LEVELS = ("sse2", "avx2", "avx512")


def model(case):
    return {k: v for k, v in CASES[case].items() if k != "label"}


def prepared_sampler(case, neighbor_list="auto", seed=0):
    """A Sampler of the case, step tuned and equilibrated a little, so timing sees a typical state."""
    from vaepipe.mc import Sampler

    extra = {} if CASES[case]["cutoff"] is None else dict(neighbor_list=neighbor_list)
    s = Sampler(**model(case), seed=seed, step_size=0.2, **extra)
    s.tune_step_size(200, target_acceptance=0.4)
    s.run(100)
    return s


def time_ours(s, seconds, repeats):
    """Best moves/s over `repeats` runs of about `seconds` each."""
    n = s.n_particles
    sweeps = 1
    while True:  # calibrate: double until one run takes a tenth of the target
        t0 = time.perf_counter()
        s.run(sweeps)
        elapsed = time.perf_counter() - t0
        if elapsed > 0.1 * seconds:
            break
        sweeps *= 2
    sweeps = max(1, int(sweeps * seconds / elapsed))
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        s.run(sweeps)
        best = max(best, sweeps * n / (time.perf_counter() - t0))
    return best


def time_baseline(s, moves, repeats):
    """Best moves/s of the NumPy reference started from the same configuration and step."""
    kw = model_from_sampler(s)
    ref = reference_mc.ReferenceSampler(s.positions, step_size=s.step_size, seed=1, **kw)
    for _ in range(min(100, moves)):  # warm-up
        ref.trial_move()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(moves):
            ref.trial_move()
        best = max(best, moves / (time.perf_counter() - t0))
    return best


def model_from_sampler(s):
    return dict(box_length=s.box_length, temperature=s.temperature, gamma=s.gamma, boundary=s.boundary,
                cutoff=s.cutoff, tail_correction=s.tail_correction)


def measure(cases, seconds, repeats, baseline_moves, neighbor_list="auto"):
    from vaepipe.mc import simd_level

    rows = []
    for case in cases:
        s = prepared_sampler(case, neighbor_list)
        ours = time_ours(s, seconds, repeats)
        baseline = time_baseline(s, baseline_moves, repeats) if baseline_moves else float("nan")
        rows.append(dict(case=case, label=CASES[case]["label"], ours=ours, baseline=baseline,
                         step_size=s.step_size, acceptance=s.acceptance_rate))
    return dict(simd_level=simd_level(), rows=rows)


def simd_sweep(cases, seconds, repeats, neighbor_list):
    """Re-run the cases in one subprocess per VAEPIPE_SIMD level; {level: {case: moves/s}} for honoured levels."""
    out = {}
    for level in SIMD_LEVELS:
        cmd = [sys.executable, __file__, "--child", "--cases", ",".join(cases), "--seconds", str(seconds),
               "--repeats", str(repeats), "--baseline-moves", "0", "--neighbor-list", neighbor_list]
        proc = subprocess.run(cmd, env=dict(os.environ, VAEPIPE_SIMD=level), capture_output=True, text=True)
        if proc.returncode != 0:
            why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit status {proc.returncode}"
            out[level] = f"skipped ({why})"
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if result["simd_level"] != level:
            out[level] = f"not honoured (kernel ran {result['simd_level']})"
            continue
        out[level] = {row["case"]: row["ours"] for row in result["rows"]}
    return out


# Sweeps per instruction-count run; the difference of two runs (k and 2k sweeps) cancels start-up and setup.
COUNT_SWEEPS = {"a": 100_000, "b": 2000, "c": 250}


def instructions_per_move(cases, neighbor_list):
    """Retired instructions per trial move from `perf stat` ({case: float}), or None without a working perf.

    Unlike seconds, instruction counts repeat to a fraction of a percent on a shared machine, so they show what a
    code change did to the cost of a move when timings drown in the noise.
    """
    import shutil

    if shutil.which("perf") is None:
        return None
    out = {}
    for case in cases:
        counts = []
        for sweeps in (COUNT_SWEEPS[case], 2 * COUNT_SWEEPS[case]):
            cmd = ["perf", "stat", "-x,", "-e", "instructions:u", sys.executable, __file__, "--child-count",
                   str(sweeps), "--cases", case, "--neighbor-list", neighbor_list]
            # A fixed hash seed keeps the interpreter's own start-up work the same in both runs.
            proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="0"))
            fields = [line.split(",") for line in proc.stderr.splitlines() if "instructions" in line]
            if proc.returncode != 0 or not fields or not fields[0][0].strip().isdigit():
                return None
            counts.append(int(fields[0][0]))
        out[case] = (counts[1] - counts[0]) / (COUNT_SWEEPS[case] * CASES[case]["n_particles"])
    return out


def machine():
    return describe()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="a,b,c", help="comma-separated subset of a,b,c (default: all)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timed run of ours (s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case; the best counts")
    parser.add_argument("--baseline-moves", type=int, default=3000,
                        help="trial moves per timed run of the NumPy baseline (0: skip it)")
    parser.add_argument("--neighbor-list", default="auto", choices=["auto", "on", "off"],
                        help="Sampler neighbor_list for the cases with a cutoff (b, c)")
    parser.add_argument("--no-simd-sweep", action="store_true", help="skip the per-SIMD-level subprocesses")
    parser.add_argument("--no-instructions", action="store_true", help="skip the perf instruction counts")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"--cases {args.cases!r}: unknown {unknown}; expected a subset of {sorted(CASES)}")

    if args.child_count:
        for case in cases:
            prepared_sampler(case, args.neighbor_list).run(args.child_count)
        return
    result = measure(cases, args.seconds, args.repeats, args.baseline_moves, args.neighbor_list)
    if args.child:
        print(json.dumps(result))
        return

    print(f"machine: {machine()}")
    print(f"SIMD kernel: {result['simd_level']}; neighbor_list={args.neighbor_list!r} for b, c")
    print()
    print(f"| {'case':<46} | {'ours (moves/s)':>14} | {'baseline (moves/s)':>18} | {'ratio':>7} |"
          f" step | acc. |")
    print(f"|{'-' * 48}|{'-' * 16}:|{'-' * 20}:|{'-' * 8}:|-----:|-----:|")
    for row in result["rows"]:
        print(f"| {row['label']:<46} | {row['ours']:>14.3e} | {row['baseline']:>18.3e} |"
              f" {row['ours'] / row['baseline']:>6.0f}x | {row['step_size']:.3f} | {row['acceptance']:.2f} |")
    rates = {row["case"]: row["ours"] for row in result["rows"]}
    print()
    if "b" in rates and "c" in rates:
        print(f"per-move cost of c relative to b: {rates['b'] / rates['c']:.2f}x (target <= 1.5x)")
    targets = {"a": 10e6, "b": 1e6}
    for case, target in targets.items():
        if case in rates:
            verdict = "meets" if rates[case] >= target else "MISSES"
            print(f"case {case}: {rates[case] / 1e6:.2f} M moves/s, {verdict} the target {target / 1e6:g} M moves/s")

    if not args.no_instructions:
        counts = instructions_per_move(cases, args.neighbor_list)
        print()
        if counts is None:
            print("instructions per move: not measured (no working `perf stat` here)")
        else:
            print("instructions per trial move (perf stat, user space; repeatable unlike the timings):")
            for case, count in counts.items():
                print(f"  {case}: {count:.0f}")

    if not args.no_simd_sweep:
        simd_cases = [c for c in ("a", "b") if c in cases]
        if simd_cases:
            print()
            print("per SIMD level (VAEPIPE_SIMD, one subprocess each), moves/s and ratio to sse2:")
            sweep = simd_sweep(simd_cases, args.seconds, args.repeats, args.neighbor_list)
            base = sweep.get("sse2") if isinstance(sweep.get("sse2"), dict) else None
            for level, res in sweep.items():
                if not isinstance(res, dict):
                    print(f"  {level:<7} {res}")
                    continue
                parts = []
                for case in simd_cases:
                    ratio = f" ({res[case] / base[case]:.2f}x)" if base else ""
                    parts.append(f"{case}: {res[case]:.3e}{ratio}")
                print(f"  {level:<7} " + ", ".join(parts))


if __name__ == "__main__":
    main()
