"""Figures of the sampling stages (matplotlib, Agg backend; no display needed).

Functions return a :class:`matplotlib.figure.Figure`; write it with :func:`vaepipe.io.save_figure`, which makes
the file atomically and without dates, so the same data give the same bytes.
"""

from __future__ import annotations

from typing import Mapping

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vaepipe.profiles import barometric_density, density_profile, ideal_gas_mean_height  # noqa: E402
from vaepipe.sampling import OBSERVABLES  # noqa: E402

__all__ = ["preliminary_figure", "density_figure"]

_LABELS = {"energy": r"$U/\epsilon$", "mean_height": r"mean height $\bar z/\sigma$"}


def preliminary_figure(result) -> Figure:
    """Trace and autocorrelation of every observable of a :class:`vaepipe.sampling.PreliminaryResult`.

    Left: the value after each sweep, with the detected equilibration point (the state point's, i.e. the
    largest over the governing observables) and the observable's own one. Right: the normalized
    autocorrelation after equilibration against the lag in sweeps, with the threshold and the decorrelation lag.
    """
    summary = result.summary
    names = [n for n in OBSERVABLES if n in result.traces]
    t0 = summary["equilibration_sweeps"]
    lag = summary["decorrelation_sweeps"]
    threshold = summary["decorrelation_threshold"]
    fig = Figure(figsize=(10, 3.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, name in enumerate(names):
        stats = summary["observables"][name]
        trace = result.traces[name]
        ax = axes[row, 0]
        ax.plot(np.arange(1, trace.size + 1), trace, lw=0.5, color="C0")
        ax.axvline(t0, color="C3", ls="--", label=f"equilibrated from sweep {t0}")
        if stats["equilibration_sweeps"] != t0:
            ax.axvline(stats["equilibration_sweeps"], color="C1", ls=":",
                       label=f"this observable alone: {stats['equilibration_sweeps']}")
        ax.axhline(stats["mean"], color="k", lw=0.8,
                   label=f"mean after equilibration {stats['mean']:.4g} $\\pm$ {stats['sem']:.2g}")
        ax.set_xlabel("sweeps after step-size tuning")
        ax.set_ylabel(_LABELS[name])
        ax.legend(fontsize="small", loc="best")

        ax = axes[row, 1]
        acf = result.autocorrelations[name]
        ax.plot(np.arange(acf.size), acf, color="C0", label="autocorrelation")
        ax.axhline(threshold, color="C2", ls="--", label=f"threshold {threshold:g}")
        ax.axhline(0.0, color="k", lw=0.5)
        own = stats["decorrelation_sweeps"]
        ax.axvline(own, color="C1", ls=":", label=f"decorrelation of this observable: {own} sweeps")
        if own != lag:
            ax.axvline(lag, color="C3", ls="--", label=f"decorrelation used: {lag} sweeps")
        ax.set_xlabel("lag (sweeps)")
        ax.set_ylabel(f"normalized autocorrelation of {_LABELS[name]}")
        ax.set_xlim(0, max(acf.size - 1, 1))
        ax.legend(fontsize="small", loc="upper right")
    fig.suptitle(f"preliminary run {summary['state']}: $\\gamma$ = {summary['gamma']:g}, "
                 f"$T^*$ = {summary['temperature']:g}, step {summary['step_size']:.3g} $\\sigma$, "
                 f"acceptance {summary['acceptance_rate']:.2f}, tau_int {summary['tau_int']:.3g} sweeps")
    return fig


def density_figure(positions: np.ndarray, attrs: Mapping, bins: int = 50) -> Figure:
    """Density profile rho(z) of the samples with the ideal-gas barometric curve for comparison.

    positions : (S, N, dim), sigma.  attrs : gamma, temperature, box_length, n_particles, dim (as in the samples
    file), optionally state.
    """
    gamma, temperature = float(attrs["gamma"]), float(attrs["temperature"])
    box_length, n, dim = float(attrs["box_length"]), int(attrs["n_particles"]), int(attrs["dim"])
    edges, rho = density_profile(positions, box_length, bins)
    z = np.linspace(0.0, box_length, 400)
    mean_z = float(np.asarray(positions)[..., -1].mean())
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    num = np.asarray(positions).shape[0]
    ax.stairs(rho, edges, color="C0", lw=1.5,
              label=f"Monte Carlo, {num} samples, $\\langle z\\rangle$ = {mean_z:.3g} $\\sigma$")
    ax.plot(z, barometric_density(z, gamma, temperature, box_length, n, dim), color="C3", ls="--",
            label=("ideal gas $\\propto \\exp(-4\\gamma z/T^*)$, "
                   f"$\\langle z\\rangle$ = {ideal_gas_mean_height(gamma, temperature, box_length):.3g} $\\sigma$\n"
                   "(reference only: LJ attraction and packing make the fluid deviate)"))
    ax.set_xlabel(r"height $z/\sigma$")
    ax.set_ylabel(rf"number density $\rho(z)\,\sigma^{dim}$")
    ax.set_xlim(0.0, box_length)
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize="small", loc="upper right")
    state = attrs.get("state", "")
    ax.set_title(f"{state}  $\\gamma$ = {gamma:g}, $T^*$ = {temperature:g}, N = {n}, L = {box_length:g} $\\sigma$")
    return fig
