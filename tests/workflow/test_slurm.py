"""profiles/slurm against a real SLURM: the whole default pipeline, every job through sbatch, on a single-node
cluster started on this machine by tests/workflow/cluster/slurm_localhost.sh (root, Debian packages slurm-wlm and munge).

Skipped where SLURM is not installed, unless VAEPIPE_REQUIRE_SLURM is set (CI sets it after installing SLURM):
then anything missing is a failure. Only test-only settings are added to the profile, on the command line:
squeue instead of sacct for job status (no accounting database here), short waits, and --cores = this machine's
cores so that group jobs fit the single node.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from test_workflow import FEATURIZED, REPRESENTATIONS, STATES, TINY, _planned_jobs

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO / "tests" / "workflow" / "cluster" / "slurm_localhost.sh"
# Snakemake is interrupted (SIGINT, the signal it obeys while jobs run) after this, killed 60 s later. The run
# shares the machine with the demo and the other tests (it starts in the background, below): generous.
LIMIT_S = 2700
REQUIRED = os.environ.get("VAEPIPE_REQUIRE_SLURM", "") not in ("", "0")


def _missing() -> list[str]:
    missing = [exe for exe in ("sbatch", "squeue", "sinfo", "scontrol", "munge") if shutil.which(exe) is None]
    missing += [exe for exe in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged")
                if not os.access(exe, os.X_OK)]
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        missing.append("the Python package snakemake-executor-plugin-slurm")
    if os.geteuid() != 0:
        missing.append("root (the test starts munged, slurmctld and slurmd)")
    return missing


def _start_cluster(state: Path) -> str | None:
    """Start the single-node cluster with its state in `state`; None, or what went wrong."""
    proc = subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(state)], capture_output=True, text=True,
                          timeout=120)
    return None if proc.returncode == 0 else f"starting SLURM failed:\n{proc.stdout}{proc.stderr}"


def _stop_cluster(state: Path) -> None:
    subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(state)], capture_output=True, text=True, timeout=60)


# The pipeline through SLURM spends most of its time waiting (queue, job start-up, status polls), so
# tests/conftest.py starts it in the background as soon as collection ends, beside the demo and the other tests:
# start_in_background() starts the cluster and the run, the fixtures below wait for them.
_BACKGROUND: dict = {}


def start_in_background(base: Path) -> None:
    """Start the cluster and the pipeline run behind the other tests (nothing when SLURM is missing: the fixtures
    then skip, or fail under VAEPIPE_REQUIRE_SLURM, as before)."""
    if _missing() or _BACKGROUND:
        return
    state = base / "cluster"
    state.mkdir(parents=True)
    _BACKGROUND["cluster"] = state
    _BACKGROUND["error"] = _start_cluster(state)
    if _BACKGROUND["error"] is None:
        _BACKGROUND["run"] = _launch(base / "run")


def stop_in_background() -> None:
    """End what start_in_background() started and the fixtures did not (an interrupted session)."""
    launched = _BACKGROUND.pop("run", None)
    if launched is not None and launched["proc"].poll() is None:
        launched["proc"].kill()
        launched["proc"].wait(timeout=60)
    state = _BACKGROUND.pop("cluster", None)
    if state is not None:
        _stop_cluster(state)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = _missing()
    if missing:
        message = (f"SLURM test needs: {', '.join(missing)}; install with "
                   "apt-get install -y --no-install-recommends slurm-wlm munge && pip install -e .")
        if REQUIRED:
            pytest.fail(f"VAEPIPE_REQUIRE_SLURM is set but {message}")
        pytest.skip(message)
    state = _BACKGROUND.pop("cluster", None)
    error = _BACKGROUND.pop("error", None)
    if state is None:
        state = tmp_path_factory.mktemp("slurm")
        error = _start_cluster(state)
    try:
        if error is not None:
            pytest.fail(error)
        yield state
    finally:
        _stop_cluster(state)


def _through_profile(work: Path, *configfiles: Path) -> list[str]:
    """Snakemake on `work` through profiles/slurm, with the test-only settings: no sacct without an accounting
    database (status checks by squeue, 3 x 5 s stays below MinJobAge); the node has all of this machine's CPUs,
    so no job or group job may ask for more. (--slurm-keep-successful-logs keeps the SLURM logs, which show what
    ran inside each job.)"""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--configfile", *map(str, configfiles), "--profile", str(REPO / "profiles" / "slurm"),
            "--workflow-profile", "none", "--slurm-status-command", "squeue", "--latency-wait", "10",
            "--cores", str(len(os.sched_getaffinity(0)))]


def _launch(base: Path) -> dict:
    """Start the default pipeline on the tiny config through profiles/slurm, in `base`."""
    base.mkdir(parents=True, exist_ok=True)
    config = base / "tiny.yaml"
    config.write_text(TINY)
    # One thread per learning job (the default): two of them fit the 2-CPU test node side by side.
    one_thread = base / "one_thread.yaml"
    one_thread.write_text("vae: {threads: 1}\n")
    work = base / "work"
    cmd = ["timeout", "-s", "INT", "-k", "60", str(LIMIT_S), *_through_profile(work, config, one_thread),
           "--slurm-init-seconds-before-status-checks", "5", "--slurm-keep-successful-logs"]
    log = base / "snakemake.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=base, stdout=out, stderr=subprocess.STDOUT)
    return {"proc": proc, "work": work, "log": log, "start": time.monotonic()}


@pytest.fixture(scope="module")
def run(cluster, tmp_path_factory):
    """The default pipeline on the tiny config, submitted through profiles/slurm: (workdir, log, exit status, s).
    Started in the background at collection (start_in_background), or now."""
    launched = _BACKGROUND.pop("run", None) or _launch(tmp_path_factory.mktemp("slurm_run"))
    proc = launched["proc"]
    try:
        proc.wait(timeout=max(1.0, LIMIT_S + 120 - (time.monotonic() - launched["start"])))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=60)
    seconds = time.monotonic() - launched["start"]
    log = launched["log"].read_text()
    print(f"SLURM pipeline: exit {proc.returncode} after {seconds:.0f} s; log {launched['log']}")
    return launched["work"], log, proc.returncode, seconds


def _slurm_jobs(name: str) -> dict[str, str]:
    """{job id: state} of every job of this name that slurmctld still remembers (MinJobAge)."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--name", name, "--format", "%i %T"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def _jobs_run_inside(slurm_log: Path) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job that ran inside one SLURM job.

    The log holds two Snakemake levels: the job's own ("rule X:", it hands each job to srun) and the one that
    srun starts, which executes it ("localrule X:"). The latter proves the job ran."""
    jobs = []
    for block in re.split(r"\n(?=localrule \w+:)", slurm_log.read_text()):
        m = re.match(r"localrule (\w+):", block)
        if m:
            wildcards = re.search(r"^\s+wildcards: (.*)$", block, re.M)
            jobs.append((m.group(1), wildcards.group(1) if wildcards else ""))
    return jobs


def test_pipeline_finishes_through_slurm(run):
    work, log, returncode, seconds = run
    assert returncode == 0, f"snakemake exited {returncode} after {seconds:.0f} s:\n{log[-8000:]}"
    for state in STATES:
        assert (work / f"results/samples/{state}.h5").is_file()
    for representation in REPRESENTATIONS:
        assert (work / f"results/latent/{representation}.parquet").is_file()


def test_every_job_ran_in_a_completed_slurm_job(run):
    work, log, returncode, _ = run
    assert returncode == 0, log[-3000:]
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert submitted and len(set(submitted)) == len(submitted)
    # SLURM knows exactly these jobs under this run's name, and each of them completed
    assert _slurm_jobs(run_id) == {job_id: "COMPLETED" for job_id in submitted}
    # every job Snakemake planned (but the target rule `all`, which runs locally) ran inside one of them
    logs = {p.stem: p for p in (work / ".snakemake" / "slurm_logs").rglob("*.log")}
    assert sorted(logs) == sorted(submitted)
    inside = Counter(rule for p in logs.values() for rule, _ in _jobs_run_inside(p))
    planned = _planned_jobs(log)
    planned.pop("all")
    planned.pop("total")
    assert planned and dict(inside) == planned


def test_profile_groups_and_no_gpu_unless_the_config_asks(run):
    """The profile's batching: one SLURM job per state point for its preliminary and production runs, one for all
    density figures and features, each training alone, one for all steps that read the models, one for all
    quenches, one for the summary and the export. The test node has
    no GPU and the tiny config asks for none (vae.gpus: 0): no job requests one."""
    work, log, returncode, _ = run
    assert returncode == 0, log[-3000:]
    by_job = {p.stem: _jobs_run_inside(p) for p in (work / ".snakemake" / "slurm_logs").rglob("*.log")}

    def holding(rules):
        return {job for job, jobs in by_job.items() if any(rule in rules for rule, _ in jobs)}

    for state in STATES:
        jobs = [job for job, inside in by_job.items() if ("preliminary", f"state={state}") in inside]
        assert len(jobs) == 1
        assert sorted(by_job[jobs[0]]) == [("preliminary", f"state={state}"), ("sample", f"state={state}")]
    postprocess = holding({"density", "featurize"})
    assert len(postprocess) == 1
    assert len(by_job[postprocess.pop()]) == len(STATES) * (1 + len(FEATURIZED))
    training = holding({"train_vae"})
    assert len(training) == len(REPRESENTATIONS)
    for job in training:
        assert len(by_job[job]) == 1
        details = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
        assert "gpu" not in details.lower(), details
    model_use = holding({"encode", "anomaly", "latent_analysis"})
    assert len(model_use) == 1
    assert Counter(rule for rule, _ in by_job[model_use.pop()])["encode"] == len(REPRESENTATIONS)
    # the quenches of every state point: one job; the functional trains alone, like a VAE
    minima = holding({"quench"})
    assert len(minima) == 1 and len(by_job[next(iter(minima))]) == len(STATES)
    assert [len(by_job[job]) for job in holding({"train_functional"})] == [1]
    # the summary and the extxyz export: one job at the end
    finish = holding({"summary", "export"})
    assert len(finish) == 1 and sorted(rule for rule, _ in by_job[finish.pop()]) == ["export", "summary"]


def test_gpus_follow_the_config(run, tmp_path):
    """vae.gpus: 1 makes every training job ask sbatch for --gpus=1 (config/paper.yaml does), which this GPU-less
    node refuses: the request comes from the config, and the profile forces none."""
    work, log, returncode, _ = run
    assert returncode == 0, log[-3000:]
    config, gpus = tmp_path / "tiny.yaml", tmp_path / "gpus.yaml"
    config.write_text(TINY)
    gpus.write_text("vae: {threads: 1, gpus: 1}\n")
    cmd = [*_through_profile(work, config, gpus), "--forcerun", "train_vae", "--until", "train_vae"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text[-3000:]
    # SLURM's words for a GPU request on a cluster without GPUs
    refused = r"(?i)invalid generic resource|requested node configuration is not available"
    assert re.search(r"sbatch .*--gpus=1", text) and re.search(refused, text), text[-3000:]
