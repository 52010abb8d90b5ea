"""Figures of the minimization stages: the learned functional's parity plot, the descent curves with the best
configurations seen from the side, and the sample-efficiency curve of the transfer. Matplotlib only (Agg); the
numbers come from vaepipe.stages.minimize."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["parity_figure", "minimization_figure", "transfer_figure"]

_LABELS = {"latent_exact": "A: latent, exact energy (particle VAE)",
           "latent_functional": "B: latent, learned functional (voxel VAE)",
           "grid_descent": "direct descent on the density", "quench_only": "quench-only (MC starts)",
           "reference": "reference minimum"}
_COLORS = {"latent_exact": "C0", "latent_functional": "C2", "grid_descent": "C3", "quench_only": "C1",
           "reference": "k"}


def parity_figure(exact: np.ndarray, predicted: np.ndarray, kind: np.ndarray) -> Figure:
    """Predicted against exact U_LJ / N (eps) of the functional's test densities, MC and quenched apart."""
    fig = Figure(figsize=(4.6, 4.2), layout="constrained")
    ax = fig.subplots()
    for label, color in (("mc", "C0"), ("quenched", "C3")):
        rows = np.asarray(kind) == label
        if rows.any():
            mae = float(np.mean(np.abs(predicted[rows] - exact[rows])))
            ax.scatter(exact[rows], predicted[rows], s=6, alpha=0.6, color=color,
                       label=f"{'MC samples' if label == 'mc' else 'quenched'}: MAE {mae:.3f} eps/particle")
    low, high = float(np.min([exact.min(), predicted.min()])), float(np.max([exact.max(), predicted.max()]))
    ax.plot([low, high], [low, high], color="k", lw=0.8)
    ax.set_xlabel(r"exact $U_{LJ}/(N\epsilon)$")
    ax.set_ylabel(r"$F_\theta(n)/(N\epsilon)$")
    ax.set_title("learned energy functional, test densities", fontsize="small")
    ax.legend(fontsize="x-small")
    return fig


def minimization_figure(state: str, steps: np.ndarray, exact: Mapping[str, np.ndarray],
                        predicted: Mapping[str, np.ndarray], best: Mapping[str, np.ndarray],
                        energies: Mapping[str, float], reference: float, box_length: float) -> Figure:
    """Left: the median over starts of the exact (solid) and predicted (dashed) energy along each descent
    (eps), the reference as a line. Right: the best configuration of each method seen from the side (x, z)."""
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    grid = fig.add_gridspec(1, 2 + len(best), width_ratios=[3.0, 0.2] + [1.0] * len(best))
    ax = fig.add_subplot(grid[0, 0])
    for method, values in exact.items():
        values = np.asarray(values, dtype=np.float64)
        finite = np.where(np.isfinite(values), values, np.nan)
        ax.plot(steps, np.nanmedian(finite, axis=1), color=_COLORS[method], label=f"{_LABELS[method]}: exact")
        ax.plot(steps, np.median(np.asarray(predicted[method], dtype=np.float64), axis=1), color=_COLORS[method],
                ls="--", label="predicted" if method != "latent_exact" else None)
    ax.axhline(reference, color="k", lw=0.8, label=f"reference {reference:.3f}")
    spread = max(abs(reference) * 0.6, 1.0)
    ax.set_ylim(reference - 0.3 * spread, reference + spread)
    ax.set_xlabel("descent step")
    ax.set_ylabel(r"$U/\epsilon$ (median over starts; gravity included)")
    ax.set_title(f"{state}: descent paths (the exact energy of fitted or decoded particles)", fontsize="small")
    ax.legend(fontsize="x-small", loc="upper right")
    for i, (method, x) in enumerate(best.items()):
        side = fig.add_subplot(grid[0, 2 + i])
        x = np.asarray(x)
        side.scatter(x[:, 0], x[:, -1], s=60, color=_COLORS.get(method, "C7"), alpha=0.7, edgecolors="k", lw=0.3)
        side.set_xlim(0, box_length)
        side.set_ylim(0, box_length)
        side.set_aspect("equal")
        side.set_xticks([])
        side.set_yticks([])
        value = energies.get(method, reference if method == "reference" else np.nan)
        side.set_title(f"{method.replace('_', ' ')}\n{value:.3f}", fontsize="x-small")
    return fig


def transfer_figure(as_trained: Mapping[str, float], curve: Sequence[Mapping[str, float]]) -> Figure:
    """Test error per particle at a new state point against the number of its training samples used:
    fine-tuned from the trained functional and trained from scratch; the functional as trained as a line."""
    fig = Figure(figsize=(5.0, 3.8), layout="constrained")
    ax = fig.subplots()
    for mode, color, label in (("fine_tune", "C0", "fine-tuned"), ("scratch", "C3", "from scratch")):
        rows = [r for r in curve if r["mode"] == mode]
        ax.plot([r["num_samples"] for r in rows], [r["mae_per_particle"] for r in rows], "o-", color=color,
                label=label)
    ax.axhline(as_trained["mae_per_particle"], color="k", lw=0.8, ls="--", label="as trained (no new samples)")
    ax.set_xscale("log")
    ax.set_xlabel("training samples of the new state point")
    ax.set_ylabel(r"test error $|F_\theta - U_{LJ}|/N$ ($\epsilon$)")
    ax.set_title("transfer of the energy functional", fontsize="small")
    ax.legend(fontsize="x-small")
    return fig
