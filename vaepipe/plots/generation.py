"""Figures of what the VAEs decode and generate, judged as physics: energy histograms per state point, the
structure (g(r) and rho(z)) of generated against Monte Carlo configurations, and the reconstruction quality
against the latent size. Matplotlib only (Agg); the numbers come from the stages."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

__all__ = ["state_energy_figure", "structure_figure", "latent_size_figure"]

_STYLE = {"Monte Carlo (test)": dict(color="k", lw=1.8), "MC (test)": dict(color="k", lw=1.8),
          "reconstructed": dict(color="C0"), "generated (as decoded)": dict(color="C3"),
          "generated,": dict(color="C1", ls="--")}


def _style(label: str, index: int) -> dict:
    for key, style in _STYLE.items():
        if label.startswith(key):
            return dict(style)
    return {"color": f"C{index + 1}"}


def state_energy_figure(energies: Mapping[str, Mapping[str, np.ndarray]], w1: Mapping[str, Mapping[str, float]],
                        representation: str, n_particles: int) -> Figure:
    """Histograms of the total energy per particle U/N (gravity included, epsilon) per state point: Monte Carlo
    test configurations, reconstructions, and generated configurations as decoded and after k relaxation sweeps.

    energies : {state: {label: (S,) U/N}}. w1 : {state: {label: W1 / MC std}} shown in the legend. The axis spans
    the Monte Carlo range widened by its spread; values beyond it are counted at its right edge.
    """
    states = list(energies)
    cols = min(len(states), 3)
    rows = -(-len(states) // cols)
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, state in zip(axes, states):
        curves = energies[state]
        reference = np.asarray(next(iter(curves.values())), dtype=np.float64)
        spread = max(float(np.std(reference)), 1e-3)
        low, high = float(np.min(reference)) - 4 * spread, float(np.max(reference)) + 8 * spread
        bins = np.linspace(low, high, 50)
        for i, (label, values) in enumerate(curves.items()):
            values = np.asarray(values, dtype=np.float64)
            finite = values[np.isfinite(values)]
            beyond = int(np.sum(finite > high)) + int(values.size - finite.size)
            shown = np.clip(finite, low, high)
            text = label
            if label in w1.get(state, {}):
                text += f": W1/std {w1[state][label]:.2g}"
            if beyond:
                text += f" ({beyond} beyond)"
            ax.hist(shown, bins=bins, density=True, histtype="step", label=text, **_style(label, i))
        ax.set_title(f"{state} ({representation}, N = {n_particles})", fontsize="small")
        ax.set_xlabel(r"$U/(N\epsilon)$, gravity included")
        ax.set_ylabel("density")
        ax.legend(fontsize="x-small")
    for ax in axes[len(states):]:
        ax.set_visible(False)
    return fig


def structure_figure(curves: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], representation: str) -> Figure:
    """g(r) (top row) and the density profile rho(z) (bottom row) per state point, Monte Carlo against generated.

    curves : {state: {"g": {label: (r, g)}, "rho": {label: (z, rho)}}}, r and z in sigma, rho in particles per
    sigma of height (summed over the floor).
    """
    states = list(curves)
    fig = Figure(figsize=(3.8 * len(states), 6.4), layout="constrained")
    axes = fig.subplots(2, len(states), squeeze=False)
    for col, state in enumerate(states):
        for row, (key, xlabel, ylabel) in enumerate((("g", r"$r/\sigma$", r"$g(r)$"),
                                                     ("rho", r"$z/\sigma$", r"$\rho(z)\ \sigma$"))):
            ax = axes[row, col]
            for i, (label, (x, y)) in enumerate(curves[state][key].items()):
                ax.plot(x, y, label=label, **_style(label, i))
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if row == 0:
                ax.axhline(1.0, color="0.8", lw=0.8)
                ax.set_title(f"{state} ({representation})", fontsize="small")
        axes[0, col].legend(fontsize="x-small")
    return fig


#: Lowest RMSD shown by the latent-size figure, sigma (a thousandth of a particle diameter).
_RMSD_AXIS_FLOOR = 1e-3


def latent_size_figure(linear: Mapping[int, float], trained: Mapping[int, float], chosen: int,
                       degrees_of_freedom: int, representation: str, ceiling: float | None = None) -> Figure:
    """Median reconstruction RMSD (permutation-aware, sigma) against the latent dimension: the linear code (the
    principal components of the training configurations) at every size, and the trained VAE at the sizes it
    was trained at; the configured size and the number of degrees of freedom marked."""
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.subplots()
    sizes = sorted(linear)
    ax.plot(sizes, [linear[k] for k in sizes], color="0.4", label="linear code (principal components)")
    if trained:
        keys = sorted(trained)
        ax.plot(keys, [trained[k] for k in keys], "o-", color="C3", label=f"{representation} VAE (trained)")
    if ceiling is not None and np.isfinite(ceiling):
        ax.axhline(ceiling, color="C2", ls=":", label=f"target {ceiling:g} $\\sigma$")
    ax.axvline(chosen, color="C3", ls="--", lw=0.8, label=f"configured latent_dim {chosen}")
    ax.axvline(degrees_of_freedom, color="0.6", ls="--", lw=0.8, label=f"N dim = {degrees_of_freedom}")
    ax.set_yscale("log")
    # The linear code is exact (rounding, ~1e-15) at the full dimension: keep the axis on what matters.
    ax.set_ylim(bottom=_RMSD_AXIS_FLOOR)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel(r"median RMSD of test reconstructions ($\sigma$)")
    ax.legend(fontsize="small")
    return fig
