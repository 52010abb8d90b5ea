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

import itertools
import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from vaepipe.io.features import FeatureRows, LazyRows, read_features
from vaepipe.io.samples import read_samples
from vaepipe.seeds import derive_seed

__all__ = ["SPLITS", "SPLIT_BLOCK", "STREAM_MODES", "FeatureStore", "TrainingData", "streams", "stream_window",
           "stream_batches", "training_memory_mb", "TestSet", "split_blocks", "assign_splits", "load_training_data",
           "load_test_set", "example_rows"]

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


class FeatureStore(LazyRows):
    """The features of several files as one (S, ...) float32 array that stays on disk until rows are asked for
    (see :class:`vaepipe.io.features.LazyRows`): a job then holds the samples it works on (a split, a batch, a
    window of the streamed training set), not every state point's features."""

    def __init__(self, parts: Sequence[FeatureRows]):
        if not parts:
            raise ValueError("a FeatureStore needs at least one features file")
        shapes = {tuple(p.shape[1:]) for p in parts}
        if len(shapes) != 1:
            raise ValueError(f"the features files hold samples of different shapes {sorted(shapes)}")
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])
        self.shape = (int(self.offsets[-1]),) + shapes.pop()

    def __repr__(self) -> str:
        return f"FeatureStore({len(self.parts)} files, shape={self.shape})"

    def read(self, rows) -> np.ndarray:
        """The samples ``rows`` ((K,) int64 into the concatenation, any order), (K, ...) float32, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size,) + self.shape[1:], dtype=np.float32)
        part = np.searchsorted(self.offsets, rows, side="right") - 1
        for k in np.unique(part):
            where = np.flatnonzero(part == k)
            out[where] = self.parts[k].read(rows[where] - self.offsets[k])
        return out


def load_training_data(paths: Sequence[str], seed: int, validation_fraction: float = 0.1,
                       test_fraction: float = 0.1, split_block: int = SPLIT_BLOCK, lazy: bool = False) -> TrainingData:
    """Read the feature files of every state point of one representation and concatenate them.

    lazy : leave the features on disk: ``data.features`` is a :class:`FeatureStore`, and ``data.split(name)`` reads
        only that split's samples (same values as without; the labels are read either way).

    Raises ValueError when the files disagree on the representation or its parameters (they would not fit one
    model), naming the file and the attribute.
    """
    if not paths:
        raise ValueError("load_training_data needs at least one feature file")
    arrays, frames, orders, attrs = [], [], [], None
    for path in paths:
        feats = read_features(path, lazy=lazy)
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
        arrays.append(feats.features if lazy else np.asarray(feats.features, dtype=np.float32))
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
    features = FeatureStore(arrays) if lazy else np.concatenate(arrays, axis=0)
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
    data = load_training_data(feature_paths, seed, **split, lazy=True)  # then read just the split asked for
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
    if which is None:
        return TestSet(np.asarray(data.features), data.labels, np.concatenate(positions), attrs)
    return TestSet(data.features, data.labels, np.concatenate(positions), attrs).subset(
        (data.labels["split"] == which).to_numpy())


def example_rows(data: TrainingData, split: str = "test", num: int = 3) -> np.ndarray:
    """Rows (into ``data.split(split)``) of ``num`` examples from state points spread over gamma: the first
    sample of the split at the lowest, middle and highest gamma (fewer when there are fewer state points)."""
    labels = data.labels[data.labels["split"] == split].reset_index(drop=True)
    states = labels.drop_duplicates("state").sort_values(["gamma", "temperature"])
    picks = np.unique(np.linspace(0, len(states) - 1, min(num, len(states))).round().astype(int))
    return np.array([labels.index[labels["state"] == states["state"].iloc[i]][0] for i in picks], dtype=int)


# --------------------------------------------------------------------------- streaming

#: vae.stream: "auto" streams the training split from disk when it exceeds STREAM_THRESHOLD_BYTES, "always" and
#: "never" force one way.
STREAM_MODES = ("auto", "always", "never")
#: Above this many bytes of training features, "auto" streams them (the demo's are a few tens of MB; the paper
#: config's 50^3 grids are 18 GB).
STREAM_THRESHOLD_BYTES = 1 << 30
#: Bytes of samples a streamed training set holds at once: one window of chunks, shuffled together.
STREAM_WINDOW_BYTES = 128 << 20
#: Contiguous samples (in file order) read as one chunk; a window permutes whole chunks, then samples.
STREAM_CHUNK_ROWS = 32
#: Bytes of on-disk samples that encoding and evaluation read and run through a model at once.
STREAM_SLICE_BYTES = 64 << 20
#: Bytes of input per batch of encoding and decoding at most (vaepipe.training.inference_batch).
INFERENCE_BATCH_BYTES = 16 << 20


def streams(mode: str, num_bytes: int) -> bool:
    """Whether training features of ``num_bytes`` bytes stream from disk under vae.stream = ``mode``."""
    if mode not in STREAM_MODES:
        raise ValueError(f"vae.stream must be one of {STREAM_MODES}, got {mode!r}")
    return mode == "always" or (mode == "auto" and num_bytes > STREAM_THRESHOLD_BYTES)


def stream_window(sample_bytes: int, batch_size: int) -> int:
    """Samples per window of the streamed training set: STREAM_WINDOW_BYTES' worth, whole chunks, at least two
    batches (so consecutive batches mix samples of several chunks)."""
    rows = max(int(STREAM_WINDOW_BYTES // max(int(sample_bytes), 1)), 2 * int(batch_size), STREAM_CHUNK_ROWS)
    return STREAM_CHUNK_ROWS * math.ceil(rows / STREAM_CHUNK_ROWS)


def stream_batches(features, rows: np.ndarray, labels: np.ndarray, batch_size: int, seed: int,
                   window_rows: int | None = None, transform=None):
    """Endless training batches ``(x, label)`` of the samples ``rows`` of ``features`` (a :class:`FeatureStore` or
    an array), read a window at a time.

    Each pass over the rows is one seeded permutation: the rows (in file order) are cut into chunks of
    :data:`STREAM_CHUNK_ROWS`, the chunks are permuted with ``numpy.random.default_rng([seed, pass])``, and each
    window of ``window_rows`` samples (whole chunks) is read and permuted by the same generator. The batches run
    on across windows and passes (no partial batch), like a repeated, shuffled in-memory dataset. A thread reads
    the next window while the batches of this one are used, so the memory is two windows whatever the data size,
    and the same seed gives the same batches.

    labels : (S,) float32 label of every row of ``features`` (indexed by row). transform : optional function
    ``(x, label) -> (x, label)`` applied to each window before the shuffle (augmentation).
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise ValueError("no samples to stream; lower validation_fraction / test_fraction or sample more")
    labels = np.asarray(labels, dtype=np.float32)
    batch_size = int(batch_size)
    window_rows = int(window_rows or stream_window(int(np.prod(features.shape[1:])) * 4, batch_size))
    chunks = [rows[i:i + STREAM_CHUNK_ROWS] for i in range(0, rows.size, STREAM_CHUNK_ROWS)]
    per_window = max(1, window_rows // STREAM_CHUNK_ROWS)

    # When every row fits in one window, that window is the same each pass: read it once and keep it (the same
    # batches as reading it again; the memory is still one window).
    kept = features[rows] if per_window >= len(chunks) else None

    def windows():
        for epoch in itertools.count():
            rng = np.random.default_rng([int(seed), epoch])
            order = rng.permutation(len(chunks))
            for start in range(0, len(order), per_window):
                chosen = np.concatenate([chunks[k] for k in order[start:start + per_window]])
                x = features[chosen] if kept is None else kept[np.searchsorted(rows, chosen)]
                y = labels[chosen]
                if transform is not None:
                    x, y = transform(x, y)
                perm = rng.permutation(len(x))
                yield x[perm], y[perm]

    carry_x = carry_y = None
    for x, y in _read_ahead(windows()):
        start = 0
        if carry_x is not None:  # the batch that spans two windows
            start = batch_size - len(carry_x)
            if start > len(x):
                carry_x, carry_y = np.concatenate([carry_x, x]), np.concatenate([carry_y, y])
                continue
            yield np.concatenate([carry_x, x[:start]]), np.concatenate([carry_y, y[:start]])
        full = (len(x) - start) // batch_size
        for b in range(full):
            a = start + b * batch_size
            yield x[a:a + batch_size], y[a:a + batch_size]
        rest = start + full * batch_size
        carry_x, carry_y = (x[rest:].copy(), y[rest:].copy()) if rest < len(x) else (None, None)


_READERS: list = []  # (stop event, thread) of every live read-ahead thread


def _stop_readers() -> None:
    """At exit, let every read-ahead thread finish its read and stop: a daemon thread frozen inside an HDF5 read
    would hold h5py's lock, and h5py's own exit handler (registered earlier, so run later) would wait for it."""
    for stop, thread in list(_READERS):
        stop.set()
        thread.join(timeout=60)


def _read_ahead(items):
    """The items of an iterator, produced one ahead by a background thread (reading the next window of samples
    while the current one trains). An exception in the thread is raised here; closing this generator stops it."""
    import atexit
    import queue
    import threading

    if not _READERS:
        atexit.register(_stop_readers)
    slots: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            slots.put(exc)

    thread = threading.Thread(target=produce, name="vaepipe-read-ahead", daemon=True)
    _READERS.append((stop, thread))
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
        _READERS.remove((stop, thread))


#: Bytes the model of a training job needs per sample of its batch (activations and their gradients), measured
#: on the voxel VAE: the paper config's Conv3D VAE on 50^3 grids peaks at about 180 x (batch x sample bytes)
#: above the interpreter and TensorFlow (docs/benchmarks.md, "Training from disk").
ACTIVATION_FACTOR = 200
#: Memory of the interpreter with TensorFlow loaded, and slack, in bytes.
BASE_BYTES = 2_000_000_000


def training_memory_mb(num_samples: int, num_train: int, sample_bytes: int, batch_size: int, stream: str) -> int:
    """Memory of a training or encoding job in MB, as the workflow asks the scheduler for it.

    num_samples : every sample of the representation the job sees (all trained state points); num_train : those
    of the training split; sample_bytes : float32 bytes of one sample's features. Streamed (``streams(stream,
    num_train * sample_bytes)``), the features cost two windows and the slices of encoding and evaluation, the
    same for any number of samples; in memory, the features a few times over (file, concatenation, tensor).
    Either way, plus the batch's activations and the interpreter with TensorFlow.
    """
    batch = min(int(batch_size), max(int(num_train), 1))
    if streams(stream, int(num_train) * int(sample_bytes)):
        data = 3 * STREAM_WINDOW_BYTES + 3 * STREAM_SLICE_BYTES
    else:
        data = 4 * int(num_samples) * int(sample_bytes)
    return int((BASE_BYTES + data + ACTIVATION_FACTOR * batch * int(sample_bytes)) // 1_000_000)
