"""Operations on a finished or killed pipeline, on the tiny config of test_workflow.py.

* A pipeline killed (SIGKILL of Snakemake and its jobs) in the middle of a sample job and again in the middle of a
  training job reruns to byte-identical results, and no file it leaves looks complete without being so.
* Dry runs after a change plan exactly the jobs that change touches, and nothing upstream of them.

Each test works in a copy of the workflow's sources (Snakefile, workflow/, cpp/, vaepipe/, ...), so that a source
edit changes the code digests of that copy only; the package that runs is the installed one either way (so the
Snakefile refuses to run a copy whose sources were edited, unless VAEPIPE_ALLOW_STALE_BUILD is set).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from conftest import checkout, snakemake_command
from test_workflow import FEATURIZED, REPRESENTATIONS, STATES, TINY, _planned_jobs
from vaepipe import io

REPO = Path(__file__).resolve().parents[2]
UPSTREAM_OF_TRAINING = {"preliminary", "sample", "density", "featurize"}


def _snakemake(workdir: Path, configfile: Path, *args: str) -> str:
    proc = subprocess.run(snakemake_command(workdir, configfile, *args), capture_output=True, text=True, timeout=900)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    return text


def _results(workdir: Path) -> dict[str, bytes]:
    """Every result file but the benchmarks (wall times), by path."""
    return {p.relative_to(workdir).as_posix(): p.read_bytes() for p in sorted((workdir / "results").rglob("*"))
            if p.is_file() and "benchmarks" not in p.relative_to(workdir).parts}


@pytest.fixture(scope="module")
def finished(tiny_finished):
    """A finished tiny run in its own copy of the sources: (workdir, configfile); shared with test_workflow."""
    return tiny_finished


# --------------------------------------------------------------------------- kill -9 and rerun


def _looks_complete_and_is(path: Path) -> None:
    """A finished-looking result file must read back whole."""
    rel = path.as_posix()
    if path.suffix == ".h5":
        if "/results/samples/" in rel:
            io.read_samples(path)
        elif "/results/features/" in rel:
            io.read_features(path)
        elif "/results/checkpoints/" in rel:
            io.read_checkpoint(path)
        else:
            import h5py

            with h5py.File(path, "r") as f:
                f.visititems(lambda name, obj: obj[()] if isinstance(obj, h5py.Dataset) else None)
    elif path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".parquet":
        if "/results/latent/" in rel:
            io.read_latent(path)
        else:
            import pyarrow.parquet as pq

            pq.read_table(path)
    elif path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
    elif path.suffix == ".png":
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and data[-12:-4] == b"\0\0\0\0IEND"
    elif path.suffix == ".csv":
        text = path.read_text()
        assert text.endswith("\n") and len(text.splitlines()) >= 2
    else:
        assert path.stat().st_size > 0


def _check_left_behind(workdir: Path) -> None:
    for path in sorted((workdir / "results").rglob("*")):
        if not path.is_file() or "benchmarks" in path.relative_to(workdir).parts:
            continue
        if path.name.startswith("."):
            # an atomic write that was killed: a hidden temporary name never taken for a result
            assert path.name.endswith(".tmp"), path
            continue
        try:
            _looks_complete_and_is(path)
        except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
            pytest.fail(f"{path} looks finished but does not read back: {exc}")


def _run_and_kill(workdir: Path, configfile: Path, ready, timeout: float = 600) -> bool:
    """Start Snakemake in its own process group, SIGKILL the whole group once ready() holds (True) or let it end
    (False, it finished first)."""
    proc = subprocess.Popen(snakemake_command(workdir, configfile), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and not ready():
            assert time.monotonic() < deadline, "the kill point never came"
            # A tiny sample job holds its checkpoint for about 10 ms (between its first report and the samples
            # file): poll often enough not to miss it.
            time.sleep(0.001)
        if proc.poll() is not None:
            return False
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        return True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)


def test_killed_pipeline_reruns_to_identical_results(finished, tmp_path):
    reference, _ = finished
    # Checkpoints as often as possible, so that a sample job is killed between two of them: the cadence is no
    # part of the results, so the files must still equal those of the reference run (default cadence).
    config = tmp_path / "tiny_checkpoints.yaml"
    old = "density_bins: 10}"
    assert old in TINY
    config.write_text(TINY.replace(old, "density_bins: 10, checkpoint_interval: 1.0e-9}"))
    work = checkout(tmp_path / "killed", origin=reference)  # the very sources of the reference run
    checkpoints = work / "results/checkpoints/sample"

    # 1. killed while a sample job runs: as soon as one has written a checkpoint
    killed = _run_and_kill(work, config, lambda: checkpoints.is_dir() and any(checkpoints.glob("*.h5")))
    assert killed, "the run ended before a sample job wrote a checkpoint"
    resumable = sorted(p.stem for p in checkpoints.glob("*.h5"))
    _check_left_behind(work)

    # 2. rerun (the lock of the killed run must be lifted first, as for a user), killed in a training job
    _snakemake(work, config, "--unlock")
    training_logs = work / "logs/train_vae"
    assert _run_and_kill(work, config, lambda: training_logs.is_dir() and any(training_logs.glob("*.log")))
    _check_left_behind(work)
    for state in resumable:
        # that sample job was rerun from its checkpoint, and the checkpoint removed once the samples were stored
        assert "resumed chain" in (work / f"logs/sample/{state}.log").read_text(), state
        assert not (checkpoints / f"{state}.h5").exists()

    # 3. rerun to the end: every result equals the uninterrupted run's, byte for byte
    _snakemake(work, config, "--unlock")
    _snakemake(work, config)
    ours, theirs = _results(work), _results(reference)
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []
    leftovers = [p for p in (work / "results").rglob("*") if p.is_file() and p.name.startswith(".")]
    assert leftovers == []  # the reruns cleared the temporaries of the killed writes
    assert "Nothing to be done" in _snakemake(work, config, "-n")


# --------------------------------------------------------------------------- what a change reruns (dry runs)


def _plan(workdir: Path, configfile: Path, *args: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job of a dry run."""
    text = _snakemake(workdir, configfile, "-n", *args)
    if "Nothing to be done" in text:
        return []
    jobs, rule = [], None
    for line in text.splitlines():
        match = re.match(r"(?:local)?rule (\w+):$", line.strip())
        if match:
            rule = match.group(1)
            jobs.append((rule, ""))
        elif rule and line.strip().startswith("wildcards:"):
            jobs[-1] = (rule, line.strip().removeprefix("wildcards:").strip())
        elif not line.strip():
            rule = None
    assert _rules(jobs) == {r: n for r, n in _planned_jobs(text).items() if r != "total"}, text[-3000:]
    return jobs


def _rules(jobs) -> dict[str, int]:
    counts = {}
    for rule, _ in jobs:
        counts[rule] = counts.get(rule, 0) + 1
    return counts


def _changed(finished, name: str, old: str, new: str) -> Path:
    work, config = finished
    assert old in TINY, old
    path = config.parent / name
    path.write_text(TINY.replace(old, new))
    return path


@pytest.fixture(scope="module")
def downstream_of_training(finished):
    """The plan of retraining every model: train_vae and everything that depends on a model."""
    work, config = finished
    return _rules(_plan(work, config, "--forcerun", "train_vae"))


def test_nothing_changed_nothing_to_do(finished):
    work, config = finished
    assert _plan(work, config) == []


def test_checkpoint_interval_reruns_nothing(finished):
    # the cadence of the sample jobs' checkpoints changes no result, so it is no rerun trigger
    config = _changed(finished, "interval.yaml", "density_bins: 10}", "density_bins: 10, checkpoint_interval: 7}")
    assert _plan(finished[0], config) == []


def test_beta_of_every_model_retrains_and_reruns_only_downstream(finished, downstream_of_training):
    text = TINY
    for representation in REPRESENTATIONS:
        text = text.replace(f"  {representation}: {{", f"  {representation}: {{beta: 0.5, ")
    assert text.count("beta: 0.5") == len(REPRESENTATIONS)
    config = finished[1].parent / "beta_all.yaml"
    config.write_text(text)
    jobs = _rules(_plan(finished[0], config))
    assert jobs["train_vae"] == jobs["encode"] == len(REPRESENTATIONS)
    assert not UPSTREAM_OF_TRAINING & set(jobs)
    assert jobs == downstream_of_training  # every model changed: exactly retraining and what depends on it


def test_beta_of_one_model_leaves_the_others(finished, downstream_of_training):
    config = _changed(finished, "beta_voxel.yaml", "  voxel: {", "  voxel: {beta: 0.5, ")
    jobs = _plan(finished[0], config)
    counts = _rules(jobs)
    assert counts["train_vae"] == counts["encode"] == 1
    assert ("train_vae", "representation=voxel") in jobs
    assert set(counts) <= set(downstream_of_training) and not UPSTREAM_OF_TRAINING & set(counts)
    # downstream jobs of one representation only (a job across representations may rerun, once)
    for rule, wildcards in jobs:
        assert "representation=" not in wildcards or wildcards.startswith("representation=voxel"), (rule, wildcards)


def test_a_new_state_point_samples_only_itself(finished, downstream_of_training):
    config = _changed(finished, "gamma.yaml", "gamma: [0.0, 1.0]", "gamma: [0.0, 0.5, 1.0]")
    jobs = _plan(finished[0], config)
    counts = _rules(jobs)
    assert counts["preliminary"] == counts["sample"] == counts["density"] == 1
    assert counts["featurize"] == len(FEATURIZED)
    for rule, wildcards in jobs:
        if rule in UPSTREAM_OF_TRAINING:
            assert wildcards.endswith("state=gamma0.5_T1"), (rule, wildcards)  # no other state point resampled
    assert counts["train_vae"] == counts["encode"] == len(REPRESENTATIONS)
    # the minimization's stages on the samples' side: the new state point's quench and reference minimum, and the
    # functional, whose training densities changed; no other state point is quenched or searched again
    minimization = {"quench", "reference_minimum", "train_functional"}
    assert counts["quench"] == counts["reference_minimum"] == counts["train_functional"] == 1
    for rule, wildcards in jobs:
        if rule in {"quench", "reference_minimum"}:
            assert wildcards.endswith("state=gamma0.5_T1"), (rule, wildcards)
    assert set(counts) - UPSTREAM_OF_TRAINING - minimization <= set(downstream_of_training)


def test_editing_the_sampler_source_reruns_everything_from_sampling_on(finished, tmp_path, monkeypatch):
    work, config = finished
    copy = tmp_path / "edited"
    shutil.copytree(work, copy, symlinks=True)  # copy2 keeps the modification times that Snakemake compares
    assert _plan(copy, config) == []
    source = copy / "cpp/core/Sampler.cc"
    source.write_text(source.read_text() + "\n// an edit that Snakemake cannot see by itself\n")
    # The installed extension was built from the unedited sources, so the Snakefile refuses to run its jobs...
    proc = subprocess.run(snakemake_command(copy, config, "-n"), capture_output=True, text=True, timeout=900)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "built from other C++ sources" in text, text[-3000:]
    # ... but a plan is all this test needs.
    monkeypatch.setenv("VAEPIPE_ALLOW_STALE_BUILD", "1")
    jobs = _rules(_plan(copy, config))
    sampled = list((work / "results/samples").glob("*.h5"))  # the config's state points (held-out ones too)
    assert len(sampled) >= len(STATES)
    assert jobs["preliminary"] == jobs["sample"] == jobs["density"] == len(sampled)
    assert jobs["featurize"] == len(sampled) * len(FEATURIZED)
    assert jobs["train_vae"] == jobs["encode"] == len(REPRESENTATIONS)
    assert jobs == _rules(_plan(copy, config, "--forceall"))  # the sampler feeds every stage
