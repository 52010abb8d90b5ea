"""Fixtures shared by several test modules: one finished run of the tiny workflow config (tests/data/tiny.yaml), in
a copy of the workflow's sources, made once per test session (a run costs minutes on 2 cores)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
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
