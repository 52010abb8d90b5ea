"""File layouts (vaepipe.io): samples HDF5 contract, preliminary JSON, atomic and byte-reproducible writes."""

import json
import math
import os
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import vaepipe
from vaepipe import io

CONTRACT = ["gamma", "temperature", "n_particles", "box_length", "dim", "boundary", "cutoff", "seed", "step_size",
            "acceptance_rate", "equilibration_sweeps", "decorrelation_sweeps", "vaepipe_version"]


def _samples(num=12, n=5, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    positions = rng.uniform(0.0, 4.0, size=(num, n, dim))
    energy = rng.normal(-10.0, 2.0, size=num)
    chain = np.repeat(np.arange(3), num // 3)
    attrs = {"gamma": 0.5, "temperature": 1.0, "n_particles": n, "box_length": 4.0, "dim": dim,
             "boundary": "reflect", "cutoff": None, "seed": 2024, "step_size": 0.31,
             "acceptance_rate": 0.41, "equilibration_sweeps": 120, "decorrelation_sweeps": 17,
             "state": "gamma0.5_T1", "sampling_mode": "continuous", "tail_correction": False,
             "config": {"system": {"n_particles": n, "cutoff": None}, "code": "abc"},
             "seed_entropy": {"entropy": [2024, 1, 2, 3, 4], "spawn_key": []}}
    return positions, energy, chain, attrs


def test_contract_attribute_list_matches_design():
    assert list(io.SAMPLES_ATTRS) == CONTRACT


def test_samples_round_trip(tmp_path):
    positions, energy, chain, attrs = _samples()
    path = io.write_samples(tmp_path / "s.h5", positions, energy, chain, attrs)
    got = io.read_samples(path)
    np.testing.assert_array_equal(got.positions, positions)
    np.testing.assert_array_equal(got.energy, energy)
    np.testing.assert_array_equal(got.chain, chain)
    assert got.num_samples == 12
    for key in CONTRACT:
        assert key in got.attrs
    assert math.isnan(got.attrs["cutoff"])
    assert got.attrs["vaepipe_version"] == vaepipe.__version__
    assert got.attrs["boundary"] == "reflect" and got.attrs["n_particles"] == 5 and got.attrs["seed"] == 2024
    assert json.loads(got.attrs["config"]) == attrs["config"]
    assert json.loads(got.attrs["seed_entropy"])["entropy"] == [2024, 1, 2, 3, 4]


def test_samples_file_layout_with_plain_h5py(tmp_path):
    # what a user without vaepipe sees
    positions, energy, chain, attrs = _samples()
    attrs["cutoff"] = 2.5
    path = io.write_samples(tmp_path / "s.h5", positions, energy, chain, attrs)
    with h5py.File(path, "r") as f:
        assert set(f) == {"positions", "energy", "chain"}
        assert f["positions"].shape == (12, 5, 3) and f["positions"].dtype == np.float64
        assert f["energy"].shape == (12,) and f["energy"].dtype == np.float64
        assert f["chain"].shape == (12,) and np.issubdtype(f["chain"].dtype, np.integer)
        assert set(CONTRACT) <= set(f.attrs)
        assert f.attrs["cutoff"] == 2.5
        assert f.attrs["equilibration_sweeps"] == 120
        assert isinstance(f.attrs["boundary"], str)


def test_samples_write_is_byte_reproducible(tmp_path):
    positions, energy, chain, attrs = _samples()
    a = io.write_samples(tmp_path / "a.h5", positions, energy, chain, attrs)
    time.sleep(1.1)  # HDF5 object timestamps have one-second resolution
    b = io.write_samples(tmp_path / "b.h5", positions.copy(), energy.copy(), chain.copy(),
                         dict(reversed(attrs.items())))
    assert a.read_bytes() == b.read_bytes()


def test_failed_samples_write_leaves_nothing(tmp_path, monkeypatch):
    positions, energy, chain, attrs = _samples()
    calls = []
    original = h5py.Group.create_dataset

    def fail_on_second(self, name, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", fail_on_second)
    with pytest.raises(OSError, match="simulated"):
        io.write_samples(tmp_path / "s.h5", positions, energy, chain, attrs)
    assert calls == ["positions", "energy"]  # it really failed midway
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_previous_complete_file(tmp_path):
    path = tmp_path / "p.json"
    io.write_json(path, {"a": 1})
    before = path.read_bytes()
    with pytest.raises(RuntimeError):
        with io.atomic_path(path) as tmp:
            tmp.write_text('{"a": 2, "trunc')
            raise RuntimeError("interrupted")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]


def test_atomic_files_get_normal_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        path = io.write_json(tmp_path / "x.json", {"b": 2})
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_write_samples_rejects_incomplete_or_inconsistent(tmp_path):
    positions, energy, chain, attrs = _samples()
    bad = dict(attrs)
    del bad["step_size"]
    with pytest.raises(ValueError, match="step_size"):
        io.write_samples(tmp_path / "s.h5", positions, energy, chain, bad)
    with pytest.raises(ValueError, match="n_particles"):
        io.write_samples(tmp_path / "s.h5", positions[:, :4], energy, chain, attrs)
    with pytest.raises(ValueError, match="shape"):
        io.write_samples(tmp_path / "s.h5", positions, energy[:-1], chain, attrs)
    assert list(tmp_path.iterdir()) == []


def test_read_samples_explains_a_bad_layout(tmp_path):
    positions, energy, chain, attrs = _samples()
    path = io.write_samples(tmp_path / "s.h5", positions, energy, chain, attrs)
    with h5py.File(path, "a") as f:
        del f.attrs["decorrelation_sweeps"]
        del f["chain"]
    with pytest.raises(ValueError, match=r"not a vaepipe samples file: dataset 'chain' is missing.*decorrelation"):
        io.read_samples(path)
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        io.read_samples(junk)
    with pytest.raises(FileNotFoundError):
        io.read_samples(tmp_path / "missing.h5")


def _summary():
    return {"state": "gamma0.5_T1", "gamma": 0.5, "temperature": 1.0, "step_size": 0.3, "acceptance_rate": 0.4,
            "tune_sweeps": 100, "trace_sweeps": 1000, "equilibration_sweeps": np.int64(40),
            "decorrelation_sweeps": 7, "tau_int": 2.5, "statistical_inefficiency": np.float64(6.0), "n_eff": 160.0,
            "energy_mean": -30.5, "energy_sem": float("nan"), "observables": {"energy": {"mean": -30.5}},
            "provenance": {"seed": {"entropy": [1, 2], "spawn_key": []}}}


def test_preliminary_round_trip_is_canonical_json(tmp_path):
    path = io.write_preliminary(tmp_path / "p.json", _summary())
    text = path.read_text()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert data["energy_sem"] is None  # NaN is not JSON
    assert data["equilibration_sweeps"] == 40 and data["file_format"] == io.PRELIMINARY_FORMAT
    assert io.read_preliminary(path) == data
    again = io.write_preliminary(tmp_path / "q.json", dict(reversed(list(_summary().items()))))
    assert again.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("key, value, message", [
    ("decorrelation_sweeps", None, "decorrelation_sweeps"),
    ("step_size", "big", "step_size"),
    ("observables", [], "observables"),
])
def test_preliminary_validation(tmp_path, key, value, message):
    summary = _summary()
    summary[key] = value
    with pytest.raises(ValueError, match=message):
        io.write_preliminary(tmp_path / "p.json", summary)
    path = tmp_path / "hand.json"
    data = io._jsonable({**_summary(), "file_format": "x", "vaepipe_version": "0"})
    data[key] = value
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        io.read_preliminary(path)


def test_read_preliminary_rejects_out_of_range(tmp_path):
    data = io._jsonable({**_summary(), "file_format": "x", "vaepipe_version": "0", "decorrelation_sweeps": 0})
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="decorrelation_sweeps = 0"):
        io.read_preliminary(path)


def test_save_figure_is_byte_reproducible_and_dateless(tmp_path):
    from matplotlib.figure import Figure

    def make():
        fig = Figure(figsize=(3, 2))
        ax = fig.subplots()
        ax.plot([0, 1, 2], [1, 0, 2], label="x")
        ax.set_xlabel(r"$z/\sigma$")
        ax.legend()
        return fig

    a = io.save_figure(make(), tmp_path / "a.png")
    time.sleep(1.1)
    b = io.save_figure(make(), tmp_path / "b.png")
    data = a.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data == b.read_bytes()
    assert b"Matplotlib" not in data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
    with pytest.raises(ValueError, match="png"):
        io.save_figure(make(), tmp_path / "c.jpg")


def test_provenance_record():
    seed = np.random.SeedSequence([1, 2, 3], spawn_key=(4,))
    prov = io.provenance({"seed": 1, "system": {"dim": 3}}, seed)
    assert prov["config"] == {"seed": 1, "system": {"dim": 3}}
    assert prov["seed"] == {"entropy": [1, 2, 3], "spawn_key": [4]}
    assert prov["vaepipe_version"] == vaepipe.__version__
    assert isinstance(prov["git_commit"], str)
    assert "simd_level" not in prov  # every kernel gives the same bits: files must not depend on it
    # byte-identical output depends on these libraries' versions, so every file records them
    import h5py as h5py_module
    import scipy

    versions = prov["library_versions"]
    assert sorted(versions) == ["h5py", "keras", "numpy", "scipy", "tensorflow"]
    assert versions["numpy"] == np.__version__ and versions["scipy"] == scipy.__version__
    assert versions["h5py"] == h5py_module.__version__ and versions["keras"] and versions["tensorflow"]
    json.dumps(prov)


def test_git_commit_is_the_workflow_directorys(tmp_path, monkeypatch):
    # The Snakefile exports VAEPIPE_WORKFLOW_DIR: a job records the workflow's commit even when vaepipe is
    # installed away from it (site-packages); without it, the commit of the checkout holding the package.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false",
           "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "Snakefile").write_text("")
    subprocess.run([*git, "add", "Snakefile"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "workflow"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.delenv("VAEPIPE_WORKFLOW_DIR", raising=False)
    assert io.git_commit() == io.git_commit(str(Path(vaepipe.__file__).parent))
    monkeypatch.setenv("VAEPIPE_WORKFLOW_DIR", str(tmp_path))
    assert io.git_commit() == head


def test_summary_writes_nan_as_null_and_reads_both_spellings(tmp_path):
    """results/summary.json is strict JSON (NaN written as null, as every other JSON file of the pipeline), and
    the reader gives NaN back for null and for the bare NaN of files written before."""
    from vaepipe.io.summary import read_summary, write_summary

    path = write_summary(tmp_path / "summary.json", {"a.b": 1.5, "c.d": math.nan}, {"seed": 1, "x": math.nan})
    text = path.read_text()
    assert "NaN" not in text
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    assert data["c.d"] is None and data["a.b"] == 1.5 and data["provenance"]["x"] is None
    back = read_summary(path)
    assert back["a.b"] == 1.5 and math.isnan(back["c.d"])
    old = tmp_path / "old.json"
    old.write_text(text.replace("null", "NaN"))
    assert math.isnan(read_summary(old)["c.d"])
