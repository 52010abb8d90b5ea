"""Checkpointed sampling: an interrupted run, resumed, is bitwise the uninterrupted one.

The in-process tests stop a run from the checkpoint callback; the kill test SIGKILLs the sample rule's own script
(run with a stand-in for Snakemake's ``snakemake`` object) and reruns it.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vaepipe import io, sampling
from vaepipe.mc import Sampler
from vaepipe.seeds import derive_seed

REPO = Path(__file__).resolve().parents[2]
SYSTEM = {"n_particles": 20, "box_length": 4.5, "dim": 3, "boundary": "reflect", "cutoff": None,
          "tail_correction": False}
STATE = {"gamma": 0.5, "temperature": 1.0}
PRELIMINARY = {"gamma": 0.5, "temperature": 1.0, "step_size": 0.3, "equilibration_sweeps": 50,
               "decorrelation_sweeps": 1000}
SETTINGS = {"continuous": {"mode": "continuous", "chains": 2, "samples_per_chain": 40, "equilibration_factor": 2.0,
                           "min_equilibration_sweeps": 1000},
            "restart": {"mode": "restart", "chains": 2, "samples_per_chain": 40, "equilibration_factor": 2.0,
                        "min_equilibration_sweeps": 1000}}
SEED = derive_seed(5, "sample", "gamma0.5_T1")


class Interrupted(Exception):
    pass


def _run(mode, seed=SEED, settings=None, **kwargs):
    return sampling.run_sampling(SYSTEM, STATE, settings or SETTINGS[mode], PRELIMINARY, seed, threads=2,
                                 state="gamma0.5_T1", progress=False, **kwargs)


def _same(a, b) -> bool:
    return (a.positions.tobytes() == b.positions.tobytes() and a.energy.tobytes() == b.energy.tobytes()
            and a.chain.tobytes() == b.chain.tobytes() and a.attrs == b.attrs)


@pytest.fixture(scope="module")
def uninterrupted():
    return {mode: _run(mode) for mode in SETTINGS}


@pytest.fixture
def small_chunks(monkeypatch):
    # Many reports per chain (mid-burn-in ones too: 400-sweep chunks of a 1000-sweep burn-in), so that an
    # interruption lands at many different points of the chains.
    monkeypatch.setattr(sampling, "_REPORT_MOVES", 8000)


# --------------------------------------------------------------------------- chunking does not touch the stream


def test_split_calls_continue_the_same_stream():
    whole = Sampler(**SYSTEM, **STATE, seed=3, step_size=0.3)
    split = Sampler(**SYSTEM, **STATE, seed=3, step_size=0.3)
    whole.run(70)
    split.run(30).run(40)
    p, e = whole.sample(25, 7)
    p1, e1 = split.sample(9, 7)
    p2, e2 = split.sample(16, 7)
    assert np.concatenate([p1, p2]).tobytes() == p.tobytes()
    assert np.concatenate([e1, e2]).tobytes() == e.tobytes()
    assert split.get_state()["rng_state"].tobytes() == whole.get_state()["rng_state"].tobytes()


@pytest.mark.parametrize("mode", list(SETTINGS))
def test_result_does_not_depend_on_the_chunk_size(mode, uninterrupted, small_chunks):
    assert _same(_run(mode), uninterrupted[mode])


# --------------------------------------------------------------------------- interrupted and resumed in process


@pytest.mark.parametrize("mode", list(SETTINGS))
@pytest.mark.parametrize("stop_at", [1, 5])
def test_interrupted_run_resumes_bit_for_bit(mode, stop_at, uninterrupted, small_chunks, tmp_path, capsys):
    path = tmp_path / "checkpoints" / "gamma0.5_T1.h5"
    calls = []

    def interrupt(stored):
        calls.append(stored)
        if len(calls) == stop_at:
            raise Interrupted

    # a vanishing interval: a checkpoint after nearly every report of a chain
    with pytest.raises(Interrupted):
        _run(mode, checkpoint=path, checkpoint_interval=1e-9, code="abc", on_checkpoint=interrupt)
    fingerprint, chains, attrs = io.read_checkpoint(path)
    total = SETTINGS[mode]["chains"] * SETTINGS[mode]["samples_per_chain"]
    stored = sum(c.num_samples for c in chains if c is not None)
    assert stored < total and any(c is not None for c in chains)
    assert attrs["state"] == "gamma0.5_T1" and fingerprint == sampling.sampling_fingerprint(
        SYSTEM, STATE, SETTINGS[mode], PRELIMINARY, SEED, "abc")
    capsys.readouterr()

    resumed = _run(mode, checkpoint=path, checkpoint_interval=0, code="abc")
    assert _same(resumed, uninterrupted[mode])
    log = capsys.readouterr().err
    started = [i for i, c in enumerate(chains) if c is not None]
    for i in started:
        assert f"resumed chain {i} at sample {chains[i].num_samples} of 40" in log
    assert path.is_file()  # removing it is the caller's job, once the samples are stored


def test_a_checkpoint_of_another_run_is_ignored(uninterrupted, small_chunks, tmp_path, capsys):
    path = tmp_path / "gamma0.5_T1.h5"
    other = {**SETTINGS["continuous"], "samples_per_chain": 41}

    def interrupt(stored):
        raise Interrupted

    with pytest.raises(Interrupted):
        _run("continuous", settings=other, checkpoint=path, checkpoint_interval=1e-9, on_checkpoint=interrupt)
    assert path.is_file()
    capsys.readouterr()
    # another setting, another seed, other code: each starts afresh and still gives the right samples
    for kwargs in ({}, {"code": "edited"}):
        assert _same(_run("continuous", checkpoint=path, checkpoint_interval=0, **kwargs), uninterrupted["continuous"])
        assert "ignoring checkpoint" in capsys.readouterr().err
    with pytest.raises(Interrupted):
        _run("continuous", seed=derive_seed(6, "sample", "gamma0.5_T1"), checkpoint=path, checkpoint_interval=1e-9,
             on_checkpoint=interrupt)
    capsys.readouterr()
    assert _same(_run("continuous", checkpoint=path, checkpoint_interval=0), uninterrupted["continuous"])
    assert "ignoring checkpoint" in capsys.readouterr().err


def test_an_unreadable_checkpoint_is_ignored(uninterrupted, tmp_path, capsys):
    path = tmp_path / "gamma0.5_T1.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # an HDF5 signature, then nothing
    assert _same(_run("restart", checkpoint=path, checkpoint_interval=0), uninterrupted["restart"])
    assert "ignoring checkpoint" in capsys.readouterr().err


def test_checkpoint_round_trip(tmp_path):
    sampler = Sampler(**SYSTEM, **STATE, seed=1, step_size=0.3)
    sampler.run(10)
    state = sampler.get_state()
    chain = io.ChainCheckpoint(state=state, positions=np.zeros((3, 20, 3)), energy=np.arange(3.0), burn_in_done=7)
    path = io.write_checkpoint(tmp_path / "c.h5", "f" * 64, [None, chain], {"state": "x"})
    fingerprint, chains, attrs = io.read_checkpoint(path)
    assert fingerprint == "f" * 64 and chains[0] is None and attrs["num_chains"] == 2
    back = chains[1]
    assert back.burn_in_done == 7 and back.num_samples == 3 and back.energy.tolist() == [0.0, 1.0, 2.0]
    for key in ("raw_energy", "energy", "step_size", "attempted", "accepted"):
        assert back.state[key] == state[key], key
    assert back.state["rng_state"].tobytes() == state["rng_state"].tobytes()
    assert back.state["positions"].tobytes() == state["positions"].tobytes()
    resumed = Sampler(**SYSTEM, **STATE, seed=2, step_size=0.1).set_state(back.state)
    assert resumed.run(5).positions.tobytes() == sampler.run(5).positions.tobytes()
    io.remove_checkpoint(path)
    io.remove_checkpoint(path)  # a second time: nothing to do, no error
    assert not path.exists()


def test_leftover_temporaries_of_killed_writes_are_cleared(tmp_path):
    # SIGKILL runs no cleanup: the hidden temporary of a write stays until the next write of the same file
    checkpoint = tmp_path / "gamma0.5_T1.h5"
    for name in (".gamma0.5_T1.h5.abc123.tmp", ".samples.h5.def456.tmp", ".gamma0.5_T1.h5x.abc.tmp"):
        (tmp_path / name).write_bytes(b"partial")
    io.remove_checkpoint(checkpoint)
    io.write_json(tmp_path / "samples.h5", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gamma0.5_T1.h5x.abc.tmp", "samples.h5"]


# --------------------------------------------------------------------------- SIGKILL of the sample script

# The sample rule's script, run with a stand-in for Snakemake's `snakemake` object.
DRIVER = """\
import json, runpy, sys
from types import SimpleNamespace
a = json.load(open(sys.argv[1]))
snakemake = SimpleNamespace(log=[a["log"]], params=a["params"], wildcards=SimpleNamespace(state=a["state"]),
                            input=SimpleNamespace(preliminary=a["preliminary"]),
                            output=SimpleNamespace(samples=a["samples"]), threads=2)
runpy.run_path(a["script"], init_globals={"snakemake": snakemake}, run_name="__main__")
"""
KILL_SYSTEM = {**SYSTEM, "n_particles": 30, "box_length": 5.0}
# about 50 million trial moves: several seconds, of which the kill takes the first fraction
KILL_SETTINGS = {"mode": "continuous", "chains": 2, "samples_per_chain": 200, "equilibration_factor": 2.0,
                 "min_equilibration_sweeps": 100}
KILL_DECORRELATION = 4000


def _job(workdir: Path, preliminary: Path, interval: float) -> list[str]:
    workdir.mkdir()
    args = {
        "log": str(workdir / "sample.log"),
        "params": {"seed": 5, "system": KILL_SYSTEM, "state_point": STATE, "sampling": KILL_SETTINGS,
                   "code": "digest", "checkpoint": {"path": "results/checkpoints/sample/gamma0.5_T1.h5",
                                                    "interval": interval}},
        "state": "gamma0.5_T1",
        "preliminary": str(preliminary),
        "samples": "results/samples/gamma0.5_T1.h5",
        "script": str(REPO / "workflow/scripts/sample.py"),
    }
    (workdir / "args.json").write_text(json.dumps(args))
    (workdir / "driver.py").write_text(DRIVER)
    return [sys.executable, "driver.py", "args.json"]


@pytest.fixture(scope="module")
def kill_preliminary(tmp_path_factory):
    """A preliminary summary as the preliminary rule writes it; only step size and times matter to sampling."""
    summary = {"state": "gamma0.5_T1", **STATE, "step_size": 0.3, "acceptance_rate": 0.4, "tune_sweeps": 200,
               "trace_sweeps": 4000, "equilibration_sweeps": 50, "decorrelation_sweeps": KILL_DECORRELATION,
               "tau_int": 1.0, "statistical_inefficiency": 3.0, "n_eff": 1000.0, "energy_mean": -1.0,
               "energy_sem": 0.1, "observables": {}, "provenance": {}}
    return io.write_preliminary(tmp_path_factory.mktemp("prelim") / "gamma0.5_T1.json", summary)


@pytest.fixture(scope="module")
def kill_reference(kill_preliminary, tmp_path_factory):
    """The samples file of an uninterrupted run of the job (no checkpoints)."""
    reference = tmp_path_factory.mktemp("kill") / "reference"
    subprocess.run(_job(reference, kill_preliminary, 0), cwd=reference, check=True, timeout=300)
    return reference / "results/samples/gamma0.5_T1.h5"


def _rerun_and_compare(cmd, work: Path, reference: Path) -> None:
    subprocess.run(cmd, cwd=work, check=True, timeout=300)
    assert "resumed chain" in (work / "sample.log").read_text()
    assert not (work / "results/checkpoints/sample/gamma0.5_T1.h5").exists()
    assert [p.name for p in (work / "results").rglob(".*")] == []  # no temporary left behind
    ours = io.read_samples(work / "results/samples/gamma0.5_T1.h5")
    theirs = io.read_samples(reference)
    assert ours.positions.tobytes() == theirs.positions.tobytes() and ours.energy.tobytes() == theirs.energy.tobytes()
    assert ours.chain.tobytes() == theirs.chain.tobytes()
    # the whole file: same content, same bytes (the checkpoint setting is not part of the provenance)
    assert (work / "results/samples/gamma0.5_T1.h5").read_bytes() == reference.read_bytes()


def test_killed_sample_job_reruns_to_the_same_file(kill_preliminary, kill_reference, tmp_path):
    work = tmp_path / "killed"
    cmd = _job(work, kill_preliminary, 0.2)
    checkpoint = work / "results/checkpoints/sample/gamma0.5_T1.h5"
    proc = subprocess.Popen(cmd, cwd=work, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert checkpoint.is_file(), "no checkpoint appeared"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (work / "results/samples/gamma0.5_T1.h5").exists(), "the run finished before the kill"
    partial = io.read_checkpoint(checkpoint)[1]
    assert sum(c.num_samples for c in partial if c is not None) < 400
    _rerun_and_compare(cmd, work, kill_reference)


def test_terminated_sample_job_writes_a_last_checkpoint(kill_preliminary, kill_reference, tmp_path):
    work = tmp_path / "terminated"
    cmd = _job(work, kill_preliminary, 1000)  # no periodic checkpoint before the signal
    checkpoint = work / "results/checkpoints/sample/gamma0.5_T1.h5"
    proc = subprocess.Popen(cmd, cwd=work)
    try:
        deadline = time.monotonic() + 120
        log = work / "sample.log"
        while proc.poll() is None and time.monotonic() < deadline and (
                not log.is_file() or "chains x" not in log.read_text()):
            time.sleep(0.02)
        time.sleep(1.0)  # the chains report a few times
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert not (work / "results/samples/gamma0.5_T1.h5").exists()
    assert checkpoint.is_file(), "SIGTERM left no checkpoint"
    _rerun_and_compare(cmd, work, kill_reference)
