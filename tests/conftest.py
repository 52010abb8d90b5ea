"""Fixtures shared by several test modules: one finished run of the tiny workflow config (tests/data/tiny.yaml), in
a copy of the workflow's sources, made once per test session (a run costs minutes on 2 cores); and the demo run
of tests/workflow/test_quality.py, started behind the other tests (below)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy  # noqa: F401 - NumPy's and SciPy's OpenBLAS (each its own) are loaded first, so that the BLAS
import pytest
import scipy.linalg  # noqa: F401 - limit below reaches both (threadpoolctl limits only loaded libraries)
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]

# The tests compute on small arrays, where OpenBLAS's extra threads only spin. Beside the demo and the SLURM run in
# the background (below) they made the LJ30 basin-hopping test 16 times slower (689 s against 43 s). Jobs cap their
# BLAS at their rule's threads (vaepipe.stages.run); the tests' own process runs at one.
_BLAS_LIMIT = threadpool_limits(limits=1, user_api="blas")
# What a copy of the workflow needs. config.yaml stays out: like every test run, the copy runs only on the
# schema's defaults plus the --configfile given.
SOURCES = ("Snakefile", "environment.yml", "CMakeLists.txt", "workflow", "cpp", "vaepipe", "profiles")


def checkout(dest: Path, origin: Path = REPO) -> Path:
    """A copy of the workflow's sources (those of `origin`, by default the repository) at `dest`, so that a test
    can edit a source and change the code digests of that copy only (the package that runs is the installed one
    either way)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so")
    for name in SOURCES:
        src = origin / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake_command(workdir: Path, configfile: Path, *args: str) -> list[str]:
    """Snakemake on the copy at `workdir` (its own Snakefile, so the workflow profile next to it applies)."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(workdir / "Snakefile"), "--directory",
            str(workdir), "--configfile", str(configfile), "--cores", "2", *args]


@pytest.fixture(scope="session")
def tiny_finished(tmp_path_factory):
    """A finished run of the tiny config in its own copy of the sources: (workdir, configfile)."""
    base = tmp_path_factory.mktemp("tiny")
    config = base / "tiny.yaml"
    config.write_text((Path(__file__).parent / "data" / "tiny.yaml").read_text())
    work = checkout(base / "finished")
    proc = subprocess.run(snakemake_command(work, config), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return work, config


# --------------------------------------------------------------------------- the demo, behind the other tests

# The demo (tests/workflow/test_quality.py: the default config.yaml, every stage) takes most of the suite's time,
# and most of the other tests use one core, or none while they wait for SLURM. So when test_quality is among the
# tests to run, the demo starts in the background as soon as collection ends, and its fixture waits for it: the
# same run, the same checks, on cores the other tests leave idle. The SLURM pipeline test starts the same way.
# (Nothing is timed in the tests, and no test edits the checkout the demo runs: they edit copies.)
DEMO_TIMEOUT_S = 3600
_DEMO: dict = {}


def demo_command(work: Path) -> list[str]:
    """`snakemake --cores 2` on the default config.yaml, results in `work`."""
    return [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
            "--configfile", str(REPO / "config.yaml"), "--cores", "2"]


def _start_demo(base: Path) -> None:
    work = base / "demo"
    work.mkdir(parents=True)
    log = base / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(demo_command(work), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _DEMO.update(proc=proc, work=work, log=log, start=time.monotonic())


# Test modules whose slow fixture also starts at collection: their start_in_background(base) and
# stop_in_background() (tests/workflow/test_slurm.py: the pipeline through SLURM, mostly waiting on the scheduler).
_BACKGROUND_MODULES: list = []


def pytest_collection_modifyitems(session, config, items):
    """The demo's tests last: every other test, the SLURM ones included, runs while the demo finishes."""
    items.sort(key=lambda item: Path(str(item.fspath)).name == "test_quality.py")


def pytest_collection_finish(session):
    if session.config.option.collectonly or _DEMO:
        return
    factory = getattr(session.config, "_tmp_path_factory", None)

    def base(name: str) -> Path:
        return factory.mktemp(name) if factory is not None else Path(tempfile.mkdtemp(prefix=f"vaepipe-{name}-"))

    modules = {}
    for item in session.items:
        modules.setdefault(Path(str(item.fspath)).name, getattr(item, "module", None))
    if "test_quality.py" in modules:
        _start_demo(base("demo_run"))
    for name, module in modules.items():
        if hasattr(module, "start_in_background"):
            module.start_in_background(base(name.removesuffix(".py")))
            _BACKGROUND_MODULES.append(module)


def pytest_sessionfinish(session):
    proc = _DEMO.get("proc")
    if proc is not None and proc.poll() is None:  # interrupted before test_quality waited for it
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    for module in _BACKGROUND_MODULES:
        module.stop_in_background()


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The working directory of a finished demo run (started in the background at collection, or now)."""
    if not _DEMO:
        _start_demo(tmp_path_factory.mktemp("demo_run"))
    proc = _DEMO["proc"]
    try:
        proc.wait(timeout=max(1.0, DEMO_TIMEOUT_S - (time.monotonic() - _DEMO["start"])))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        pytest.fail(f"the demo ran past {DEMO_TIMEOUT_S} s; log {_DEMO['log']}")
    text = _DEMO["log"].read_text()
    assert proc.returncode == 0, f"the demo failed (exit {proc.returncode}; log {_DEMO['log']}):\n{text[-5000:]}"
    print(f"demo: {time.monotonic() - _DEMO['start']:.0f} s after its start; log {_DEMO['log']}")
    return _DEMO["work"]
