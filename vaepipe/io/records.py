"""Provenance records of every output: the rule's parameters, the derived seed, the version and the git commit."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vaepipe._build import WORKFLOW_DIR_ENV
from vaepipe.io._files import _jsonable, _version


def git_commit(directory: str | None = None) -> str:
    """Commit of a git checkout, with "-dirty" when it has uncommitted changes ('' when not a checkout or git is
    missing), so a file never claims a commit whose code did not make it.

    By default the workflow's checkout, VAEPIPE_WORKFLOW_DIR, which the Snakefile exports to every job: with a
    non-editable install the package's own directory is site-packages, no checkout at all. Outside Snakemake,
    the directory of vaepipe's sources (an editable install's checkout).
    """
    if directory is None:
        directory = os.environ.get(WORKFLOW_DIR_ENV) or str(Path(__file__).resolve().parent)
    return _git_describe(str(directory))


@lru_cache(maxsize=None)
def _git_describe(directory: str) -> str:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never refresh the index
    try:
        out = subprocess.run(["git", "-C", directory, "describe", "--always", "--dirty", "--abbrev=40"],
                             capture_output=True, text=True, timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


#: The libraries whose versions byte-identical output depends on (float formatting, HDF5 layout, kernels), as
#: recorded in every file's provenance.
RECORDED_LIBRARIES = ("numpy", "scipy", "h5py", "tensorflow", "keras")


@lru_cache(maxsize=None)
def library_versions() -> dict[str, str | None]:
    """Installed versions of :data:`RECORDED_LIBRARIES` (None when one is not installed), read from the package
    metadata without importing them (TensorFlow takes seconds to import)."""
    from importlib import metadata

    versions = {}
    for name in RECORDED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(params: Mapping[str, Any], seed: np.random.SeedSequence | None = None) -> dict:
    """Provenance record of an output: the rule's parameters, the derived seed, version and commit, and the
    versions of the libraries the bytes depend on (:func:`library_versions`).

    The SIMD kernel is deliberately not recorded in files (every kernel gives the same bits, so the files do
    not depend on it); the job logs name it.
    """
    from vaepipe.seeds import seed_provenance

    return {
        "config": _jsonable(dict(params)),
        "seed": seed_provenance(seed) if seed is not None else None,
        "vaepipe_version": _version(),
        "git_commit": git_commit(),
        "library_versions": dict(library_versions()),
    }
