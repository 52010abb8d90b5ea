"""The production (sampling) run of a state point, after its preliminary run (vaepipe.preliminary).

Sampling run (:func:`run_sampling`)
    ``chains`` independent chains, each with its own derived seed and random start at the frozen step size.
    Each chain first runs ``burn_in_sweeps = max(ceil(equilibration_factor * equilibration_sweeps),
    min_equilibration_sweeps)`` sweeps: the safety factor (default 2) covers the noise of the detection, since
    a chain that starts sampling before it forgot its start biases everything it stores. Then

    * mode ``continuous``: it stores one configuration every ``decorrelation_sweeps`` sweeps (the first one
      ``decorrelation_sweeps`` after the burn-in);
    * mode ``restart``: before every stored configuration it draws a new random start and runs the burn-in
      again, so all samples are independent by construction.

    Chains run in parallel threads (the compiled sampler releases the GIL); each chain depends only on its own
    seed, so the result is bitwise identical for any thread count. Samples are ordered by chain, then time.

Checkpoints (``checkpoint=`` path, ``checkpoint_interval`` seconds of wall time)
    Every chain reports its sampler state (:meth:`vaepipe.mc.Sampler.get_state`: positions, energy bookkeeping,
    RNG state, counters) and the samples it stored after each chunk of about ``_REPORT_MOVES`` trial moves, in
    the burn-in too. The main thread periodically writes the last reports of all chains to one file
    (:func:`vaepipe.io.write_checkpoint`, atomic), stamped with :func:`sampling_fingerprint`. A run that finds a
    checkpoint with its own fingerprint continues each chain from it; since the sampler's RNG stream does not
    depend on how sweeps are split into calls, the result is bitwise that of an uninterrupted run, whatever the
    interval or the moment of the interruption. A checkpoint with another fingerprint (other config, seed,
    preliminary result or code) is ignored, with a line in the log.

Units: lengths in sigma, energies in epsilon, Monte Carlo time in sweeps (one sweep = n_particles trial moves).
"""

from __future__ import annotations

import hashlib
import math
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from vaepipe.io._files import dumps
from vaepipe.io.checkpoints import CHECKPOINT_FORMAT, ChainCheckpoint, read_checkpoint, write_checkpoint
from vaepipe.seeds import chain_seeds, seed_provenance

__all__ = [
    "SamplingResult",
    "make_sampler",
    "burn_in_sweeps",
    "run_sampling",
    "sampling_fingerprint",
    "relax",
]

#: Trial moves a sampling chain runs between two reports of its state (about 0.05 to 0.5 s): a checkpoint
#: loses at most this much work per chain, and a stop request waits at most this long.
_REPORT_MOVES = 2_000_000

#: The sampling settings the samples depend on (checkpoint_interval and density_bins do not change them).
_RESULT_SETTINGS = ("mode", "chains", "samples_per_chain", "equilibration_factor", "min_equilibration_sweeps")


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sweep" if "sweep" in desc else "sample", file=sys.stderr,
                mininterval=2.0, ascii=True, disable=not enabled, dynamic_ncols=False, ncols=100)


def make_sampler(system: Mapping[str, Any], state_point: Mapping[str, Any], seed, step_size: float):
    """A :class:`vaepipe.mc.Sampler` for ``system`` (the config's ``system`` dict) at one state point."""
    from vaepipe.mc import Sampler

    return Sampler(
        n_particles=int(system["n_particles"]),
        box_length=float(system["box_length"]),
        temperature=float(state_point["temperature"]),
        gamma=float(state_point["gamma"]),
        dim=int(system["dim"]),
        boundary=str(system["boundary"]),
        cutoff=None if system["cutoff"] is None else float(system["cutoff"]),
        tail_correction=bool(system["tail_correction"]),
        seed=seed,
        step_size=float(step_size),
    )


def _energy_drift_note(sampler) -> str:
    """A line for the log comparing the incrementally tracked energy with a recomputation."""
    tracked, exact = sampler.energy, sampler.recompute_energy()
    return f"energy check: tracked {tracked:.10g}, recomputed {exact:.10g}, difference {tracked - exact:.3g}"


# --------------------------------------------------------------------------- sampling run


@dataclass(frozen=True)
class SamplingResult:
    """Outcome of :func:`run_sampling`.

    positions : (S, N, dim) float64, sigma.  energy : (S,) float64, U/epsilon.  chain : (S,) int64.
    attrs : the samples-file attributes known here (every contract attribute but seed and vaepipe_version)
        plus sampling details (sampling_mode, num_chains, samples_per_chain, burn_in_sweeps, state).
    """

    positions: np.ndarray
    energy: np.ndarray
    chain: np.ndarray
    attrs: dict


def burn_in_sweeps(equilibration_sweeps: int, equilibration_factor: float, min_equilibration_sweeps: int) -> int:
    """Sweeps each chain runs from its random start before it may store: max(ceil(factor * t0), minimum)."""
    return max(int(math.ceil(equilibration_factor * equilibration_sweeps)), int(min_equilibration_sweeps))


class _Stopped(Exception):
    """Raised inside a chain thread when the run is being stopped (another chain failed, or an interruption)."""


class _ChainProgress:
    """What one chain has done so far, as it last reported it: the checkpoint writer's view of the chain.

    The chain stores samples into ``positions``/``energy`` (rows below ``reported`` never change again) and, after
    every chunk of work, reports its sampler state under ``lock``; a snapshot taken under the same lock is
    therefore a consistent point of the chain to continue from.
    """

    def __init__(self, num_samples: int, n_particles: int, dim: int, lock: threading.Lock):
        self.positions = np.empty((num_samples, n_particles, dim), dtype=np.float64)
        self.energy = np.empty(num_samples, dtype=np.float64)
        self.lock = lock
        self.state = None  # Sampler.get_state() at the last report; None before the first
        self.reported = 0  # samples stored at the last report
        self.burn_in_done = 0
        self.version = 0  # counts reports: a checkpoint is written only when something changed

    def restore(self, start) -> None:
        k = start.num_samples
        self.positions[:k] = start.positions
        self.energy[:k] = start.energy
        self.state, self.reported, self.burn_in_done = start.state, k, start.burn_in_done

    def report(self, sampler, done: int, burn_in_done: int) -> None:
        state = sampler.get_state()
        with self.lock:
            self.state, self.reported, self.burn_in_done = state, done, burn_in_done
            self.version += 1

    def snapshot(self):
        """A :class:`vaepipe.io.ChainCheckpoint` of the last report, or None before the first. Call under lock."""

        if self.state is None:
            return None
        k = self.reported
        return ChainCheckpoint(state=self.state, positions=self.positions[:k].copy(), energy=self.energy[:k].copy(),
                               burn_in_done=self.burn_in_done)


def _run_chain(system, state_point, step_size: float, seed, mode: str, num_samples: int, interval: int,
               burn_in: int, advance: Callable[[int], None], progress: _ChainProgress, start,
               stop: threading.Event):
    """One chain, from a fresh start or from ``start`` (a ChainCheckpoint already restored into ``progress``),
    reporting to ``progress``.

    Work runs in chunks of about :data:`_REPORT_MOVES` trial moves; the sampler's RNG stream does not depend on
    how its sweeps are split into calls, so neither chunking nor a resume changes a single bit of the result.
    """
    sampler = make_sampler(system, state_point, seed, step_size)
    n_particles = int(system["n_particles"])
    done, warm = 0, 0  # samples stored; sweeps of the current burn-in already run
    if start is not None:
        sampler.set_state(start.state)
        done, warm = start.num_samples, start.burn_in_done
    positions, energy = progress.positions, progress.energy
    sweep_chunk = max(1, _REPORT_MOVES // n_particles)

    def burn(total: int) -> None:
        nonlocal warm
        while warm < total:
            if stop.is_set():
                raise _Stopped
            step = min(sweep_chunk, total - warm)
            sampler.run(step)
            warm += step
            if warm < total:
                progress.report(sampler, done, warm)

    if mode == "continuous":
        burn(burn_in)
        if done == 0:
            sampler.reset_acceptance()  # idempotent here: no move has been made since the burn-in ended
        chunk = max(1, min(num_samples // 20, _REPORT_MOVES // (n_particles * interval)))
        while done < num_samples:
            if stop.is_set():
                raise _Stopped
            count = min(chunk, num_samples - done)
            p, e = sampler.sample(count, interval)
            positions[done : done + count] = p
            energy[done : done + count] = e
            done += count
            progress.report(sampler, done, warm)
            advance(count)
    elif mode == "restart":
        while done < num_samples:
            if done and warm == 0:
                sampler.randomize()  # the constructor already placed the first start at random
            burn(burn_in)
            positions[done] = sampler.positions
            energy[done] = sampler.recompute_energy()  # from scratch, as in continuous mode
            done, warm = done + 1, 0
            progress.report(sampler, done, warm)
            advance(1)
    else:
        raise ValueError(f"config key sampling.mode = {mode!r}: expected 'continuous' or 'restart'")
    return positions, energy, int(sampler.accepted), int(sampler.attempted), _energy_drift_note(sampler)


def sampling_fingerprint(system: Mapping[str, Any], state_point: Mapping[str, Any], settings: Mapping[str, Any],
                         preliminary: Mapping[str, Any], seed, code: str = "") -> str:
    """SHA-256 of everything the samples of :func:`run_sampling` depend on: the system, the state point, the
    sampling settings that shape the chains, the step size and times of the preliminary run, the seed, and
    ``code`` (the caller's digest of the sources). A checkpoint with another fingerprint is not resumed."""
    from vaepipe import __version__

    record = {
        "format": CHECKPOINT_FORMAT,
        "system": dict(system),
        "state_point": {k: float(state_point[k]) for k in ("gamma", "temperature")},
        "settings": {k: settings[k] for k in _RESULT_SETTINGS},
        "preliminary": {k: preliminary[k] for k in ("step_size", "equilibration_sweeps", "decorrelation_sweeps")},
        "seed": seed_provenance(seed),
        "code": str(code),
        "vaepipe_version": str(__version__),
    }
    return hashlib.sha256(dumps(record).encode("utf-8")).hexdigest()


def _load_checkpoint(path: Path, fingerprint: str, num_chains: int) -> list:
    """The chains of a matching checkpoint at ``path``; [None] * num_chains (and a log line) otherwise."""
    fresh = [None] * num_chains
    if not path.is_file():
        return fresh
    try:
        found, chains, _ = read_checkpoint(path)
    except ValueError as exc:
        print(f"ignoring checkpoint {path}: {exc}; starting afresh", file=sys.stderr)
        return fresh
    if found != fingerprint or len(chains) != num_chains:
        print(f"ignoring checkpoint {path}: it was written for other parameters, inputs or code (fingerprint "
              f"{found[:12]}, this run {fingerprint[:12]}); starting afresh", file=sys.stderr)
        return fresh
    return chains


def run_sampling(system: Mapping[str, Any], state_point: Mapping[str, Any], settings: Mapping[str, Any],
                 preliminary: Mapping[str, Any], seed, threads: int = 1, state: str = "",
                 progress: bool = True, checkpoint: str | Path | None = None, checkpoint_interval: float = 300.0,
                 code: str = "", on_checkpoint: Callable[[int], None] | None = None) -> SamplingResult:
    """Sampling run of one state point (see the module docstring).

    Parameters
    ----------
    system : the config's ``system`` dict.
    state_point : ``{'gamma': ..., 'temperature': ...}``.
    settings : the config's ``sampling`` dict.
    preliminary : the preliminary summary of this state point (step_size, equilibration_sweeps,
        decorrelation_sweeps, gamma, temperature).
    seed : numpy.random.SeedSequence of the stage (``derive_seed(seed, 'sample', state)``); chain i uses
        ``chain_seeds(seed, chains)[i]``.
    threads : chains run at once (the result does not depend on it).
    checkpoint : path of a checkpoint file (:func:`vaepipe.io.write_checkpoint`), or None for none. A checkpoint
        found there with the fingerprint of this run (:func:`sampling_fingerprint`) is resumed; one of another
        run is ignored. The caller removes it once the result is safely stored.
    checkpoint_interval : seconds of wall time between checkpoints; 0 writes none (a found one is still
        resumed). The result does not depend on it: a resumed run is bitwise the uninterrupted one.
    code : digest of the code that makes the samples, part of the fingerprint.
    on_checkpoint : called after each checkpoint with the number of samples it holds; an exception raised
        there stops the run like an interruption (tests use it).

    An interruption (KeyboardInterrupt, or SIGTERM when the caller maps it to one) stops the chains at their
    next chunk and writes a last checkpoint before it propagates.
    """
    for key in ("gamma", "temperature"):
        if float(preliminary[key]) != float(state_point[key]):
            raise ValueError(f"preliminary summary has {key} = {preliminary[key]}, but this state point has "
                             f"{state_point[key]}; rerun the preliminary rule for this state point")
    if isinstance(seed, (int, np.integer)):
        seed = np.random.SeedSequence(int(seed))
    mode = str(settings["mode"])
    if mode not in ("continuous", "restart"):
        raise ValueError(f"config key sampling.mode = {mode!r}: expected 'continuous' or 'restart'")
    checkpoint_interval = float(checkpoint_interval)
    if not checkpoint_interval >= 0:
        raise ValueError(f"checkpoint_interval = {checkpoint_interval}: expected seconds >= 0 (0 = no checkpoints)")
    num_chains = int(settings["chains"])
    per_chain = int(settings["samples_per_chain"])
    step_size = float(preliminary["step_size"])
    equilibration = int(preliminary["equilibration_sweeps"])
    interval = int(preliminary["decorrelation_sweeps"])
    burn_in = burn_in_sweeps(equilibration, float(settings["equilibration_factor"]),
                             int(settings["min_equilibration_sweeps"]))
    print(f"{num_chains} chains x {per_chain} samples, mode {mode}, step size {step_size:.6g}, burn-in "
          f"{burn_in} sweeps, interval {interval} sweeps, {threads} thread(s)", file=sys.stderr)

    starts = [None] * num_chains
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        fingerprint = sampling_fingerprint(system, state_point, settings, preliminary, seed, code)
        starts = _load_checkpoint(checkpoint, fingerprint, num_chains)
        for i, start in enumerate(starts):
            if start is not None:
                print(f"resumed chain {i} at sample {start.num_samples} of {per_chain} (burn-in sweep "
                      f"{start.burn_in_done} of {burn_in}) from checkpoint {checkpoint}", file=sys.stderr)
    writes = checkpoint is not None and checkpoint_interval > 0

    lock = threading.Lock()
    chains = [_ChainProgress(per_chain, int(system["n_particles"]), int(system["dim"]), lock)
              for _ in range(num_chains)]
    for chain, start in zip(chains, starts):
        if start is not None:
            chain.restore(start)
    stop = threading.Event()
    written = [0]  # sum of the chains' report counts at the last checkpoint (a resumed state is on disk)

    def save() -> int | None:
        """Write the chains' last reports; the samples they hold, or None when nothing changed."""
        with lock:
            snapshots = [c.snapshot() for c in chains]
            version = sum(c.version for c in chains)
        if version == written[0]:
            return None

        stored = sum(s.num_samples for s in snapshots if s is not None)
        write_checkpoint(checkpoint, fingerprint, snapshots, {"state": state})
        written[0] = version
        print(f"checkpoint: {stored} of {num_chains * per_chain} samples -> {checkpoint}", file=sys.stderr)
        return stored

    resumed = sum(s.num_samples for s in starts if s is not None)
    with _progress_bar(num_chains * per_chain, f"sampling {state} samples", progress) as bar:
        bar.update(resumed)

        def advance(count: int) -> None:
            with lock:
                bar.update(count)

        with ThreadPoolExecutor(max_workers=max(1, min(int(threads), num_chains))) as pool:
            futures = [pool.submit(_run_chain, system, state_point, step_size, s, mode, per_chain, interval,
                                   burn_in, advance, chains[i], starts[i], stop)
                       for i, s in enumerate(chain_seeds(seed, num_chains))]
            try:
                pending = set(futures)
                last = time.monotonic()
                while pending:
                    timeout = max(0.0, last + checkpoint_interval - time.monotonic()) if writes else None
                    finished, pending = wait(pending, timeout=timeout, return_when=FIRST_EXCEPTION)
                    for future in finished:
                        future.result()  # a failed chain stops the run
                    if writes and pending and time.monotonic() >= last + checkpoint_interval:
                        stored = save()
                        last = time.monotonic()
                        if stored is not None and on_checkpoint is not None:
                            on_checkpoint(stored)
            except BaseException:
                stop.set()
                wait(futures)  # each chain stops at its next chunk; its last report is a point to resume from
                if writes:
                    try:
                        save()
                    except Exception as exc:  # the interruption matters more than a failed last checkpoint
                        print(f"could not write a last checkpoint: {exc}", file=sys.stderr)
                raise
            outcomes = [f.result() for f in futures]
    for i, outcome in enumerate(outcomes):
        print(f"chain {i}: {outcome[4]}", file=sys.stderr)

    positions = np.concatenate([o[0] for o in outcomes])
    energy = np.concatenate([o[1] for o in outcomes])
    chain = np.repeat(np.arange(num_chains, dtype=np.int64), per_chain)
    accepted = sum(o[2] for o in outcomes)
    attempted = sum(o[3] for o in outcomes)
    attrs = {
        "state": state,
        "gamma": float(state_point["gamma"]),
        "temperature": float(state_point["temperature"]),
        "n_particles": int(system["n_particles"]),
        "box_length": float(system["box_length"]),
        "dim": int(system["dim"]),
        "boundary": str(system["boundary"]),
        "cutoff": math.nan if system["cutoff"] is None else float(system["cutoff"]),
        "tail_correction": bool(system["tail_correction"]),
        "step_size": step_size,
        "acceptance_rate": accepted / attempted if attempted else math.nan,
        "equilibration_sweeps": equilibration,
        "decorrelation_sweeps": interval,
        "burn_in_sweeps": burn_in,
        "sampling_mode": mode,
        "num_chains": num_chains,
        "samples_per_chain": per_chain,
    }
    return SamplingResult(positions=positions, energy=energy, chain=chain, attrs=attrs)


# --------------------------------------------------------------------------- short relaxation of decoded configurations


def relax(positions: np.ndarray, sweeps, system: Mapping[str, Any], state_point: Mapping[str, Any],
          step_size: float, seed: np.random.SeedSequence) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A short Metropolis relaxation of each configuration with the project's sampler at the state point.

    positions : (S, N, dim) sigma, inside the box (decoded or generated configurations). sweeps : the sweep
    counts k to report, e.g. [1, 10]; each configuration runs max(k) sweeps in one chain and is recorded after
    each k. Configuration i uses the i-th child of ``seed``. A configuration the sampler cannot start from (two
    particles on the same point: infinite energy) is left as it is, with energy inf.

    Returns {k: (positions (S, N, dim), total energies (S,) in epsilon)}.
    """
    from vaepipe.mc import Sampler

    marks = sorted({int(k) for k in sweeps})
    if not marks or marks[0] < 1:
        raise ValueError(f"relax: sweeps must be integers >= 1, got {list(sweeps)}")
    positions = np.asarray(positions, dtype=np.float64)
    out = {k: (positions.copy(), np.full(len(positions), np.inf)) for k in marks}
    children = seed.spawn(len(positions))
    for i, start in enumerate(positions):
        try:
            sampler = make_sampler(system, state_point, children[i], step_size)
            sampler.positions = start
        except ValueError:
            continue
        done = 0
        for k in marks:
            sampler.run(k - done)
            done = k
            out[k][0][i] = sampler.positions
            out[k][1][i] = sampler.energy
    return out
