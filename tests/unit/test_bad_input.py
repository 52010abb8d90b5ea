"""Bad input to the public API: each call raises a ValueError or TypeError that names what was given, before any
lossy conversion (complex -> float), NaN propagation, or C++ call; valid boundary positions still round-trip."""

import h5py
import numpy as np
import pytest

from vaepipe import io
from vaepipe.analysis import gamma_clustering, knn_accuracy
from vaepipe.energy import forces, potential_energy
from vaepipe.features import distance_matrix, sort_by_origin_distance, sorted_coordinates, voxel_grid
from vaepipe.mc import MAX_TRACE_BYTES, Sampler
from vaepipe.reconstruct import classical_mds, repair_overlaps

BOX = 5.0


def _configuration(n=6, dim=3, seed=0):
    return np.random.default_rng(seed).uniform(0.0, BOX, size=(n, dim))


def _distances(n=6, seed=0):
    p = _configuration(n, seed=seed)
    return np.linalg.norm(p[:, None] - p[None], axis=-1)


def _sampler(**kwargs):
    return Sampler(**{"n_particles": 4, "box_length": BOX, "temperature": 1.0, "seed": 0, **kwargs})


# --------------------------------------------------------------------------- 1. classical_mds


def _with(matrix, index, value):
    out = matrix.copy()
    out[index] = value
    return out


@pytest.mark.parametrize("matrices, match", [
    (_with(_distances(), (0, 5), np.nan), r"distance_matrices=.*shape \(6, 6\) with NaN or inf at entries \(0, 5\)"),
    (_with(_distances(), (2, 3), np.inf), r"distance_matrices=.*NaN or inf at entries \(2, 3\).*finite distances"),
    (np.stack([_distances(), _distances(seed=1), _with(_distances(), (0, 5), np.nan)]),
     r"distance_matrices=.*NaN or inf at sample 2 \(entries \(0, 5\)\).*drop or repair sample 2"),
    (np.stack([_with(_distances(), (1, 2), -np.inf), _distances(), _with(_distances(), (0, 5), np.nan)]),
     r"at sample 0 \(entries \(1, 2\)\) and 1 more sample\(s\): \[2\]"),
], ids=["single-nan", "single-inf", "batch-nan", "batch-two-bad"])
def test_classical_mds_refuses_non_finite_distances(matrices, match):
    with pytest.raises(ValueError, match=match):
        classical_mds(matrices)


# --------------------------------------------------------------------------- 2. repair_overlaps


@pytest.mark.parametrize("positions, match", [
    (_with(_configuration(), (1, 0), np.nan), r"positions=.*NaN or inf at entries \(1, 0\).*finite coordinates"),
    (np.stack([_configuration(), _with(_configuration(), (4, 2), np.nan)]),
     r"positions=.*NaN or inf at sample 1 \(entries \(4, 2\)\)"),
], ids=["single", "batch"])
def test_repair_overlaps_refuses_nan_positions(positions, match):
    with pytest.raises(ValueError, match=match):
        repair_overlaps(positions, BOX)


# --------------------------------------------------------------------------- 3. distance_matrix anchors


@pytest.mark.parametrize("anchors, match", [
    ([[0.0, 0.0, 0.0], [7.0, 0.0, 0.0]],
     r"anchors=.*anchor 1 at \[7.0, 0.0, 0.0\].*inside the box \[0, box_length=5\]"),
    ([[-0.5, 1.0, 1.0]], r"anchors=.*anchor 0 at \[-0.5, 1.0, 1.0\]"),
    ([[1.0, 1.0, np.nan]], r"anchors=.*anchor 0 at \[1.0, 1.0, nan\].*finite points"),
], ids=["above", "below", "nan"])
def test_distance_matrix_refuses_anchors_outside_the_box(anchors, match):
    with pytest.raises(ValueError, match=match):
        distance_matrix(_configuration(), BOX, anchors=np.array(anchors))


def test_distance_matrix_keeps_anchors_on_the_box_corners():
    from vaepipe.features import box_anchors

    matrices, _ = distance_matrix(_configuration(), BOX, anchors=box_anchors(BOX, 3, "corners"))
    assert matrices.shape == (14, 14)


# --------------------------------------------------------------------------- 4. and 5. samples files


def _samples_file_parts(positions, boundary="reflect"):
    num, n, dim = positions.shape
    attrs = {"gamma": 0.0, "temperature": 1.0, "n_particles": n, "box_length": BOX, "dim": dim,
             "boundary": boundary, "cutoff": None if boundary == "reflect" else 2.5, "seed": 0, "step_size": 0.2,
             "acceptance_rate": 0.4, "equilibration_sweeps": 10, "decorrelation_sweeps": 2}
    return positions, np.zeros(num), np.zeros(num, dtype=np.int64), attrs


def _good_positions():
    return np.random.default_rng(3).uniform(0.0, BOX, size=(4, 5, 3))


BAD_POSITIONS = [
    ((2, 1, 0), np.nan, r"positions hold NaN or inf at sample 2 \(particle 1, axis 0; 1 bad sample\(s\) of 4\)"),
    ((1, 3, 2), np.inf, r"positions hold NaN or inf at sample 1 \(particle 3, axis 2"),
    ((3, 0, 1), BOX + 0.5, r"positions\[3, 0, 1\] = 5.5 lies outside the box.*\[0, box_length=5\]"),
    ((0, 4, 2), -1e-3, r"positions\[0, 4, 2\] = -0.001 lies outside the box"),
]
BAD_IDS = ["nan", "inf", "above", "below"]


@pytest.mark.parametrize("index, value, match", BAD_POSITIONS, ids=BAD_IDS)
def test_write_samples_refuses_bad_positions(tmp_path, index, value, match):
    positions = _good_positions()
    positions[index] = value
    with pytest.raises(ValueError, match=r"write_samples\(.*s\.h5'\): " + match):
        io.write_samples(tmp_path / "s.h5", *_samples_file_parts(positions))
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("index, value, match", BAD_POSITIONS, ids=BAD_IDS)
def test_read_samples_refuses_bad_positions(tmp_path, index, value, match):
    path = io.write_samples(tmp_path / "s.h5", *_samples_file_parts(_good_positions()))
    with h5py.File(path, "a") as f:
        f["positions"][index] = value
    with pytest.raises(ValueError, match=r"s\.h5: " + match + r".*delete it and rerun the sample rule"):
        io.read_samples(path)


def test_read_samples_of_a_directory_says_it_is_one(tmp_path):
    with pytest.raises(ValueError, match=rf"{tmp_path} is a directory; expected a samples \.h5 file"):
        io.read_samples(tmp_path)


def _boundary_samples(boundary, dim):
    """A short real run, after its start: one particle in the corner at the origin, one on the ceiling (L)."""
    cutoff = None if boundary == "reflect" else 2.5
    gamma = 0.0 if boundary == "periodic" else 1.0
    s = Sampler(n_particles=6, box_length=BOX, temperature=2.0, gamma=gamma, dim=dim, boundary=boundary,
                cutoff=cutoff, seed=7, step_size=2.0)
    start = s.positions
    start[0] = 0.0
    start[1] = BOX / 2
    start[1, -1] = BOX
    s.positions = start  # the core keeps L on a wall and wraps it to 0 on a periodic axis
    first = s.positions[None]
    positions, energy = s.sample(50, 2)
    return np.concatenate([first, positions]), np.concatenate([[s.recompute_energy()], energy]), cutoff, gamma


@pytest.mark.parametrize("boundary", ["reflect", "periodic", "slab"])
@pytest.mark.parametrize("dim", [2, 3])
def test_sampler_positions_round_trip_through_samples_files(tmp_path, boundary, dim):
    positions, energy, cutoff, gamma = _boundary_samples(boundary, dim)
    assert positions.min() == 0.0  # the wall itself is legal
    assert positions.min() >= 0.0 and positions.max() <= BOX
    if boundary == "periodic":
        assert positions.max() < BOX  # wrapped into [0, L)
    else:
        assert positions[0, 1, -1] == BOX  # the ceiling stays at L
    _, _, chain, attrs = _samples_file_parts(positions, boundary)
    attrs.update(cutoff=cutoff, gamma=gamma)
    path = io.write_samples(tmp_path / "s.h5", positions, energy, chain, attrs)
    got = io.read_samples(path)
    assert got.positions.tobytes() == positions.tobytes()


def test_samples_files_forgive_a_rounding_error_at_the_walls(tmp_path):
    positions = _good_positions()
    positions[0, 0] = [0.0, BOX, -1e-12]
    positions[1, 1] = [BOX * (1 + 1e-12), 0.0, BOX]
    path = io.write_samples(tmp_path / "s.h5", *_samples_file_parts(positions))
    assert io.read_samples(path).positions.tobytes() == positions.tobytes()


# --------------------------------------------------------------------------- 6. run_trace


@pytest.mark.parametrize("args, match", [
    ((10**12,), r"sweeps=1000000000000 is invalid: expected at most 134217728 recorded sweeps .*8e\+12 bytes.*"
                r"every >= 7451"),
    ((10**12, 10), r"sweeps // every = 100000000000 records"),
    ((0,), r"sweeps=0 is invalid: expected a positive integer"),
    ((-3,), r"sweeps=-3 is invalid: expected a positive integer"),
    ((2.5,), r"sweeps=2.5 is invalid"),
    ((True,), r"sweeps=True is invalid"),
], ids=["huge", "huge-every", "zero", "negative", "float", "bool"])
def test_run_trace_refuses_bad_sizes_before_running(args, match):
    s = _sampler()
    with pytest.raises(ValueError, match=match):
        s.run_trace(*args)
    assert s.attempted == 0


def test_run_trace_cap_allows_the_largest_trace():
    assert MAX_TRACE_BYTES == 2**30
    s = _sampler()
    # Exactly at the cap is allowed; checked without running it: a trace this long takes minutes.
    with pytest.raises(ValueError, match="134217729 records"):
        s.run_trace(MAX_TRACE_BYTES // 8 + 1)
    assert s.run_trace(20, every=10).shape == (2,)


# --------------------------------------------------------------------------- 7. gamma_clustering


def _latent(per_gamma=6, gammas=(0.0, 1.0)):
    rng = np.random.default_rng(0)
    gamma = np.repeat(gammas, per_gamma)
    return rng.normal(size=(gamma.size, 2)) + gamma[:, None], gamma


@pytest.mark.parametrize("neighbors, folds, match", [
    (20, 5, r"neighbors=20 is invalid: expected at most 9, the samples of the smallest training fold of 5-fold "
            r"cross-validation on 12 samples"),
    (10, 5, r"neighbors=10 is invalid: expected at most 9"),
    (7, 2, r"neighbors=7 is invalid: expected at most 6, .* 2-fold cross-validation on 12 samples"),
    (0, 5, r"neighbors=0 is invalid: expected a positive integer"),
], ids=["more-than-samples", "more-than-training-fold", "two-folds", "zero"])
def test_gamma_clustering_refuses_more_neighbours_than_training_samples(neighbors, folds, match):
    z, gamma = _latent()
    with pytest.raises(ValueError, match=match):
        gamma_clustering(z, gamma, neighbors=neighbors, folds=folds)
    with pytest.raises(ValueError, match=match):
        knn_accuracy(z, gamma, neighbors, folds)


def test_gamma_clustering_at_the_largest_k_is_finite():
    z, gamma = _latent()
    stats = gamma_clustering(z, gamma, neighbors=9, folds=5)
    assert np.isfinite(stats["knn_accuracy"])


# --------------------------------------------------------------------------- 8. complex positions


def _complex():
    return _sampler().positions.astype(complex) + 0.5j


def _set_positions():
    s = _sampler()
    s.positions = _complex()


COMPLEX_CALLS = {
    "Sampler.positions": _set_positions,
    "Sampler(positions=)": lambda: _sampler(positions=_complex()),
    "potential_energy": lambda: potential_energy(_complex(), BOX),
    "potential_energy-batch": lambda: potential_energy(_complex()[None], BOX),
    "forces": lambda: forces(_complex(), BOX),
    "voxel_grid": lambda: voxel_grid(_complex(), BOX, 1.0),
    "distance_matrix": lambda: distance_matrix(_complex(), BOX),
    "sorted_coordinates": lambda: sorted_coordinates(_complex(), BOX),
    "sort_by_origin_distance": lambda: sort_by_origin_distance(_complex()),
    "write_samples": lambda: io.write_samples("never.h5", *_samples_file_parts(_complex()[None])),
    "repair_overlaps": lambda: repair_overlaps(_complex(), BOX),
}


@pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning")
@pytest.mark.parametrize("call", COMPLEX_CALLS.values(), ids=COMPLEX_CALLS.keys())
def test_complex_positions_are_a_type_error(call):
    with pytest.raises(TypeError, match=r"positions='<complex array of shape \(1?,? ?4, 3\)>' is invalid: expected "
                                        r"real numbers.*positions\.real"):
        call()


@pytest.mark.filterwarnings("error::numpy.exceptions.ComplexWarning")
def test_complex_distances_and_anchors_are_a_type_error():
    with pytest.raises(TypeError, match=r"distance_matrices='<complex array of shape \(6, 6\)>'"):
        classical_mds(_distances().astype(complex))
    with pytest.raises(TypeError, match=r"anchors='<complex array of shape \(1, 3\)>'"):
        distance_matrix(_configuration(), BOX, anchors=np.array([[1j, 0, 0]]))


# --------------------------------------------------------------------------- 9. Sampler.set_state


@pytest.mark.parametrize("reference, error, match", [
    (np.zeros((3, 3)), ValueError, r"state\['neighbor_reference'\]='<array of shape \(3, 3\)>' is invalid: expected "
                                   r"shape \(4, 3\).*get_state\(\)\['neighbor_reference'\]"),
    (np.full((4, 3), np.nan), ValueError, r"state\['neighbor_reference'\]='<array with NaN or inf>'"),
    (np.full((4, 3), 2 * BOX), ValueError, r"state\['neighbor_reference'\]=.*inside the box"),
    (np.zeros((4, 3)) + 1j, TypeError, r"state\['neighbor_reference'\]='<complex array"),
], ids=["shape", "nan", "outside", "complex"])
def test_set_state_names_neighbor_reference(reference, error, match):
    s = _sampler()
    state = s.get_state()
    before = s.positions.tobytes()
    with pytest.raises(error, match=match):
        s.set_state({**state, "neighbor_reference": reference})
    assert s.positions.tobytes() == before
    s.set_state({**state, "neighbor_reference": None})  # None: no list to restore
