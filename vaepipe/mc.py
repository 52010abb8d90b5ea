"""Metropolis Monte Carlo of Lennard-Jones particles under gravity: a thin wrapper over the C++ core.

Model and units (reduced LJ units: sigma, eps, T* = kT/eps, mass 1):

    U / eps = sum_{i<j} 4 [ r_ij^-12 - r_ij^-6 ]  +  4 gamma sum_i z_i

z is the last coordinate, the height above the floor, in [0, L]; gamma = m g sigma / (4 eps), so a larger gamma
makes the fluid sink. A trial move displaces one particle uniformly in [-step_size, step_size]^dim and is
accepted with probability min(1, exp(-dU / T)) (the seed slides state this rule inverted; this is the standard
Metropolis rule). With boundary="reflect" a trial coordinate outside [0, L] is mirrored back into the box before
the test, which keeps the proposal symmetric, so detailed balance holds at the walls.

All loops run in C++ with the GIL released. Long calls run in chunks, so Ctrl-C works and progress can be shown;
chunking does not change the random stream, so results are the same either way.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from vaepipe import _validate
from vaepipe.boundary import check_system
from vaepipe._compiled import core

__all__ = ["Sampler", "simd_level", "seed_state"]

# About this many trial moves between returns to Python (0.05-0.5 s): often enough for Ctrl-C and progress.
_MOVES_PER_CHUNK = 2_000_000

#: The largest energy trace :meth:`Sampler.run_trace` records, in bytes (8 per recorded sweep): 1 GiB, 134 million
#: records. Its chunks and their concatenation hold up to twice that at the end; a longer run records less often
#: (a larger ``every``) or runs in pieces.
MAX_TRACE_BYTES = 2**30

NEIGHBOR_MODES = ("auto", "on", "off")


def simd_level() -> str:
    """Instruction set of the pair kernel in use on this CPU: 'avx512', 'avx2' or 'sse2'.

    Set the environment variable VAEPIPE_SIMD to one of these before importing to force a lower one.
    """
    return core().simd_level()


def seed_state(seed) -> list[int]:
    """The 256-bit xoshiro256** state for ``seed`` (an int >= 0 or a numpy.random.SeedSequence)."""
    if isinstance(seed, np.random.SeedSequence):
        seq = seed
    else:
        seq = np.random.SeedSequence(_validate.nonnegative_int("seed", seed))
    state = [int(w) for w in seq.generate_state(4, np.uint64)]
    if not any(state):  # xoshiro's one forbidden state; SeedSequence makes it astronomically unlikely
        state[0] = 1
    return state


class Sampler:
    """Metropolis sampler of ``n_particles`` LJ particles under gravity.

    Parameters
    ----------
    n_particles : int
        Number of particles N.
    box_length : float
        Side L of the cubic (dim=3) or square (dim=2) box, sigma.
    temperature : float
        T* = kT/eps.
    gamma : float
        Gravity strength m g sigma / (4 eps); the potential is 4 gamma z per particle. Must be 0 when periodic.
    dim : int
        2 or 3.
    boundary : {"reflect", "periodic", "slab"}
        "reflect": closed box, trial coordinates mirrored at the walls. "periodic": minimum image in every
        direction (needs a cutoff <= L/2; no gravity). "slab": periodic along the horizontal axes, mirrored walls
        at the floor and the ceiling of the height axis (needs a cutoff <= L/2; gravity allowed).
    cutoff : float or None
        Pair cutoff rc, sigma (truncated, not shifted); None for no cutoff.
    tail_correction : bool
        Add the long-range correction N (8/3) pi rho [rc^-9/3 - rc^-3] (3D) to the energy; periodic only.
    seed : int or numpy.random.SeedSequence
        Seeds the xoshiro256** stream; the same seed gives bitwise-identical runs.
    step_size : float
        Maximum displacement per coordinate of a trial move, sigma, in (0, L/2].
    positions : array_like of shape (N, dim), optional
        Starting configuration. By default particles are placed at random with no pair closer than 0.9 sigma,
        or on a simple lattice if random insertion jams; ValueError if N cannot fit.
    neighbor_list : {"auto", "on", "off"}
        Verlet neighbour list (with a cutoff only). "auto" uses it when it holds under half the particles (under
        40 % where the pair cache is the alternative, N <= 1024), and steps aside (all pairs) while the step is
        larger than a quarter of the skin.
    neighbor_skin : float or None
        Verlet skin, sigma. None (the default) chooses it from the step size: 8 step_size within [0.3, 1.5]
        sigma (1.04 sigma for a dense liquid's 0.13 sigma step), following the step when it changes (setting
        step_size, tune_step_size). A float fixes it. A trial move that leaves skin/2 of the particle's reference
        position first moves that reference to the particle's current position (a cell query that refreshes
        that particle's list entries only), so there are no global rebuilds whatever the skin.
    pair_cache : bool
        Without a neighbour list and for N <= 1024, keep all pair energies so that a move computes only the new
        ones (about twice as fast). The trajectory is bit-identical either way; False saves N^2 doubles.
    """

    def __init__(self, n_particles, box_length, temperature, gamma=0.0, dim=3, boundary="reflect", cutoff=None,
                 tail_correction=False, seed=0, step_size=0.2, positions=None, neighbor_list="auto",
                 neighbor_skin=None, pair_cache=True):
        n_particles = _validate.positive_int("n_particles", n_particles)
        if n_particles > _validate.MAX_PARTICLES:
            _validate.fail("n_particles", n_particles, f"at most {_validate.MAX_PARTICLES}")
        system = check_system(box_length, gamma, dim, boundary, cutoff, tail_correction)
        temperature = _validate.positive_float("temperature", temperature, "eps/k")
        step_size = _validate.positive_float("step_size", step_size, "sigma")
        if step_size > system["box_length"] / 2:
            _validate.fail("step_size", step_size, f"at most box_length/2 = {system['box_length'] / 2:g} sigma")
        if neighbor_list not in NEIGHBOR_MODES:
            _validate.fail("neighbor_list", neighbor_list, f"one of {NEIGHBOR_MODES}")
        if neighbor_list == "on" and system["cutoff"] is None:
            _validate.fail("neighbor_list", neighbor_list, "'auto' or 'off' without a cutoff")
        if neighbor_skin is not None:
            neighbor_skin = _validate.positive_float("neighbor_skin", neighbor_skin, "sigma")
        if not isinstance(pair_cache, (bool, np.bool_)):
            _validate.fail("pair_cache", pair_cache, "True or False")
        if positions is not None:
            positions = _validate.positions(positions, system["box_length"], system["dim"], n_particles)
        self._seed = seed
        self._cpp_obj = core().Sampler(
            n_particles=n_particles, temperature=temperature,
            box_length=system["box_length"], gamma=system["gamma"], dim=system["dim"], boundary=system["boundary"],
            cutoff=math.inf if system["cutoff"] is None else system["cutoff"],
            tail_correction=system["tail_correction"], rng_state=seed_state(seed), step_size=step_size,
            neighbor_list=neighbor_list, neighbor_skin=0.0 if neighbor_skin is None else neighbor_skin,
            place=positions is None,
            pair_cache=bool(pair_cache))
        if positions is not None:
            self._cpp_obj.positions = positions
        self._system = dict(system, n_particles=n_particles, temperature=temperature)

    # --- running -------------------------------------------------------------------------------------------

    def _chunk_sweeps(self) -> int:
        return max(1, _MOVES_PER_CHUNK // self.n_particles)

    def run(self, sweeps: int, progress: bool | str = False) -> "Sampler":
        """Run ``sweeps`` sweeps (each n_particles trial moves). Returns self."""
        sweeps = _validate.nonnegative_int("sweeps", sweeps)
        chunk = self._chunk_sweeps()
        with _progress(progress, sweeps, "sweeps") as bar:
            done = 0
            while done < sweeps:
                step = min(chunk, sweeps - done)
                self._cpp_obj.run(step)
                done += step
                bar.update(step)
        return self

    def run_trace(self, sweeps: int, every: int = 1, progress: bool | str = False) -> np.ndarray:
        """Run ``sweeps`` sweeps, recording the total energy / eps after every ``every`` sweeps.

        Returns an array of shape (sweeps // every,). ``sweeps`` is a positive integer; a trace of more than
        :data:`MAX_TRACE_BYTES` (8 bytes a record) is refused before anything runs.
        """
        sweeps = _validate.positive_int("sweeps", sweeps)
        every = _validate.positive_int("every", every)
        records = sweeps // every
        if records * 8 > MAX_TRACE_BYTES:
            max_records = MAX_TRACE_BYTES // 8
            _validate.fail("sweeps", sweeps, f"at most {max_records} recorded sweeps (MAX_TRACE_BYTES = "
                           f"{MAX_TRACE_BYTES} bytes at 8 bytes each), but sweeps // every = {records} records would "
                           f"take {records * 8:.3g} bytes",
                           f"record less often (every >= {-(-sweeps // max_records)}) or run in pieces")
        per_chunk = max(1, self._chunk_sweeps() // every)
        parts = []
        with _progress(progress, sweeps, "sweeps") as bar:
            done = 0
            while done < records:
                step = min(per_chunk, records - done)
                parts.append(self._cpp_obj.run_trace(step * every, every))
                done += step
                bar.update(step * every)
            self._cpp_obj.run(sweeps - records * every)
            bar.update(sweeps - records * every)
        return np.concatenate(parts) if parts else np.empty(0)

    def sample(self, num_samples: int, interval: int, progress: bool | str = False) -> tuple[np.ndarray, np.ndarray]:
        """``num_samples`` times: run ``interval`` sweeps, then keep the configuration.

        Returns positions (num_samples, N, dim) float64 in sigma and energies (num_samples,) float64 in eps; the
        energies are recomputed from scratch for each kept configuration.
        """
        num_samples = _validate.nonnegative_int("num_samples", num_samples)
        interval = _validate.positive_int("interval", interval)
        per_chunk = max(1, self._chunk_sweeps() // interval)
        positions, energies = [], []
        with _progress(progress, num_samples, "samples") as bar:
            done = 0
            while done < num_samples:
                step = min(per_chunk, num_samples - done)
                p, e = self._cpp_obj.sample(step, interval)
                positions.append(p)
                energies.append(e)
                done += step
                bar.update(step)
        if not positions:
            return np.empty((0, self.n_particles, self.dim)), np.empty(0)
        return np.concatenate(positions), np.concatenate(energies)

    def tune_step_size(self, sweeps: int, target_acceptance: float = 0.4, block: int = 10) -> "Sampler":
        """Adapt step_size toward ``target_acceptance`` over ``sweeps`` sweeps, then freeze it.

        Every ``block`` sweeps the step is scaled by (a + 0.05) / (target + 0.05), clipped to [0.5, 2], where a
        is the block's acceptance; the step stays in [1e-4, L/2]. The acceptance counters are reset at the end,
        so acceptance_rate afterwards measures the frozen step. Returns self.
        """
        sweeps = _validate.nonnegative_int("sweeps", sweeps)
        block = _validate.positive_int("block", block)
        if not (isinstance(target_acceptance, numbers.Real) and 0.0 < target_acceptance < 1.0):
            _validate.fail("target_acceptance", target_acceptance, "a fraction in (0, 1)")
        upper = self.box_length / 2
        done = 0
        while done < sweeps:
            step = min(block, sweeps - done)
            attempted, accepted = self.attempted, self.accepted
            self._cpp_obj.run(step)
            rate = (self.accepted - accepted) / max(1, self.attempted - attempted)
            factor = min(2.0, max(0.5, (rate + 0.05) / (target_acceptance + 0.05)))
            self._cpp_obj.step_size = min(upper, max(1e-4, self.step_size * factor))
            done += step
        self.reset_acceptance()
        return self

    def randomize(self) -> "Sampler":
        """New random non-overlapping configuration drawn from this sampler's own stream. Returns self."""
        self._cpp_obj.randomize()
        return self

    # --- state ---------------------------------------------------------------------------------------------

    @property
    def energy(self) -> float:
        """Total potential energy / eps, from incremental bookkeeping (tail correction included when on)."""
        return self._cpp_obj.energy

    def recompute_energy(self) -> float:
        """Total potential energy / eps from scratch; leaves the bookkeeping untouched."""
        return self._cpp_obj.recompute_energy()

    @property
    def positions(self) -> np.ndarray:
        """(N, dim) float64 copy of the coordinates, sigma. Assigning validates shape and box, recomputes energy."""
        return self._cpp_obj.positions

    @positions.setter
    def positions(self, value) -> None:
        self._cpp_obj.positions = _validate.positions(value, self.box_length, self.dim, self.n_particles)

    @property
    def step_size(self) -> float:
        """Maximum displacement per coordinate of a trial move, sigma."""
        return self._cpp_obj.step_size

    @step_size.setter
    def step_size(self, value) -> None:
        value = _validate.positive_float("step_size", value, "sigma")
        if value > self.box_length / 2:
            _validate.fail("step_size", value, f"at most box_length/2 = {self.box_length / 2:g} sigma")
        self._cpp_obj.step_size = value

    @property
    def acceptance_rate(self) -> float:
        """Accepted / attempted moves since construction or the last reset (NaN before any move)."""
        return self.accepted / self.attempted if self.attempted else math.nan

    @property
    def attempted(self) -> int:
        return self._cpp_obj.attempted

    @property
    def accepted(self) -> int:
        return self._cpp_obj.accepted

    def reset_acceptance(self) -> "Sampler":
        self._cpp_obj.set_counters(0, 0)
        return self

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue this run bit for bit.

        positions, the energy bookkeeping (``energy`` total, ``raw_energy`` without the constant tail
        correction), step_size, the RNG state, the move counters, and the neighbour list's per-particle
        reference positions (``neighbor_reference``, None without a current list), from which the same list is
        rebuilt.
        """
        reference = self._cpp_obj.neighbor_reference
        return {
            "positions": self.positions,
            "energy": self.energy,
            "raw_energy": self._cpp_obj.raw_energy,
            "step_size": self.step_size,
            "rng_state": np.array(self._cpp_obj.rng_state, dtype=np.uint64),
            "attempted": self.attempted,
            "accepted": self.accepted,
            "neighbor_reference": np.asarray(reference).reshape(self.n_particles, self.dim) if reference else None,
        }

    def set_state(self, state: dict[str, Any]) -> "Sampler":
        """Restore a state from :meth:`get_state` of a sampler with the same system. Returns self.

        Every field is checked before anything changes, so a bad state leaves the sampler as it was.
        """
        required = {"positions", "raw_energy", "step_size", "rng_state", "attempted", "accepted"}
        if not isinstance(state, dict) or required - set(state):
            missing = sorted(required - set(state)) if isinstance(state, dict) else sorted(required)
            _validate.fail("state", f"<{type(state).__name__} without {missing}>", "a dict from Sampler.get_state()")
        positions = _validate.positions(state["positions"], self.box_length, self.dim, self.n_particles,
                                        name="state['positions']")
        step_size = _validate.positive_float("state['step_size']", state["step_size"], "sigma")
        if step_size > self.box_length / 2:
            _validate.fail("state['step_size']", step_size, f"at most box_length/2 = {self.box_length / 2:g} sigma")
        raw_energy = _validate.finite_float("state['raw_energy']", state["raw_energy"], "eps")
        rng = np.asarray(state["rng_state"])
        if rng.shape != (4,) or not np.issubdtype(rng.dtype, np.integer) or rng.min() < 0 or not rng.any():
            _validate.fail("state['rng_state']", state["rng_state"], "4 unsigned 64-bit integers, not all zero")
        counters = [_validate.nonnegative_int(f"state[{k!r}]", int(state[k]) if isinstance(state[k], np.integer)
                                              else state[k]) for k in ("attempted", "accepted")]
        reference = state.get("neighbor_reference")
        if reference is not None:
            # The neighbour list's per-particle reference positions: one point per particle, like positions.
            reference = _validate.positions(reference, self.box_length, self.dim, self.n_particles,
                                            name="state['neighbor_reference']",
                                            fix="pass get_state()['neighbor_reference'] of a sampler with the same "
                                                "system, or None to rebuild the list")
        self._cpp_obj.positions = positions
        self.step_size = step_size
        self._cpp_obj.raw_energy = raw_energy
        self._cpp_obj.rng_state = [int(w) for w in rng.astype(np.uint64)]
        self._cpp_obj.set_counters(*counters)
        self._cpp_obj.neighbor_reference = [] if reference is None else reference.ravel().tolist()
        return self

    # --- parameters ----------------------------------------------------------------------------------------

    n_particles = property(lambda self: self._system["n_particles"], doc="Number of particles N.")
    box_length = property(lambda self: self._system["box_length"], doc="Box side L, sigma.")
    temperature = property(lambda self: self._system["temperature"], doc="T* = kT/eps.")
    gamma = property(lambda self: self._system["gamma"], doc="Gravity strength m g sigma / (4 eps).")
    dim = property(lambda self: self._system["dim"], doc="2 or 3.")
    boundary = property(lambda self: self._system["boundary"], doc="'reflect', 'periodic' or 'slab'.")
    cutoff = property(lambda self: self._system["cutoff"], doc="Pair cutoff, sigma, or None.")
    tail_correction = property(lambda self: self._system["tail_correction"], doc="Tail correction on?")
    seed = property(lambda self: self._seed, doc="The seed given at construction.")
    uses_neighbor_list = property(lambda self: self._cpp_obj.uses_neighbor_list,
                                  doc="Whether moves use the Verlet neighbour list.")
    uses_pair_cache = property(lambda self: self._cpp_obj.uses_pair_cache,
                               doc="Whether moves use the cached pair energies.")
    neighbor_rebuilds = property(lambda self: self._cpp_obj.neighbor_rebuilds,
                                 doc="Full Verlet list builds so far.")
    neighbor_refreshes = property(lambda self: self._cpp_obj.neighbor_refreshes,
                                  doc="Single-particle list refreshes so far (a trial beyond skin/2 of the reference).")
    neighbor_skin = property(lambda self: self._cpp_obj.neighbor_skin,
                             doc="Verlet skin in use, sigma (the automatic one follows step_size).")
    mean_neighbors = property(lambda self: self._cpp_obj.mean_neighbors,
                              doc="Mean length of the neighbour list now (0 without a current list).")
    kernel = property(lambda self: self._cpp_obj.kernel, doc="Instruction set of this sampler's pair kernel.")

    def __repr__(self) -> str:
        s = self._system
        return (f"Sampler(n_particles={s['n_particles']}, box_length={s['box_length']}, "
                f"temperature={s['temperature']}, gamma={s['gamma']}, dim={s['dim']}, boundary={s['boundary']!r}, "
                f"cutoff={s['cutoff']}, tail_correction={s['tail_correction']}, step_size={self.step_size:.4g})")


class _NoProgress:
    def update(self, n):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(progress, total, unit):
    if not progress:
        return _NoProgress()
    from tqdm.auto import tqdm

    desc = progress if isinstance(progress, str) else None
    return tqdm(total=total, unit=unit, desc=desc, mininterval=1.0, dynamic_ncols=True)
