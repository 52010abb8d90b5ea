"""The preliminary run of a state point: step-size tuning, equilibration and decorrelation time.

Preliminary run (:func:`run_preliminary`)
    1. From a random start, adapt the step size for ``tune_sweeps`` sweeps towards ``target_acceptance``; then
       freeze it.
    2. Draw a *new* random start and record, after every sweep, the energy U/epsilon and the mean height
       z/sigma for ``sweeps`` sweeps at the frozen step. Starting afresh makes the detected transient exactly
       what each production chain goes through (a random start at the frozen step), not a leftover of tuning.
    3. For every observable: the equilibration point t0 (Chodera's maximum of the effective sample size). The
       equilibration length of the state point, ``equilibration_sweeps``, is the largest t0 over the governing
       observables (``observables`` in the config).
    4. After that common t0: the normalized autocorrelation, the decorrelation time (first lag with
       autocorrelation below ``decorrelation_threshold``), the statistical inefficiency g, tau_int = (g - 1)/2,
       n_eff = (n - t0)/g, and a blocked mean and standard error. ``decorrelation_sweeps`` is the largest
       decorrelation time over the governing observables.

Units: lengths in sigma, energies in epsilon, Monte Carlo time in sweeps (one sweep = n_particles trial moves).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from vaepipe import decorrelation
from vaepipe.sampling import _energy_drift_note, _progress_bar, make_sampler

__all__ = ["OBSERVABLES", "MIN_DECORRELATIONS", "PreliminaryResult", "run_preliminary", "analyze_trace"]

#: Observables recorded in the preliminary trace, and their units.
OBSERVABLES = {"energy": "U/epsilon", "mean_height": "z/sigma"}

#: The equilibrated part of the preliminary trace must span at least this many decorrelation times; fewer give
#: a decorrelation time and error bars that are mostly noise.
MIN_DECORRELATIONS = 20

_TRACE_CHUNK = 1000  # sweeps per compiled call while recording the trace (bounds memory, paces progress)


@dataclass(frozen=True)
class PreliminaryResult:
    """Outcome of :func:`run_preliminary`.

    summary : JSON-able dict (see :data:`vaepipe.io.PRELIMINARY_KEYS`).
    traces : {observable: (trace_sweeps,) float64}, value after each recorded sweep.
    autocorrelations : {observable: (max_lag + 1,) float64}, normalized autocorrelation of the trace after
        ``summary['equilibration_sweeps']``, lag in sweeps.
    """

    summary: dict
    traces: dict = field(default_factory=dict)
    autocorrelations: dict = field(default_factory=dict)


def _record_trace(sampler, sweeps: int, bar) -> dict[str, np.ndarray]:
    energy, height = [], []
    done = 0
    while done < sweeps:
        chunk = min(_TRACE_CHUNK, sweeps - done)
        positions, energies = sampler.sample(chunk, 1)
        energy.append(np.asarray(energies, dtype=np.float64))
        height.append(np.asarray(positions)[..., -1].mean(axis=1))
        done += chunk
        bar.update(chunk)
    return {"energy": np.concatenate(energy), "mean_height": np.concatenate(height)}


def _is_constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


def analyze_trace(x: np.ndarray, t0: int, threshold: float, trace_key: str = "preliminary.sweeps") -> dict:
    """Correlation analysis of ``x[t0:]`` (one value per sweep); times in sweeps.

    Returns decorrelation_sweeps, statistical_inefficiency, tau_int, n_eff, mean, sem. A constant series (an
    observable that cannot change, e.g. the energy of one particle without gravity) decorrelates at once:
    decorrelation 1, g = 1, sem 0.
    """
    tail = np.asarray(x[t0:], dtype=np.float64)
    n = tail.size
    if n < decorrelation.MIN_POINTS:
        raise ValueError(
            f"config key {trace_key}: only {n} sweeps of the trace remain after the equilibration at sweep {t0}; "
            f"expected many decorrelation times; fix: raise {trace_key}")
    if _is_constant(tail):
        return {"decorrelation_sweeps": 1, "statistical_inefficiency": 1.0, "tau_int": 0.0, "n_eff": float(n),
                "mean": float(tail[0]), "sem": 0.0}
    try:
        lag = decorrelation.decorrelation_time(tail, threshold)
    except ValueError as exc:
        raise ValueError(
            f"config key {trace_key}: the autocorrelation of the {n} equilibrated sweeps never drops below "
            f"{threshold} ({exc}); fix: raise {trace_key}") from exc
    g = decorrelation.statistical_inefficiency(tail)
    mean, sem = decorrelation.block_average(tail)
    return {"decorrelation_sweeps": int(lag), "statistical_inefficiency": float(g), "tau_int": (g - 1.0) / 2.0,
            "n_eff": n / g, "mean": float(mean), "sem": float(sem)}


def run_preliminary(system: Mapping[str, Any], state_point: Mapping[str, Any], settings: Mapping[str, Any],
                    seed, state: str = "", progress: bool = True) -> PreliminaryResult:
    """Preliminary run of one state point (see the module docstring).

    Parameters
    ----------
    system : the config's ``system`` dict.
    state_point : ``{'gamma': ..., 'temperature': ...}``.
    settings : the config's ``preliminary`` dict.
    seed : int or numpy.random.SeedSequence (``vaepipe.seeds.derive_seed(seed, 'preliminary', state)``).
    state : state-point name, stored in the summary.
    progress : tqdm progress bar on stderr.
    """
    tune_sweeps = int(settings["tune_sweeps"])
    sweeps = int(settings["sweeps"])
    threshold = float(settings["decorrelation_threshold"])
    governing = list(settings["observables"])
    unknown = [o for o in governing if o not in OBSERVABLES]
    if unknown:
        raise ValueError(f"config key preliminary.observables: unknown {unknown}; expected some of "
                         f"{list(OBSERVABLES)}")

    sampler = make_sampler(system, state_point, seed, settings["initial_step_size"])
    with _progress_bar(tune_sweeps + sweeps, f"preliminary {state} sweeps", progress) as bar:
        sampler.tune_step_size(tune_sweeps, target_acceptance=float(settings["target_acceptance"]))
        bar.update(tune_sweeps)
        step_size = float(sampler.step_size)
        sampler.randomize()
        sampler.reset_acceptance()
        traces = _record_trace(sampler, sweeps, bar)
    acceptance = float(sampler.acceptance_rate)
    print(f"step size tuned to {step_size:.6g} sigma, acceptance {acceptance:.3f} in the trace; "
          f"{_energy_drift_note(sampler)}", file=sys.stderr)

    own_t0 = {}
    for name, x in traces.items():
        own_t0[name] = 0 if _is_constant(x) else int(decorrelation.detect_equilibration(x)[0])
    t0 = max(own_t0[name] for name in governing)
    if t0 > sweeps // 2:
        # Chodera's t0 that late usually means the run is still drifting: the statistics below rest on a short,
        # possibly unconverged tail.
        print(f"warning: equilibration detected only at sweep {t0} of {sweeps}; the trace may still be drifting. "
              f"Consider raising preliminary.sweeps (config key) and checking the trace figure.", file=sys.stderr)
    per_observable = {}
    for name, x in traces.items():
        stats = analyze_trace(x, t0, threshold)
        per_observable[name] = {"equilibration_sweeps": own_t0[name], "unit": OBSERVABLES[name], **stats}
    lag = max(per_observable[name]["decorrelation_sweeps"] for name in governing)
    if sweeps - t0 < MIN_DECORRELATIONS * lag:
        raise ValueError(
            f"config key preliminary.sweeps = {sweeps}: after the equilibration ({t0} sweeps) the trace spans "
            f"{(sweeps - t0) / lag:.1f} decorrelation times of {lag} sweeps; expected at least "
            f"{MIN_DECORRELATIONS}; fix: raise preliminary.sweeps to at least {t0 + MIN_DECORRELATIONS * lag}")

    max_lag = int(min((sweeps - t0) // 2, max(4 * lag, 50)))
    autocorrelations = {}
    for name, x in traces.items():
        tail = x[t0:]
        autocorrelations[name] = (np.ones(1) if _is_constant(tail)
                                  else decorrelation.autocorrelation(tail, max_lag=max_lag))

    summary = {
        "state": state,
        "gamma": float(state_point["gamma"]),
        "temperature": float(state_point["temperature"]),
        "step_size": step_size,
        "acceptance_rate": acceptance,
        "tune_sweeps": tune_sweeps,
        "trace_sweeps": sweeps,
        "equilibration_sweeps": int(t0),
        "decorrelation_sweeps": int(lag),
        "decorrelation_threshold": threshold,
        "governing_observables": governing,
        "tau_int": max(per_observable[name]["tau_int"] for name in governing),
        "statistical_inefficiency": max(per_observable[name]["statistical_inefficiency"] for name in governing),
        "n_eff": min(per_observable[name]["n_eff"] for name in governing),
        "energy_mean": per_observable["energy"]["mean"],
        "energy_sem": per_observable["energy"]["sem"],
        "observables": per_observable,
    }
    return PreliminaryResult(summary=summary, traces=traces, autocorrelations=autocorrelations)
