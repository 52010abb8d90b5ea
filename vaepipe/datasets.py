"""The data of the learning stages: every state point of one representation in one array, its seeded split, and
the test set with the original configurations.

    data = load_training_data(feature_files, seed=2024, validation_fraction=0.1, test_fraction=0.1)
    data.features (S, ...) float32, data.labels (DataFrame: state, gamma, temperature, energy, chain,
    sample_index, split), data.split("train")
    test = load_test_set(feature_files, sample_files, seed=2024, split={...})   # + positions (S, N, dim)

The split into train / validation / test is by contiguous blocks of Monte Carlo time (:func:`assign_splits`),
drawn per state point from ``derive_seed(seed, "split", state)``,
the same for every representation (so the test configurations are the same ones everywhere) and unchanged for
one state point when another is added to the config. Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from vaepipe.io.features import read_features
from vaepipe.io.samples import read_samples
from vaepipe.seeds import derive_seed

__all__ = ["SPLITS", "SPLIT_BLOCK", "TrainingData", "TestSet", "split_blocks", "assign_splits", "load_training_data", "load_test_set",
           "example_rows"]

SPLITS = ("train", "validation", "test")


@dataclass
class TrainingData:
    """All state points of one representation, concatenated.

    features : (S, ...) float32 in [0, 1] -- (S, n, n, n) voxel grids, (S, M, M) distance matrices or
        (S, N * dim) sorted coordinates.
    labels : DataFrame with S rows: state, gamma, temperature, energy (U / epsilon), chain, sample_index (row in
        the samples file), split ("train" | "validation" | "test").
    attrs : the representation's attributes from the feature files (representation, box_length, n_particles,
        dim, distance_scale, ...), equal in every file.
    order : (S, N) int64 particle order of each sample's features (distance, coordinates), None for voxels.
    """

    features: np.ndarray
    labels: pd.DataFrame
    attrs: dict = field(default_factory=dict)
    order: np.ndarray | None = None

    @property
    def representation(self) -> str:
        return str(self.attrs["representation"])

    def split(self, name: str) -> np.ndarray:
        """Features of one split, (S_split, ...)."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.features[(self.labels["split"] == name).to_numpy()]

    def split_labels(self, name: str, column: str) -> np.ndarray:
        """One label column of one split, (S_split,) (e.g. "gamma")."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return self.labels[column].to_numpy()[(self.labels["split"] == name).to_numpy()]


#: Default length of the contiguous blocks of the split, in stored samples (one per decorrelation time).
SPLIT_BLOCK = 25
#: Each chain is cut into at least this many blocks, so that short chains still give every split a share.
MIN_BLOCKS_PER_CHAIN = 10


def split_blocks(chain: np.ndarray, block: int = SPLIT_BLOCK) -> np.ndarray:
    """Block id of each sample of one state point: every chain's samples (file order = Monte Carlo time) cut into
    contiguous runs of ``min(block, ceil(chain_length / MIN_BLOCKS_PER_CHAIN))`` samples; ids are unique over
    the chains, in file order. (S,) chain index -> (S,) int64."""
    chain = np.asarray(chain)
    ids = np.empty(chain.size, dtype=np.int64)
    offset = 0
    for value in dict.fromkeys(chain.tolist()):
        rows = np.flatnonzero(chain == value)
        size = max(1, min(int(block), math.ceil(rows.size / MIN_BLOCKS_PER_CHAIN)))
        local = np.arange(rows.size) // size
        ids[rows] = offset + local
        offset += int(local[-1]) + 1
    return ids


def assign_splits(states: Sequence[str], seed: int, validation_fraction: float, test_fraction: float,
                  chain: Sequence[int] | None = None, block: int = SPLIT_BLOCK) -> np.ndarray:
    """Split label of each sample, by blocks of Monte Carlo time.

    Per state point, each chain's samples are cut into contiguous blocks (:func:`split_blocks`: ``block``
    consecutive stored samples, at least :data:`MIN_BLOCKS_PER_CHAIN` blocks per chain); a seeded permutation of
    the state point's blocks gives the first ``round(test_fraction * blocks)`` blocks to "test", the next
    ``round(validation_fraction * blocks)`` to "validation", the rest to "train". So a test sample's neighbours in
    Monte Carlo time are test samples too (except at a block's two ends, one decorrelation time away), not
    training samples. A state point keeps its split when another one is added.

    states : (S,) state-point name of every sample, in file order. chain : (S,) chain of every sample (None: one
    chain per state point); samples of a chain must be in Monte Carlo time order, as in the samples files.
    """
    for name, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if not (isinstance(value, (int, float)) and 0 <= value < 1):
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    if validation_fraction + test_fraction >= 1:
        raise ValueError(f"validation_fraction + test_fraction must be < 1 to leave training data, got "
                         f"{validation_fraction} + {test_fraction}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"split_block must be an integer >= 1 (samples per contiguous block), got {block!r}")
    states = np.asarray(states)
    chain = np.zeros(states.size, dtype=np.int64) if chain is None else np.asarray(chain)
    if chain.shape != states.shape:
        raise ValueError(f"chain has shape {chain.shape} but states {states.shape}; give one chain per sample")
    split = np.empty(states.shape[0], dtype=object)
    for state in dict.fromkeys(states.tolist()):
        rows = np.flatnonzero(states == state)
        blocks = split_blocks(chain[rows], block)
        num_blocks = int(blocks.max()) + 1
        order = np.random.default_rng(derive_seed(seed, "split", state)).permutation(num_blocks)
        num_test = int(round(test_fraction * num_blocks))
        num_val = int(round(validation_fraction * num_blocks))
        kind = np.array(["train"] * num_blocks, dtype=object)
        kind[order[:num_test]] = "test"
        kind[order[num_test:num_test + num_val]] = "validation"
        split[rows] = kind[blocks]
    return split


_SHARED_ATTRS = ("representation", "box_length", "n_particles", "dim", "boundary", "voxel_size", "num_cells",
                 "method", "width", "normalize", "distance_scale", "sort_axis", "anchors")


def load_training_data(paths: Sequence[str], seed: int, validation_fraction: float = 0.1,
                       test_fraction: float = 0.1, split_block: int = SPLIT_BLOCK) -> TrainingData:
    """Read the feature files of every state point of one representation and concatenate them.

    Raises ValueError when the files disagree on the representation or its parameters (they would not fit one
    model), naming the file and the attribute.
    """
    if not paths:
        raise ValueError("load_training_data needs at least one feature file")
    arrays, frames, orders, attrs = [], [], [], None
    for path in paths:
        feats = read_features(path)
        shared = {k: feats.attrs[k] for k in _SHARED_ATTRS if k in feats.attrs}
        if feats.anchors is not None:
            shared["anchor_points"] = np.asarray(feats.anchors, dtype=float).tolist()
        if attrs is None:
            attrs, first = shared, path
        else:
            for key in sorted(set(attrs) | set(shared)):
                a, b = attrs.get(key), shared.get(key)
                same = (a == b) or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
                if not same:
                    raise ValueError(f"feature files disagree on {key}: {first} has {a!r}, {path} has {b!r}; "
                                     f"featurize every state point with the same settings")
        arrays.append(np.asarray(feats.features, dtype=np.float32))
        orders.append(feats.order)
        frames.append(pd.DataFrame({
            "state": feats.attrs["state"],
            "gamma": float(feats.attrs["gamma"]),
            "temperature": float(feats.attrs["temperature"]),
            "energy": feats.energy,
            "chain": feats.chain,
            "sample_index": feats.sample_index,
        }))
    labels = pd.concat(frames, ignore_index=True)
    labels["split"] = assign_splits(labels["state"].to_numpy(), seed, validation_fraction, test_fraction,
                                    chain=labels["chain"].to_numpy(), block=split_block)
    features = np.concatenate(arrays, axis=0)
    order = None if any(o is None for o in orders) else np.concatenate(orders, axis=0)
    return TrainingData(features=features, labels=labels, attrs=dict(attrs), order=order)


@dataclass
class TestSet:
    """Samples of one representation with their original configurations.

    features : (S, ...) float32 model inputs. labels : DataFrame (state, gamma, temperature, energy, chain,
    sample_index, split). positions : (S, N, dim) float64 originals in sigma, particles in the features' order
    (sorted, for distance matrices). attrs : features attributes, with the system's (box_length, boundary,
    cutoff, tail_correction) from the samples files.
    """

    features: np.ndarray
    labels: pd.DataFrame
    positions: np.ndarray
    attrs: dict

    def subset(self, mask: np.ndarray) -> "TestSet":
        mask = np.asarray(mask)
        return TestSet(self.features[mask], self.labels[mask].reset_index(drop=True), self.positions[mask],
                       self.attrs)


def load_test_set(feature_paths: Sequence[str], sample_paths: Sequence[str], seed: int,
                  split: Mapping[str, float], which: str | None = "test") -> TestSet:
    """Features, labels and original positions of every state point's ``which`` split (all samples for None).

    feature_paths and sample_paths : one per state point, in the same order.
    """
    if len(feature_paths) != len(sample_paths):
        raise ValueError(f"got {len(feature_paths)} features files but {len(sample_paths)} samples files; pass one "
                         f"of each per state point, in the same order")
    data = load_training_data(feature_paths, seed, **split)
    states = data.labels["state"].to_numpy()
    positions, system = [], None
    for state, sample_path in zip(dict.fromkeys(states), sample_paths):
        samples = read_samples(sample_path)
        if samples.attrs["state"] != state:
            raise ValueError(f"{sample_path} holds state point {samples.attrs['state']!r} but the features file in "
                             f"its place holds {state!r}; pass the files in the same state-point order")
        rows = states == state
        p = samples.positions[data.labels["sample_index"].to_numpy()[rows]]
        if data.order is not None:
            p = np.take_along_axis(p, data.order[rows][..., None], axis=1)
        positions.append(p)
        system = {k: samples.attrs[k] for k in ("box_length", "boundary", "cutoff", "tail_correction")
                  if k in samples.attrs}
    attrs = {**data.attrs, **system}
    full = TestSet(data.features, data.labels, np.concatenate(positions), attrs)
    return full if which is None else full.subset((data.labels["split"] == which).to_numpy())


def example_rows(data: TrainingData, split: str = "test", num: int = 3) -> np.ndarray:
    """Rows (into ``data.split(split)``) of ``num`` examples from state points spread over gamma: the first
    sample of the split at the lowest, middle and highest gamma (fewer when there are fewer state points)."""
    labels = data.labels[data.labels["split"] == split].reset_index(drop=True)
    states = labels.drop_duplicates("state").sort_values(["gamma", "temperature"])
    picks = np.unique(np.linspace(0, len(states) - 1, min(num, len(states))).round().astype(int))
    return np.array([labels.index[labels["state"] == states["state"].iloc[i]][0] for i in picks], dtype=int)
