"""Minima of the sampler's energy (LJ + gravity, reduced units), with the C++ core's energy and forces.

- :func:`quench`: local minimization of configurations to their inherent structures (bounded L-BFGS-B inside the
  box; periodic axes wrap instead of being bounded).
- :func:`basin_hopping`: a global search (scipy's ``basinhopping`` over :func:`quench`), several independent
  seeds, the lowest energy found and how many seeds found it.

    from vaepipe.minimize import quench, basin_hopping
    result = quench(positions, box_length=5.0, gamma=0.5)     # .positions, .energy, .evaluations, .converged
    best = basin_hopping(13, box_length=5.0, seeds=4, steps=200, seed=0)   # .energy, .seeds_agreeing

Energies in eps (totals, gravity included), lengths in sigma; the walls of ``reflect`` and ``slab`` exert no
force, they only bound the particle centres (as in the sampler), so a minimum may rest on a wall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vaepipe import _validate
from vaepipe.boundary import check_system, periodic_axes
from vaepipe.energy import checked_batch, forces, potential_energy

__all__ = ["QuenchResult", "BasinHoppingResult", "quench", "basin_hopping"]

#: Default convergence: the largest force component on a free coordinate, eps / sigma.
FORCE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class QuenchResult:
    """positions (S, N, dim) or (N, dim), sigma; energy (S,) or float, eps; evaluations: energy-and-force
    evaluations per configuration; converged: whether the largest free force component fell below the
    tolerance; max_force: that component (eps / sigma)."""

    positions: np.ndarray
    energy: np.ndarray | float
    evaluations: np.ndarray | int
    converged: np.ndarray | bool
    max_force: np.ndarray | float


@dataclass(frozen=True)
class BasinHoppingResult:
    """The lowest minimum found: positions (N, dim), energy (eps); per seed, the lowest energy it found
    (``seed_energies``); ``seeds_agreeing``: how many seeds came within ``agreement`` eps of the lowest;
    ``evaluations``: energy-and-force evaluations over all seeds."""

    positions: np.ndarray
    energy: float
    seed_energies: np.ndarray
    seeds_agreeing: int
    evaluations: int


def _setup(box_length, gamma, dim, boundary, cutoff):
    """(system, periodic axes, the energy's keywords) of a checked system."""
    system = check_system(box_length, gamma, dim, boundary, cutoff, False)
    system["energy_kwargs"] = {k: system[k] for k in ("gamma", "boundary", "cutoff")}
    return system, periodic_axes(system["boundary"], dim)


#: The optimizers work on u = x * _SCALE. L-BFGS-B's first step (its Hessian guess is the identity) moves by
#: the gradient itself, which for a liquid configuration is tens of eps/sigma: tens of sigma, projected onto the
#: walls, where particles pile up at the same place. In these units the first step moves x by gradient / 100,
#: about what the LJ well's curvature (57 eps/sigma^2 at its minimum) would give.
_SCALE = 10.0


def _objective(shape, system, periodic):
    """f(u) -> (energy, gradient) for scipy, u the flat positions times _SCALE, with periodic axes wrapped into
    [0, L)."""
    length = system["box_length"]
    kwargs = system["energy_kwargs"]
    count = [0]

    def wrap(flat):
        x = flat.reshape(shape) / _SCALE
        if periodic:
            x[:, list(periodic)] = np.mod(x[:, list(periodic)], length)
        # L-BFGS-B may step a rounding error past a bound
        return np.clip(x, 0.0, length)

    def fun(flat):
        count[0] += 1
        x = wrap(flat)
        energy = potential_energy(x, length, **kwargs)
        if not np.isfinite(energy):  # two particles at the same place: the line search steps back
            return 1e30, np.zeros_like(flat)
        return energy, -forces(x, length, **kwargs).ravel() / _SCALE

    return fun, wrap, count


def _bounds(shape, length, periodic):
    n, dim = shape
    free = [(None, None) if k in periodic else (0.0, length * _SCALE) for k in range(dim)]
    return free * n


def _free_force(x, f, length, periodic):
    """Largest force component not held by a wall (a particle on a wall pushed into it is at a bounded
    minimum)."""
    held = np.zeros_like(f, dtype=bool)
    for k in range(x.shape[1]):
        if k in periodic:
            continue
        held[:, k] = ((x[:, k] <= 0.0) & (f[:, k] < 0)) | ((x[:, k] >= length) & (f[:, k] > 0))
    free = np.where(held, 0.0, np.abs(f))
    return float(free.max()) if free.size else 0.0


#: Forces above this (eps / sigma) are first relaxed by capped steepest descent: L-BFGS-B's first step is the
#: scaled gradient, and from an overlap (forces of 1e3-1e7) it would throw particles onto the walls.
_PRE_RELAX_FORCE = 20.0
#: The largest displacement of one capped steepest-descent step, sigma.
_PRE_RELAX_STEP = 0.05


def _mirror(x, length, periodic):
    """Coordinates outside [0, L] mirrored back (the sampler's walls), periodic axes wrapped."""
    x = x.copy()
    for k in range(x.shape[1]):
        if k in periodic:
            x[:, k] = np.mod(x[:, k], length)
        else:
            x[:, k] = np.abs(x[:, k])
            x[:, k] = np.where(x[:, k] > length, 2 * length - x[:, k], x[:, k])
    return np.clip(x, 0.0, length)


def _pre_relax(x, system, periodic, max_steps=1000):
    """Capped steepest descent until no force component exceeds _PRE_RELAX_FORCE: each step moves every particle
    along its force, the most strongly pushed one by _PRE_RELAX_STEP sigma. Returns (positions, evaluations)."""
    length = system["box_length"]
    kwargs = system["energy_kwargs"]
    for step in range(max_steps):
        f = forces(x, length, **kwargs)
        largest = float(np.abs(f).max())
        if largest <= _PRE_RELAX_FORCE:
            return x, step + 1
        x = _mirror(x + f * (_PRE_RELAX_STEP / largest), length, periodic)
    return x, max_steps


def _quench_one(x, system, periodic, max_iterations, tolerance):
    from scipy.optimize import minimize

    x, pre = _pre_relax(x, system, periodic)
    fun, wrap, count = _objective(x.shape, system, periodic)
    count[0] += pre
    result = minimize(fun, x.ravel() * _SCALE, jac=True, method="L-BFGS-B",
                      bounds=_bounds(x.shape, system["box_length"], periodic),
                      options={"maxiter": int(max_iterations), "gtol": float(tolerance) / _SCALE, "ftol": 1e-15,
                               "maxcor": 20})
    out = wrap(result.x)
    kwargs = system["energy_kwargs"]
    energy = float(potential_energy(out, system["box_length"], **kwargs))
    max_force = _free_force(out, forces(out, system["box_length"], **kwargs), system["box_length"], periodic)
    return out, energy, count[0], max_force


def quench(positions, box_length, gamma=0.0, boundary="reflect", cutoff=None, max_iterations: int = 2000,
           tolerance: float = FORCE_TOLERANCE) -> QuenchResult:
    """Local minimization of each configuration (N, dim) or (S, N, dim) to its inherent structure: L-BFGS-B
    on the exact energy and forces, every coordinate bounded to [0, L] except along periodic axes (which wrap).

    Overlapping configurations (a force component above 20 eps / sigma) are first relaxed by capped steepest
    descent (the most strongly pushed particle moves 0.05 sigma a step), counted in ``evaluations``. Stops when
    the largest projected force component is below ``tolerance`` (eps / sigma) or after ``max_iterations``
    iterations; ``converged`` says which. Deterministic: no randomness is involved.
    """
    batch, single, _ = checked_batch(positions, box_length, gamma, boundary, cutoff)
    system, periodic = _setup(box_length, gamma, batch.shape[-1], boundary, cutoff)
    if not (int(max_iterations) >= 1):
        _validate.fail("max_iterations", max_iterations, "an integer >= 1")
    if not (np.isfinite(tolerance) and tolerance > 0):
        _validate.fail("tolerance", tolerance, "a positive force in eps / sigma")
    results = [_quench_one(x, system, periodic, max_iterations, tolerance) for x in batch]
    out = np.stack([r[0] for r in results]) if results else np.empty_like(batch)
    energy = np.array([r[1] for r in results])
    evaluations = np.array([r[2] for r in results], dtype=np.int64)
    max_force = np.array([r[3] for r in results])
    converged = max_force < 10 * tolerance  # L-BFGS-B's projected-gradient test, with room for its scaling
    if single:
        return QuenchResult(out[0], float(energy[0]), int(evaluations[0]), bool(converged[0]), float(max_force[0]))
    return QuenchResult(out, energy, evaluations, converged, max_force)


def _random_start(n, dim, length, rng, min_distance=0.9, attempts=100_000):
    out = np.empty((n, dim))
    placed = 0
    for _ in range(attempts):
        p = rng.uniform(0.0, length, dim)
        if placed == 0 or np.min(np.sum((out[:placed] - p) ** 2, axis=1)) >= min_distance ** 2:
            out[placed] = p
            placed += 1
            if placed == n:
                return out
    raise ValueError(f"n_particles={n} is invalid: could not place them {min_distance} sigma apart in a box of "
                     f"side {length}; fix: fewer particles or a larger box")


def basin_hopping(n_particles: int, box_length, gamma=0.0, boundary="reflect", cutoff=None, dim: int = 3,
                  seeds: int = 4, steps: int = 200, step_size: float = 0.4, temperature: float = 0.8,
                  seed=0, agreement: float = 1e-4, start=None) -> BasinHoppingResult:
    """Global minimum search: ``seeds`` independent basin-hopping runs (scipy ``basinhopping``, ``steps`` hops
    of uniform displacements up to ``step_size`` sigma per coordinate, Metropolis at ``temperature`` eps over
    quenched energies), each from a random start (no pair below 0.9 sigma) or from ``start`` (N, dim).

    ``seed``: an int or numpy SeedSequence; the same seed gives the same result. The lowest minimum is
    returned with the number of seeds that came within ``agreement`` eps of it: all of them is good evidence of
    the global minimum; one of them says the budget is short.
    """
    from scipy.optimize import basinhopping

    for name, value, low in (("n_particles", n_particles, 2), ("seeds", seeds, 1), ("steps", steps, 1)):
        if not (isinstance(value, (int, np.integer)) and value >= low):
            _validate.fail(name, value, f"an integer >= {low}")
    system, periodic = _setup(box_length, gamma, dim, boundary, cutoff)
    length = system["box_length"]
    if start is not None:
        start = _validate.positions(start, length, dim, n_particles=n_particles)
    streams = np.random.SeedSequence(seed) if not isinstance(seed, np.random.SeedSequence) else seed
    best_x, best_e, per_seed, total = None, np.inf, [], 0
    for child in streams.spawn(int(seeds)):
        rng = np.random.default_rng(child)
        x0 = start.copy() if start is not None else _random_start(n_particles, dim, length, rng)
        fun, wrap, count = _objective((n_particles, dim), system, periodic)

        def take_step(flat, rng=rng):
            x = flat.reshape(n_particles, dim) / _SCALE + rng.uniform(-step_size, step_size, (n_particles, dim))
            x, pre = _pre_relax(_mirror(x, length, periodic), system, periodic)
            count[0] += pre
            return x.ravel() * _SCALE

        result = basinhopping(fun, _pre_relax(x0, system, periodic)[0].ravel() * _SCALE, niter=int(steps),
                              T=float(temperature), take_step=take_step,
                              minimizer_kwargs={"method": "L-BFGS-B", "jac": True,
                                                "bounds": _bounds((n_particles, dim), length, periodic),
                                                "options": {"gtol": FORCE_TOLERANCE / _SCALE, "ftol": 1e-15}},
                              seed=int(rng.integers(2 ** 32)))
        total += count[0]
        x = wrap(result.x)
        energy = float(potential_energy(x, length, **system["energy_kwargs"]))
        per_seed.append(energy)
        if energy < best_e:
            best_x, best_e = x, energy
    per_seed = np.array(per_seed)
    return BasinHoppingResult(best_x, best_e, per_seed, int(np.sum(per_seed <= best_e + agreement)), int(total))
