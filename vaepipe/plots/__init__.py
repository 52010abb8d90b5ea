"""Figures of every stage (matplotlib, Agg backend; no display needed).

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

__all__ = [
    "preliminary_figure",
    "density_figure",
    "loss_figure",
    "voxel_reconstruction_figure",
    "distance_reconstruction_figure",
    "coordinates_reconstruction_figure",
    "particles_reconstruction_figure",
    "configuration_figure",
    "rmsd_figure",
    "energy_mapping_figure",
    "energy_histogram_figure",
    "landscape_figure",
    "latent_figure",
    "roc_figure",
]

_LABELS = {"energy": r"$U/\epsilon$", "mean_height": r"mean height $\bar z/\sigma$"}


def _sample_label(labels, k: int) -> str:
    """The caller's name of example k, or "sample k"."""
    return labels[k] if labels is not None else f"sample {k}"


def preliminary_figure(result) -> Figure:
    """Trace and autocorrelation of every observable of a :class:`vaepipe.sampling.PreliminaryResult`.

    Left: the value after each sweep, with the detected equilibration point (the state point's, i.e. the
    largest over the governing observables) and the observable's own one. Right: the normalized
    autocorrelation after equilibration against the lag in sweeps, with the threshold and the decorrelation lag.
    """
    summary = result.summary
    names = list(result.traces)  # recorded in the order of vaepipe.sampling.OBSERVABLES
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


# --------------------------------------------------------------------------- VAE training


def loss_figure(history, title: str = "") -> Figure:
    """Loss curves of a VAE: the objective, the reconstruction term and the KL term (per sample, nats), for the
    training and validation splits, against the epoch; the KL weight of the warm-up on a twin axis.

    history : DataFrame with columns epoch, loss, reconstruction, kl and optionally val_* and kl_weight.
    """
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    epoch = history["epoch"].to_numpy()
    for ax, key, label in zip(axes, ("loss", "reconstruction", "kl"),
                              ("objective: reconstruction + beta x KL weight x KL", "reconstruction (nats)",
                               "KL(q(z|x) || N(0, I)) (nats)")):
        ax.plot(epoch, history[key], color="C0", label="train")
        if f"val_{key}" in history:
            ax.plot(epoch, history[f"val_{key}"], color="C1", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if key == "kl" and "kl_weight" in history:
            twin = ax.twinx()
            twin.plot(epoch, history["kl_weight"], color="0.5", ls=":", label="KL weight (warm-up)")
            twin.set_ylim(0, 1.05)
            twin.set_ylabel("KL weight")
            twin.legend(fontsize="small", loc="lower right")
        ax.legend(fontsize="small", loc="upper right")
    if title:
        fig.suptitle(title)
    return fig


def voxel_reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, box_length: float,
                                num_heights: int = 5, labels=None) -> Figure:
    """Horizontal slices (fixed height z) of voxel grids, original above reconstruction, as the DL-DFT paper shows.

    originals, reconstructions : (K, n, n, n) grids (z last) or (K, n, n) pixel grids (z last). One pair of
    rows per example; the columns are ``num_heights`` heights from the floor up (all rows for 2D grids).
    """
    originals = np.asarray(originals)
    reconstructions = np.asarray(reconstructions)
    num = originals.shape[0]
    if originals.ndim == 3:  # 2D pixel grids: the whole picture, x across, z up
        fig = Figure(figsize=(4.5, 2.2 * num), layout="constrained")
        axes = fig.subplots(num, 2, squeeze=False)
        for k in range(num):
            for col, (grid, what) in enumerate(((originals[k], "original"), (reconstructions[k], "reconstruction"))):
                axes[k, col].imshow(grid.T, origin="lower", extent=(0, box_length, 0, box_length), vmin=0, vmax=1,
                                    cmap="viridis")
                axes[k, col].set_title(f"{labels[k] if labels is not None else k}: {what}", fontsize="small")
        return fig
    n = originals.shape[-1]
    cells = np.unique(np.linspace(0, n - 1, num_heights).round().astype(int))
    h = box_length / n
    fig = Figure(figsize=(1.9 * len(cells) + 1, 3.6 * num), layout="constrained")
    axes = fig.subplots(2 * num, len(cells), squeeze=False)
    image = None
    for k in range(num):
        for col, cell in enumerate(cells):
            for row, (grid, what) in enumerate(((originals[k], "original"), (reconstructions[k], "VAE"))):
                ax = axes[2 * k + row, col]
                image = ax.imshow(grid[:, :, cell].T, origin="lower", extent=(0, box_length, 0, box_length),
                                  vmin=0, vmax=1, cmap="viridis")
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(f"z = {(cell + 0.5) * h:.2f} $\\sigma$", fontsize="small")
                if col == 0:
                    name = _sample_label(labels, k)
                    ax.set_ylabel(f"{name}\n{what}", fontsize="small")
    fig.colorbar(image, ax=axes, shrink=0.6, label="normalised density")
    return fig


def distance_reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, distance_scale: float,
                                   n_particles: int, labels=None) -> Figure:
    """Distance matrices side by side: original, reconstruction and |difference|, in sigma.

    originals, reconstructions : (K, M, M) normalised matrices (distances / box diagonal); rows beyond
    ``n_particles`` are anchors, marked by lines.
    """
    originals = np.asarray(originals) * distance_scale
    reconstructions = np.asarray(reconstructions) * distance_scale
    num, size = originals.shape[0], originals.shape[-1]
    fig = Figure(figsize=(11, 3.3 * num), layout="constrained")
    axes = fig.subplots(num, 3, squeeze=False)
    vmax = float(max(originals.max(), reconstructions.max()))
    for k in range(num):
        diff = np.abs(reconstructions[k] - originals[k])
        panels = ((originals[k], "original", vmax, "viridis"), (reconstructions[k], "VAE", vmax, "viridis"),
                  (diff, f"|difference|, particle MAE {diff[:n_particles, :n_particles].mean():.2f} $\\sigma$",
                   None, "magma"))
        for col, (matrix, what, top, cmap) in enumerate(panels):
            ax = axes[k, col]
            image = ax.imshow(matrix, vmin=0, vmax=top, cmap=cmap)
            if size > n_particles:
                for line in (ax.axhline, ax.axvline):
                    line(n_particles - 0.5, color="w", lw=0.6)
            name = _sample_label(labels, k)
            ax.set_title(f"{name}: {what}", fontsize="small")
            fig.colorbar(image, ax=ax, shrink=0.8, label="distance ($\\sigma$)")
    return fig


def coordinates_reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, box_length: float,
                                      dim: int, labels=None) -> Figure:
    """Particles of the dense baseline seen from the side (x, z): original and reconstructed, joined by lines.

    originals, reconstructions : (K, N * dim) coordinates / box_length, particle-major.
    """
    originals = np.asarray(originals).reshape(len(originals), -1, dim) * box_length
    reconstructions = np.asarray(reconstructions).reshape(len(reconstructions), -1, dim) * box_length
    num = originals.shape[0]
    fig = Figure(figsize=(3.4 * num, 3.6), layout="constrained")
    axes = fig.subplots(1, num, squeeze=False)[0]
    for k, ax in enumerate(axes):
        for a, b in zip(originals[k], reconstructions[k]):
            ax.plot([a[0], b[0]], [a[-1], b[-1]], color="0.7", lw=0.6)
        ax.scatter(originals[k, :, 0], originals[k, :, -1], s=18, color="C0", label="original")
        ax.scatter(reconstructions[k, :, 0], reconstructions[k, :, -1], s=18, color="C3", marker="x",
                   label="VAE")
        ax.set_xlim(0, box_length)
        ax.set_ylim(0, box_length)
        ax.set_aspect("equal")
        ax.set_xlabel(r"$x/\sigma$")
        ax.set_ylabel(r"$z/\sigma$")
        ax.set_title(_sample_label(labels, k), fontsize="small")
    axes[0].legend(fontsize="small", loc="upper right")
    return fig


def particles_reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, box_length: float,
                                    dim: int, labels=None) -> Figure:
    """Particles of the particle VAE seen from the side (x, z): original and reconstructed, each reconstructed
    particle joined to the original it is matched to (Hungarian assignment).

    originals, reconstructions : (K, N, dim) positions / box_length, in any particle order.
    """
    from scipy.optimize import linear_sum_assignment

    originals = np.asarray(originals, dtype=np.float64).reshape(len(originals), -1, dim)
    reconstructions = np.asarray(reconstructions, dtype=np.float64).reshape(len(reconstructions), -1, dim)
    matched = np.empty_like(reconstructions)
    for k in range(len(originals)):
        cost = np.sum((originals[k][:, None] - reconstructions[k][None]) ** 2, axis=-1)
        _, cols = linear_sum_assignment(cost)
        matched[k] = reconstructions[k][cols]
    return coordinates_reconstruction_figure(originals, matched, box_length, dim, labels)


def _gamma_colours(gamma: np.ndarray):
    """A discrete colour per gamma value: (values, colour of each sample, colour of each value)."""
    from matplotlib import colormaps

    values = np.unique(gamma)
    cmap = colormaps["viridis"].resampled(max(len(values), 2))
    lookup = {v: cmap(i) for i, v in enumerate(values)}
    return values, [lookup[g] for g in gamma], lookup


def _gamma_legend_entries(ax, values, lookup) -> None:
    """One legend entry per gamma value, in its colour (empty scatters: the data are drawn already)."""
    for value in values:
        ax.scatter([], [], color=lookup[value], label=f"$\\gamma$ = {value:g}")


def configuration_figure(originals: np.ndarray, reconstructions: Mapping[str, np.ndarray], box_length: float,
                         labels=None) -> Figure:
    """Original configurations next to their reconstructions, seen from the side (x, z) and from above (x, y).

    originals : (K, N, dim) sigma. reconstructions : {method: (K, N, dim)} in the originals' frame and order;
    each reconstructed particle is joined to its original by a grey line.
    """
    originals = np.asarray(originals)
    num, dim = originals.shape[0], originals.shape[-1]
    views = [(0, dim - 1, "z")] + ([(0, 1, "y")] if dim == 3 else [])
    fig = Figure(figsize=(3.3 * num * len(views), 3.6 * len(reconstructions)), layout="constrained")
    axes = fig.subplots(len(reconstructions), num * len(views), squeeze=False)
    for row, (method, recon) in enumerate(reconstructions.items()):
        recon = np.asarray(recon)
        for k in range(num):
            rmsd = float(np.sqrt(np.mean(np.sum((recon[k] - originals[k]) ** 2, axis=-1))))
            for v, (a, b, name) in enumerate(views):
                ax = axes[row, k * len(views) + v]
                for p, q in zip(originals[k], recon[k]):
                    ax.plot([p[a], q[a]], [p[b], q[b]], color="0.7", lw=0.6)
                ax.scatter(originals[k, :, a], originals[k, :, b], s=16, color="C0", label="Monte Carlo")
                ax.scatter(recon[k, :, a], recon[k, :, b], s=16, color="C3", marker="x", label=method)
                ax.set_xlim(-0.5, box_length + 0.5)
                ax.set_ylim(-0.5, box_length + 0.5)
                ax.add_patch(matplotlib.patches.Rectangle((0, 0), box_length, box_length, fill=False, lw=0.8))
                ax.set_aspect("equal")
                ax.set_xlabel(r"$x/\sigma$")
                ax.set_ylabel(f"${name}/\\sigma$")
                title = _sample_label(labels, k)
                ax.set_title(f"{title}: {method}, RMSD {rmsd:.2f} $\\sigma$", fontsize="x-small")
        axes[row, 0].legend(fontsize="x-small", loc="upper right")
    return fig


def rmsd_figure(rmsd: Mapping[str, np.ndarray]) -> Figure:
    """Distributions of the reconstruction RMSD (sigma) of each method, with their medians."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    finite = [np.asarray(v)[np.isfinite(v)] for v in rmsd.values()]
    top = max((float(np.quantile(v, 0.99)) for v in finite if v.size), default=1.0)
    bins = np.linspace(0, top, 40)
    for (method, values), data in zip(rmsd.items(), finite):
        if data.size:
            ax.hist(np.clip(data, 0, top), bins=bins, histtype="step", lw=1.4,
                    label=f"{method}: median {np.median(data):.3f} $\\sigma$")
    ax.set_xlabel(r"RMSD to the Monte Carlo configuration ($\sigma$)")
    ax.set_ylabel("test configurations")
    ax.legend(fontsize="small")
    return fig


def energy_mapping_figure(original: np.ndarray, reconstructed: np.ndarray, repaired: np.ndarray | None,
                          gamma: np.ndarray) -> Figure:
    """Energy per particle (epsilon, gravity included) of reconstructions against their originals (left; symlog
    axis, since one overlap puts a configuration orders of magnitude up) and the distribution of log10 |error|
    (right). ``repaired``: optional second set (e.g. after a repair), or None. Infinite energies are drawn at
    the largest finite value."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2)
    values, colours, lookup = _gamma_colours(np.asarray(gamma))
    sets = {"as decoded": np.asarray(reconstructed, dtype=np.float64)}
    if repaired is not None:
        sets["overlaps repaired"] = np.asarray(repaired, dtype=np.float64)
    finite_max = max((float(np.max(v[np.isfinite(v)])) for v in sets.values() if np.isfinite(v).any()), default=1.0)
    sets = {k: np.where(np.isfinite(v), v, finite_max) for k, v in sets.items()}
    for (name, data), marker in zip(sets.items(), ("o", "x")):
        left.scatter(original, data, s=8, c=colours, marker=marker)
        left.scatter([], [], color="0.4", marker=marker, label=name)
    lo, hi = float(np.min(original)), float(np.max(original))
    left.plot([lo, hi], [lo, hi], color="k", lw=0.8, label="reconstruction = original")
    left.set_yscale("symlog", linthresh=1.0)
    left.set_xlabel(r"Monte Carlo $U/(N\epsilon)$")
    left.set_ylabel(r"reconstruction $U/(N\epsilon)$")
    _gamma_legend_entries(left, values, lookup)
    left.legend(fontsize="x-small", ncol=2)
    logs = [np.log10(np.maximum(np.abs(d - np.asarray(original)), 1e-6)) for d in sets.values()]
    bins = np.linspace(min(-2.0, min(x.min() for x in logs)), max(x.max() for x in logs) + 0.1, 50)
    for data, name in zip(logs, sets):
        right.hist(data, bins=bins, histtype="step", lw=1.4,
                   label=f"{name}: median {np.median(10 ** data):.3g} $\\epsilon$")
    right.set_xlabel(r"$\log_{10} |U_{rec} - U_{MC}|/(N\epsilon)$")
    right.set_ylabel("test configurations")
    right.legend(fontsize="small")
    return fig


def energy_histogram_figure(energies: Mapping[str, np.ndarray], distances: Mapping[str, float]) -> Figure:
    """Histograms of the pair energy per particle U_LJ/(N eps) of several sets of configurations, on a
    symmetric-log axis (one overlap puts a configuration orders of magnitude up); the legend gives each set's
    Wasserstein distance to the first (Monte Carlo) in its standard deviations."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    data = {name: np.asarray(v, dtype=np.float64)[np.isfinite(v)] for name, v in energies.items()}
    values = np.concatenate([v for v in data.values() if v.size])

    def squash(x):
        return np.sign(x) * np.log10(1.0 + np.abs(x))

    def unsquash(y):
        return np.sign(y) * (10.0 ** np.abs(y) - 1.0)

    bins = unsquash(np.linspace(squash(values.min()), squash(values.max()) + 1e-9, 80))
    for name, v in data.items():
        label = name + (f": W1/std {distances[name]:.3g}" if name in distances else "")
        ax.hist(v, bins=bins, weights=np.full(v.size, 1.0 / max(v.size, 1)), histtype="step", lw=1.4, label=label)
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel(r"pair energy per particle $U_{LJ}/(N\epsilon)$ (symmetric log scale)")
    ax.set_ylabel("fraction of configurations")
    ax.legend(fontsize="small")
    return fig


def landscape_figure(u: np.ndarray, v: np.ndarray, energy: np.ndarray, points: np.ndarray, gamma: np.ndarray,
                     explained: np.ndarray) -> Figure:
    """Heatmap of the pair energy per particle of configurations decoded on a grid of the latent plane (PC1, PC2
    in units of the data's standard deviation along each), with encoded test samples coloured by gamma. The
    colour scale is symmetric-logarithmic: one overlap puts a configuration orders of magnitude up."""
    from matplotlib.colors import SymLogNorm

    fig = Figure(figsize=(7.5, 6), layout="constrained")
    ax = fig.subplots()
    finite = np.where(np.isfinite(energy), energy, np.nanmax(energy[np.isfinite(energy)]))
    image = ax.pcolormesh(u, v, finite, shading="nearest", cmap="magma_r",
                          norm=SymLogNorm(linthresh=1.0, vmin=min(float(finite.min()), -1.0),
                                          vmax=max(float(finite.max()), 1.0)))
    fig.colorbar(image, ax=ax, label=r"decoded $U_{LJ}/(N\epsilon)$ (symmetric log scale)")
    values, colours, lookup = _gamma_colours(np.asarray(gamma))
    ax.scatter(points[:, 0], points[:, 1], s=7, c=colours, edgecolors="w", linewidths=0.2)
    _gamma_legend_entries(ax, values, lookup)
    ax.legend(fontsize="small", title="encoded test samples")
    ax.set_xlabel(f"PC1 / std ({100 * explained[0]:.0f}% of the variance)")
    ax.set_ylabel(f"PC2 / std ({100 * explained[1]:.0f}%)")
    return fig


def latent_figure(points: np.ndarray, gamma: np.ndarray, explained: np.ndarray, stats: Mapping,
                  representation: str) -> Figure:
    """Latent means on their two leading principal components, coloured by gamma (the seed's "lambda
    clustering"), with the silhouette score and the k-NN accuracy against chance in the title."""
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    values, colours, lookup = _gamma_colours(np.asarray(gamma))
    ax.scatter(points[:, 0], points[:, 1], s=5, c=colours, alpha=0.7)
    _gamma_legend_entries(ax, values, lookup)
    ax.legend(fontsize="small")
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of the variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f}%)")
    title = (f"{representation}: silhouette {stats['silhouette']:.2f}, gamma k-NN accuracy "
             f"{stats['knn_accuracy']:.2f} (chance {stats['chance']:.2f}")
    if "knn_accuracy_ceiling" in stats:
        title += f", sum(z) alone {stats['knn_accuracy_ceiling']:.2f}"
    ax.set_title(title + ")", fontsize="small")
    return fig


def roc_figure(curves: Mapping[str, Mapping], representation: str) -> Figure:
    """ROC curves of the model's anomaly score against each kind of anomaly (solid), beside the physics
    reference for that kind (dashed: the ceiling -sum(z) for the held-out gamma, the trivial detectors energy
    and closest pair for overlaps and random configurations, the energy for tilted layers), with their areas.

    curves : {kind: {"model": roc dict, "score": name, "reference": roc dict or None, "reference_name": name}}.
    """
    fig = Figure(figsize=(6.2, 5.4), layout="constrained")
    ax = fig.subplots()
    names = {"overlap": "one overlapping pair", "uniform": "uniformly random", "heldout_gamma": "held-out gamma",
             "tilted": "tilted layers"}
    for i, (kind, entry) in enumerate(curves.items()):
        model = entry["model"]
        ax.plot(model["fpr"], model["tpr"], lw=1.5, color=f"C{i}",
                label=f"{names.get(kind, kind)}, {entry['score']}: AUC {model['auc']:.3f}")
        reference = entry.get("reference")
        if reference is not None:
            ax.plot(reference["fpr"], reference["tpr"], lw=1.0, ls="--", color=f"C{i}",
                    label=f"  {entry['reference_name']}: AUC {reference['auc']:.3f}")
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=0.8, label="chance")
    ax.set_xlabel("false positive rate (normal test samples flagged)")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"{representation} VAE (solid) against physics (dashed)", fontsize="small")
    ax.legend(fontsize="x-small", loc="lower right")
    return fig
