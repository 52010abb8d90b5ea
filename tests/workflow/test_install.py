"""The non-editable install mode: a wheel of this checkout, installed in a virtual environment of its own.

The editable mode is what the rest of the suite (and CI, `.ci/run`) runs. A wheel is a copy of the package in
site-packages, away from the workflow's checkout: its schema must come with it, provenance must still record the
checkout's commit, and the Snakefile must refuse to run jobs whose installed code is not the checkout's (their
code digests come from the checkout).

Cost, kept small for CI: the wheel is built without build isolation in the editable install's CMake directory
(build/{wheel_tag}, so only changed objects recompile), and the venv reuses the installed dependencies through a
.pth file naming their site-packages: a directory added that way has its own .pth files left unexecuted, so the
editable install's import hook stays out and `import vaepipe` finds the wheel's copy.
"""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import checkout, snakemake_command
from test_workflow import TINY
from vaepipe import _build

REPO = Path(__file__).resolve().parents[2]
GIT = ["git", "-c", "user.name=vaepipe tests", "-c", "user.email=tests@vaepipe.invalid", "-c", "commit.gpgsign=false"]


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, f"{cmd} failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """A venv with the wheel of this checkout installed (and nothing else of vaepipe): its python."""
    base = tmp_path_factory.mktemp("install")
    _run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "--no-cache-dir",
          "-w", str(base / "dist")], cwd=REPO)
    (wheel,) = (base / "dist").glob("vaepipe-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # Installed before the .pth exists, so that pip sees no other vaepipe to replace.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
          "--no-cache-dir", "--disable-pip-version-check", str(wheel)])
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    deps = [p for p in [*site.getsitepackages(), site.getusersitepackages() if site.ENABLE_USER_SITE else ""]
            if p and os.path.isdir(p)]
    (Path(purelib) / "vaepipe_test_deps.pth").write_text("".join(f"{p}\n" for p in deps))
    probe = "import vaepipe, vaepipe._core as c; print(vaepipe.__file__); print(c.__file__)"
    where = _run([str(python), "-c", probe], cwd=base).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), f"the venv imports {where}, not its wheel's vaepipe"
    return python


@pytest.fixture(scope="module")
def workflow_checkout(tmp_path_factory):
    """A git checkout of this checkout's workflow sources (as they are, edits included, like the wheel) and a
    config file next to it: (checkout, configfile, commit)."""
    base = tmp_path_factory.mktemp("checkout")
    work = checkout(base / "workflow")
    _run([*GIT, "init", "-q", str(work)])
    _run([*GIT, "-C", str(work), "add", "-A"])
    _run([*GIT, "-C", str(work), "commit", "-q", "-m", "test checkout"])
    commit = _run(["git", "-C", str(work), "rev-parse", "HEAD"]).stdout.strip()
    config = base / "tiny.yaml"
    config.write_text(TINY)
    return work, config, commit


def _snakemake(python: Path, work: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(python), *snakemake_command(work, config, *args)[1:]]
    env = {k: v for k, v in os.environ.items() if k not in ("VAEPIPE_ALLOW_STALE_BUILD", "VAEPIPE_WORKFLOW_DIR")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=work.parent, env=env)


def test_the_schema_is_package_data(wheel_venv, tmp_path):
    code = ("import json, vaepipe.config as c; cfg = c.load_config(c.Path(r'%s')); "
            "print(json.dumps([str(c.SCHEMA_PATH), cfg['system']['n_particles']]))" % (REPO / "config.yaml"))
    proc = subprocess.run([str(wheel_venv), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, f"load_config fails with the wheel installed:\n{proc.stderr[-3000:]}"
    schema, n = json.loads(proc.stdout)
    assert Path(schema).is_relative_to(wheel_venv.parent.parent) and Path(schema).is_file(), schema
    assert n == 30


def test_the_cluster_minima_are_package_data(wheel_venv, tmp_path):
    """The reference_minimum stage reads the Cambridge Cluster Database values from vaepipe/data."""
    code = "from vaepipe.stages.quench import cluster_minimum; print(cluster_minimum(30), cluster_minimum(31))"
    proc = subprocess.run([str(wheel_venv), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["-128.286571", "None"]


def test_git_commit_is_the_workflow_checkouts(wheel_venv, workflow_checkout, tmp_path):
    work, _, commit = workflow_checkout
    code = "from vaepipe.io import git_commit; print(git_commit())"
    env = dict(os.environ, VAEPIPE_WORKFLOW_DIR=str(work))
    proc = subprocess.run([str(wheel_venv), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == commit, f"git_commit() = {proc.stdout.strip()!r}, expected the checkout's {commit}"


def test_unchanged_checkout_runs_and_its_jobs_record_its_commit(wheel_venv, workflow_checkout):
    work, config, commit = workflow_checkout
    proc = _snakemake(wheel_venv, work, config, "results/preliminary/gamma0_T1.json")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    record = json.loads((work / "results/preliminary/gamma0_T1.json").read_text())
    assert record["provenance"]["git_commit"] == commit


def test_edited_checkout_is_refused(wheel_venv, workflow_checkout, tmp_path):
    work, config, _ = workflow_checkout
    edited = tmp_path / "edited"
    shutil.copytree(work, edited, symlinks=True, ignore=shutil.ignore_patterns("results", ".snakemake", "logs"))
    for name, comment in (("vaepipe/seeds.py", "# an edit"), ("cpp/core/Sampler.cc", "// an edit")):
        path = edited / name
        path.write_text(path.read_text() + f"\n{comment}\n")
    proc = _snakemake(wheel_venv, edited, config, "-n")
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"snakemake -n ran a checkout that differs from the installed wheel:\n{text[-3000:]}"
    installed = wheel_venv.parent.parent / "lib"
    for expected in ("is not the code of the workflow checkout", f"workflow checkout: {edited.resolve()}",
                     f"jobs import:       {installed}", "vaepipe/seeds.py (differs)", "built from other C++ sources",
                     f"python -m pip install -e {edited.resolve()}"):
        assert expected in text, f"{expected!r} missing from the refusal:\n{text[-3000:]}"


# --------------------------------------------------------------------------- the comparison itself (no wheel)


def test_install_differences_names_every_file_that_differs(tmp_path):
    work = checkout(tmp_path / "workflow")
    installed = tmp_path / "site-packages" / "vaepipe"
    shutil.copytree(work / "vaepipe", installed)
    (installed / "_core.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")  # compiled: its digest speaks for it
    (installed / "__pycache__").mkdir(exist_ok=True)
    (installed / "__pycache__" / "seeds.cpython-311.pyc").write_bytes(b"\0")
    info = {"package": str(installed / "__init__.py"), "core": "_core.so", "core_digest": _build.source_digest(work)}
    assert _build.install_differences(work, info) == []

    (work / "vaepipe" / "seeds.py").write_text((work / "vaepipe" / "seeds.py").read_text() + "# an edit\n")
    (work / "vaepipe" / "schemas" / "config.schema.yaml").unlink()
    (work / "vaepipe" / "new.py").write_text("")
    assert _build.install_differences(work, {**info, "core_digest": "0" * 64}) == [
        "vaepipe/new.py (only in the checkout)",
        "vaepipe/schemas/config.schema.yaml (only in the installed package)",
        "vaepipe/seeds.py (differs)",
        "compiled core (built from other C++ sources than the checkout's cpp/ and CMakeLists.txt)",
    ]
    missing = _build.install_differences(work, {"error": "ModuleNotFoundError: No module named 'vaepipe'"})
    assert missing == ["vaepipe itself: the jobs' Python cannot import it (ModuleNotFoundError: No module named "
                       "'vaepipe')"]


def test_the_suites_editable_install_is_this_checkouts_code():
    info = _build.installed_package()
    assert Path(info["package"]).parent == REPO / "vaepipe", (
        f"the tests run vaepipe from {info['package']}, expected this checkout's editable install; fix: "
        f"python -m pip install -e {REPO}")
    assert _build.install_differences(REPO, info) == []


def test_stale_build_override_warns_and_exports_the_checkout(tmp_path, monkeypatch, capsys):
    work = checkout(tmp_path / "workflow")
    (work / "vaepipe" / "seeds.py").write_text((work / "vaepipe" / "seeds.py").read_text() + "# an edit\n")
    monkeypatch.setenv("VAEPIPE_WORKFLOW_DIR", "")  # restored afterwards: the call sets it
    monkeypatch.delenv("VAEPIPE_ALLOW_STALE_BUILD", raising=False)
    with pytest.raises(_build.InstallMismatch, match=r"vaepipe/seeds\.py \(differs\)"):
        _build.use_workflow_checkout(work)
    assert os.environ["VAEPIPE_WORKFLOW_DIR"] == str(work.resolve())
    monkeypatch.setenv("VAEPIPE_ALLOW_STALE_BUILD", "1")
    _build.use_workflow_checkout(work)
    assert "VAEPIPE_ALLOW_STALE_BUILD is set: running anyway" in capsys.readouterr().err
