"""Features on disk: lazy reads equal eager ones, the streamed training set is seeded, covers every training sample
once per pass and holds one window, and training, encoding and evaluating from disk work like in memory."""

import numpy as np
import pytest

from vaepipe import datasets, io
from vaepipe import representations as R

L = 4.0
PARAMS = {"voxel_size": 0.5, "method": "gaussian", "width": 0.5, "normalize": "max"}


def _write_state(path, state, gamma, num, seed):
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, L, size=(num, 5, 3))
    samples = io.Samples(positions=positions, energy=rng.normal(size=num), chain=np.arange(num) // (num // 2),
                         attrs={"gamma": gamma, "temperature": 1.0, "n_particles": 5, "box_length": L, "dim": 3,
                                "boundary": "reflect", "cutoff": None, "seed": 1, "step_size": 0.3,
                                "acceptance_rate": 0.4, "equilibration_sweeps": 10, "decorrelation_sweeps": 2})
    result = R.featurize(samples, "voxel", PARAMS)
    attrs = {**{k: samples.attrs[k] for k in ("gamma", "temperature", "n_particles", "box_length", "dim",
                                              "boundary", "seed")}, **result.attrs, "state": state}
    return io.write_features(path, "voxel", result.features, samples.energy, samples.chain, np.arange(num), attrs)


@pytest.fixture(scope="module")
def feature_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    return [str(_write_state(root / f"s{k}.h5", f"gamma{g}_T1", g, num, 10 + k))
            for k, (g, num) in enumerate([(0.0, 60), (0.5, 80)])]


def test_lazy_reads_equal_eager_reads(feature_files):
    eager = datasets.load_training_data(feature_files, 3, 0.2, 0.2, split_block=5)
    lazy = datasets.load_training_data(feature_files, 3, 0.2, 0.2, split_block=5, lazy=True)
    assert isinstance(lazy.features, datasets.FeatureStore) and lazy.features.shape == eager.features.shape
    for split in datasets.SPLITS:
        np.testing.assert_array_equal(lazy.split(split), eager.split(split))
    np.testing.assert_array_equal(np.asarray(lazy.features), eager.features)
    for key in (7, -1, slice(55, 70), np.array([100, 3, 3, 59, 60, 0]), eager.labels["split"] == "test"):
        np.testing.assert_array_equal(lazy.features[key], eager.features[key])
    rows = io.read_features(feature_files[1], lazy=True).features
    np.testing.assert_array_equal(rows[np.array([79, 1, 2])], io.read_features(feature_files[1]).features[[79, 1, 2]])
    with pytest.raises(IndexError, match="out of range for 140 samples"):
        lazy.features[np.array([140])]
    with pytest.raises(IndexError, match="boolean mask of 140 rows"):
        lazy.features[np.ones(3, dtype=bool)]


def test_stream_policy_and_window():
    assert not datasets.streams("auto", datasets.STREAM_THRESHOLD_BYTES)
    assert datasets.streams("auto", datasets.STREAM_THRESHOLD_BYTES + 1)
    assert datasets.streams("always", 0) and not datasets.streams("never", 10 ** 12)
    with pytest.raises(ValueError, match="vae.stream must be one of"):
        datasets.streams("sometimes", 0)
    # 50^3 float32 grids: 128 MiB hold 268 of them (288 in whole chunks); tiny samples still give at least two
    # batches and whole chunks.
    assert datasets.stream_window(4 * 50 ** 3, 32) == 288
    assert datasets.stream_window(4 * 50 ** 3, 200) == 416
    assert datasets.stream_window(10 ** 9, 1) == datasets.STREAM_CHUNK_ROWS


class CountingStore:
    """A FeatureStore stand-in over an array that records how many rows each read asks for."""

    def __init__(self, x):
        self.x, self.shape, self.reads = x, x.shape, []

    def __getitem__(self, rows):
        self.reads.append(len(rows))
        return self.x[rows]


def test_stream_batches_are_seeded_and_each_pass_is_a_permutation_of_the_rows():
    num = 1000
    x = np.arange(num, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    labels = np.arange(num, dtype=np.float32) / 10
    rows = np.flatnonzero(np.arange(num) % 5 != 0)  # 800 "training" rows, with gaps
    take = lambda gen, k: [next(gen) for _ in range(k)]  # noqa: E731
    store = CountingStore(x)
    first = take(datasets.stream_batches(store, rows, labels, 40, seed=3, window_rows=128), 40)  # two passes
    again = take(datasets.stream_batches(x, rows, labels, 40, seed=3, window_rows=128), 40)
    other = take(datasets.stream_batches(x, rows, labels, 40, seed=4, window_rows=128), 40)
    for (a, la), (b, lb) in zip(first, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    assert not all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, other))
    for batch, label in first:
        assert batch.shape == (40, 3) and batch.dtype == np.float32
        np.testing.assert_array_equal(label, batch[:, 0] / 10)  # the label travels with its sample
    passes = np.concatenate([b[:, 0] for b, _ in first]).astype(int).reshape(2, 800)
    for seen in passes:
        np.testing.assert_array_equal(np.sort(seen), rows)  # every training row once per pass, no other row
    assert not np.array_equal(passes[0], passes[1])  # a new permutation each pass
    assert not np.array_equal(passes[0], rows)  # shuffled
    assert max(store.reads) <= 128  # one window at a time
    with pytest.raises(ValueError, match="no samples to stream"):
        next(datasets.stream_batches(x, rows[:0], labels, 40, seed=3))


def test_a_split_that_fits_one_window_is_read_once_and_a_failed_read_surfaces():
    x = np.arange(300, dtype=np.float32)[:, None]
    rows = np.arange(0, 300, 2)
    store = CountingStore(x)
    gen = datasets.stream_batches(store, rows, np.zeros(300), 30, seed=1, window_rows=1024)
    passes = np.concatenate([next(gen)[0][:, 0] for _ in range(15)]).astype(int).reshape(3, 150)
    gen.close()
    assert store.reads == [150]  # one read for three passes
    assert all(np.array_equal(np.sort(p), rows) for p in passes) and not np.array_equal(passes[0], passes[1])

    class Failing(CountingStore):
        def __getitem__(self, rows):
            if self.reads:
                raise OSError("disk gone")
            return super().__getitem__(rows)

    gen = datasets.stream_batches(Failing(x), rows, np.zeros(300), 30, seed=1, window_rows=64)
    with pytest.raises(OSError, match="disk gone"):  # raised in the reading thread, surfaced to the consumer
        for _ in range(20):
            next(gen)


def test_training_from_disk_streams_and_matches_memory_where_it_must(feature_files):
    pytest.importorskip("keras")
    from vaepipe import training

    lazy = datasets.load_training_data(feature_files, 3, 0.2, 0.2, split_block=5, lazy=True)
    eager = datasets.load_training_data(feature_files, 3, 0.2, 0.2, split_block=5)
    params = dict(latent_dim=3, filters=[4, 8], dense_units=8, beta=0.01, reconstruction_loss="bce",
                  free_bits=0.0, learning_rate=1e-3, epochs=2, batch_size=16, kl_warmup_epochs=1, patience=0)
    runs = [training.train_vae(lazy, params, seed=5, progress=False, stream="always") for _ in range(2)]
    for a, b in zip(runs[0].model.get_weights(), runs[1].model.get_weights()):
        np.testing.assert_array_equal(a, b)  # streamed training is deterministic for a seed
    assert {"loss", "val_loss"} <= set(runs[0].history) and np.isfinite(runs[0].history["val_loss"]).all()
    memory = training.train_vae(lazy, params, seed=5, progress=False, stream="never")
    assert not all(np.array_equal(a, b) for a, b in zip(memory.model.get_weights(), runs[0].model.get_weights()))
    # Encoding and evaluating from disk, a slice at a time, give the numbers of the arrays in memory.
    model = runs[0].model
    old = datasets.STREAM_SLICE_BYTES
    datasets.STREAM_SLICE_BYTES = 16 * int(np.prod(lazy.features.shape[1:])) * 4  # slices of 16 samples: several
    try:
        for got, want in zip(training.encode(model, lazy.features, batch_size=16),
                             training.encode(model, eager.features, batch_size=16)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        from_disk = training.evaluate(model, lazy, batch_size=16)
    finally:
        datasets.STREAM_SLICE_BYTES = old
    in_memory = training.evaluate(model, eager, batch_size=16)
    for key in ("recon_error", "baseline_error", "error_ratio", "kl", "elbo", "num_samples", "active_units"):
        assert from_disk[key] == pytest.approx(in_memory[key], rel=1e-5), key
