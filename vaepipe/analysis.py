"""Latent-space analysis and anomaly detection: statistics on arrays, no TensorFlow.

- :func:`gamma_clustering`: the seed's "lambda clustering". How well the posterior means separate the gravity
  strengths: the silhouette score with gamma as the cluster label, and the cross-validated k-nearest-neighbour
  accuracy of predicting gamma, next to the chance level (the share of the most common gamma).
- :func:`latent_pca`: the plane of the two leading principal components of the latent means, for plots and for
  the latent energy map.
- :func:`roc`: the ROC curve and its area for an anomaly score (higher = more anomalous).
- :func:`inject_overlap` and :func:`uniform_configurations`: the anomalies the detector is tested on.
- :func:`wasserstein_over_std`: the 1-Wasserstein distance between two energy distributions in units of the
  reference's standard deviation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vaepipe._validate import error, positive_int

__all__ = [
    "PCAPlane",
    "latent_pca",
    "gamma_clustering",
    "knn_accuracy",
    "linear_probe_accuracy",
    "roc",
    "inject_overlap",
    "uniform_configurations",
    "wasserstein_over_std",
]




@dataclass(frozen=True)
class PCAPlane:
    """The plane of the two leading principal components of a point cloud.

    mean : (D,) centre. components : (2, D) orthonormal directions. scale : (2,) standard deviations of the
    data along them. explained : (2,) shares of the total variance.
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    explained: np.ndarray

    def project(self, z: np.ndarray) -> np.ndarray:
        """(S, D) -> (S, 2) coordinates in the plane."""
        return (np.asarray(z, dtype=np.float64) - self.mean) @ self.components.T

    def lift(self, coords: np.ndarray) -> np.ndarray:
        """(S, 2) plane coordinates -> (S, D) points (the other components at the mean)."""
        return self.mean + np.asarray(coords, dtype=np.float64) @ self.components


def latent_pca(z) -> PCAPlane:
    """PCA of latent means z (S, D), D >= 1; with D = 1 the second direction is zero."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 3:
        raise error("z", f"<array of shape {z.shape}>", "shape (S, D) with S >= 3 samples")
    mean = z.mean(axis=0)
    _, singular, vt = np.linalg.svd(z - mean, full_matrices=False)
    variance = singular ** 2 / (z.shape[0] - 1)
    total = variance.sum() if variance.sum() > 0 else 1.0
    components = np.zeros((2, z.shape[1]))
    scale = np.zeros(2)
    explained = np.zeros(2)
    k = min(2, vt.shape[0])
    # Sign convention: the largest loading of each component is positive (SVD signs are arbitrary).
    signs = np.sign(vt[np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])
    components[:k] = vt[:k] * signs[:, None]
    scale[:k] = np.sqrt(variance[:k])
    explained[:k] = variance[:k] / total
    return PCAPlane(mean=mean, components=components, scale=scale, explained=explained)


def _folds(labels: np.ndarray, folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    counts = np.unique(labels, return_counts=True)[1]
    folds = int(min(folds, counts.min()))
    if folds < 2:
        raise error("samples per gamma", int(counts.min()), "at least 2 for cross-validation", "sample more")
    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed)), folds


def _check_neighbors(neighbors, labels: np.ndarray, splitter, folds: int) -> int:
    """k itself, or the ValueError of a k that the smallest training fold cannot serve: each fold's classifier
    sees only its training samples, and k-NN with more neighbours than those scores NaN."""
    neighbors = positive_int("neighbors", neighbors)
    train = min(len(rows) for rows, _ in splitter.split(np.zeros((labels.size, 1)), labels))
    if neighbors > train:
        raise error("neighbors", neighbors, f"at most {train}, the samples of the smallest training fold of "
                    f"{folds}-fold cross-validation on {labels.size} samples (k-NN needs k <= its training samples)",
                    f"pass neighbors <= {train} (config analysis.knn_neighbors), or sample more")
    return neighbors


def knn_accuracy(features, gamma, neighbors: int = 5, folds: int = 5, seed: int = 0) -> tuple[float, float]:
    """Cross-validated accuracy (mean, std over folds) of a k-nearest-neighbour classifier of gamma (Euclidean
    distance; stratified folds shuffled with ``seed``). features : (S, D), or (S,) for one statistic.
    ValueError when ``neighbors`` exceeds the samples of a training fold."""
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    labels = np.unique(np.asarray(gamma, dtype=np.float64), return_inverse=True)[1]
    splitter, used_folds = _folds(labels, folds, seed)
    neighbors = _check_neighbors(neighbors, labels, splitter, used_folds)
    scores = cross_val_score(KNeighborsClassifier(n_neighbors=neighbors), x, labels, cv=splitter)
    return float(scores.mean()), float(scores.std())


def linear_probe_accuracy(features, gamma, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a multinomial logistic regression of gamma on standardised features (S, D):
    whether the information is in the features at all, whatever their geometry."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(features, dtype=np.float64)
    labels = np.unique(np.asarray(gamma, dtype=np.float64), return_inverse=True)[1]
    splitter, _ = _folds(labels, folds, seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(model, x, labels, cv=splitter).mean())


def informative_dimensions(z_mean, z_log_var, fraction: float = 0.5) -> np.ndarray:
    """The latent dimensions that carry the most information about the samples, found without any label: those
    whose signal-to-noise ratio (the spread of the posterior means over the samples / the mean posterior standard
    deviation) is at least ``fraction`` of the largest one. z_mean, z_log_var : (S, D). Returns sorted indices."""
    z_mean = np.asarray(z_mean, dtype=np.float64)
    z_log_var = np.asarray(z_log_var, dtype=np.float64)
    if z_mean.ndim != 2 or z_log_var.shape != z_mean.shape:
        raise error("z_mean, z_log_var", f"<shapes {z_mean.shape}, {z_log_var.shape}>", "two (S, D) arrays")
    snr = z_mean.std(axis=0) / np.exp(0.5 * z_log_var).mean(axis=0)
    return np.flatnonzero(snr >= fraction * snr.max())


def gamma_clustering(z, gamma, neighbors: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """How well latent means separate the state points' gravity strengths.

    z : (S, D) latent means. gamma : (S,) the gamma of each sample's state point.
    Returns ``silhouette`` (in [-1, 1], Euclidean, gamma as the cluster label; NaN with one gamma),
    ``knn_accuracy`` and ``knn_accuracy_std`` (k-nearest neighbours, stratified ``folds``-fold cross-validation,
    shuffled with ``seed``), ``chance`` (share of the most common gamma: what always guessing it scores),
    ``num_gammas`` and ``num_samples``. ValueError when ``neighbors`` exceeds the samples of a training fold.
    """
    from sklearn.metrics import silhouette_score

    z = np.asarray(z, dtype=np.float64)
    gamma = np.asarray(gamma, dtype=np.float64)
    if z.ndim != 2 or gamma.shape != (z.shape[0],):
        raise error("z, gamma", f"<shapes {z.shape}, {gamma.shape}>", "(S, D) latent means and (S,) gammas")
    values, labels, counts = np.unique(gamma, return_inverse=True, return_counts=True)
    out = {"num_gammas": int(values.size), "num_samples": int(z.shape[0]),
           "chance": float(counts.max() / counts.sum())}
    if values.size < 2:
        out.update(silhouette=math.nan, knn_accuracy=math.nan, knn_accuracy_std=math.nan)
        return out
    _check_neighbors(neighbors, labels, *_folds(labels, folds, seed))  # before the silhouette's O(S^2)
    out["silhouette"] = float(silhouette_score(z, labels))
    mean, std = knn_accuracy(z, gamma, neighbors, folds, seed)
    out.update(knn_accuracy=mean, knn_accuracy_std=std, folds=_folds(labels, folds, seed)[1],
               neighbors=int(neighbors))
    return out


def roc(normal_scores, anomaly_scores) -> dict:
    """ROC of a score that should be higher for anomalies: ``auc`` and the curve ``fpr``, ``tpr`` (lists)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    normal = np.asarray(normal_scores, dtype=np.float64).ravel()
    anomalous = np.asarray(anomaly_scores, dtype=np.float64).ravel()
    if normal.size == 0 or anomalous.size == 0:
        raise error("scores", f"<{normal.size} normal, {anomalous.size} anomalous>", "both non-empty")
    # A non-finite score (a decoder overflow) is the most anomalous possible, not an error.
    scores = np.nan_to_num(np.concatenate([normal, anomalous]), nan=np.inf)
    scores = np.where(np.isinf(scores), np.finfo(np.float64).max * np.sign(scores), scores)
    truth = np.concatenate([np.zeros(normal.size), np.ones(anomalous.size)])
    fpr, tpr, _ = roc_curve(truth, scores)
    return {"auc": float(roc_auc_score(truth, scores)), "fpr": fpr.tolist(), "tpr": tpr.tolist(),
            "num_normal": int(normal.size), "num_anomalous": int(anomalous.size)}


def inject_overlap(positions, box_length: float, rng: np.random.Generator, distance=(0.5, 0.7),
                   clearance: float = 0.8, max_tries: int = 200) -> np.ndarray:
    """Copies of configurations with one particle moved into an overlap with another.

    For each configuration a random particle i is placed at a distance r ~ U(distance) from another random
    particle j, in a random direction, inside the box, and (where possible within ``max_tries`` directions) at
    least ``clearance`` from every other particle, so that exactly one pair overlaps.

    positions : (S, N, dim) sigma. Returns (S, N, dim) float64.
    """
    x = np.array(positions, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] < 2:
        raise error("positions", f"<array of shape {x.shape}>", "shape (S, N, dim) with N >= 2")
    low, high = float(distance[0]), float(distance[1])
    if not 0 < low <= high:
        raise error("distance", distance, "a range (low, high) with 0 < low <= high, sigma")
    num, n, dim = x.shape
    for s in range(num):
        best, best_gap = None, -np.inf
        for _ in range(max_tries):
            i, j = rng.choice(n, size=2, replace=False)
            direction = rng.standard_normal(dim)
            direction /= np.linalg.norm(direction)
            candidate = x[s, j] + rng.uniform(low, high) * direction
            if np.any(candidate < 0) or np.any(candidate > box_length):
                continue
            others = np.delete(x[s], [i, j], axis=0)
            gap = np.min(np.linalg.norm(others - candidate, axis=1)) if others.size else np.inf
            if gap > best_gap:
                best, best_gap = (i, candidate), gap
            if gap >= clearance:
                break
        if best is None:
            raise RuntimeError(f"configuration {s}: found no place for an overlap inside the box in {max_tries} "
                               f"tries; is box_length = {box_length} right?")
        x[s, best[0]] = best[1]
    return x


def uniform_configurations(num: int, n_particles: int, dim: int, box_length: float,
                           rng: np.random.Generator) -> np.ndarray:
    """(num, n_particles, dim) positions drawn independently and uniformly in the box: an ideal gas, overlaps
    included."""
    return rng.uniform(0.0, float(box_length), size=(int(num), int(n_particles), int(dim)))


def wasserstein_over_std(sample, reference) -> float:
    """W1(sample, reference) / std(reference): 0 for identical distributions, about 1 for a shift by one standard
    deviation. Non-finite values in ``sample`` are dropped (an infinite energy has no place on the axis)."""
    from scipy.stats import wasserstein_distance

    reference = np.asarray(reference, dtype=np.float64).ravel()
    sample = np.asarray(sample, dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if reference.size < 2 or sample.size == 0:
        return math.nan
    std = reference.std(ddof=1)
    return float(wasserstein_distance(sample, reference) / std) if std > 0 else math.nan
