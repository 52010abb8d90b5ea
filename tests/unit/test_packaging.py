"""pyproject.toml and environment.yml promise the same dependencies with the same minimum versions."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# Names that differ between PyPI and conda-forge.
CONDA_NAMES = {}
# conda-only entries with no pip counterpart in pyproject's runtime/test lists (compilers and build tools).
CONDA_ONLY = {"python", "pip", "cxx-compiler", "cmake", "ninja"}


def _parse(spec: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][0-9A-Za-z.]*))?\s*(?:,\s*<\s*([0-9][0-9A-Za-z.]*))?\s*",
                     spec)
    assert m, f"cannot parse dependency {spec!r}: use 'name', 'name>=version' or 'name>=version,<version'"
    return m.group(1).lower(), (m.group(2) or "") + (f",<{m.group(3)}" if m.group(3) else "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_deps = dict(_parse(s) for s in project["dependencies"] + project["optional-dependencies"]["test"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_deps = dict(_parse(s) for s in env["dependencies"] if isinstance(s, str))
    for name, version in pip_deps.items():
        conda = CONDA_NAMES.get(name, name)
        assert conda in conda_deps, f"{name} is in pyproject.toml but not in environment.yml"
        assert conda_deps[conda] == version, (
            f"{name}: pyproject.toml pins >={version}, environment.yml pins >={conda_deps[conda]}")
    extra = set(conda_deps) - {CONDA_NAMES.get(n, n) for n in pip_deps} - CONDA_ONLY
    assert not extra, f"environment.yml lists {sorted(extra)} which pyproject.toml does not"


def test_build_requirements_are_pinned_in_both():
    build = dict(_parse(s) for s in tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_deps = dict(_parse(s) for s in env["dependencies"] if isinstance(s, str))
    for name, version in build.items():
        assert conda_deps.get(name) == version, f"build requirement {name}>={version} differs in environment.yml"


def test_test_extra_holds_the_build_requirements():
    # tests/workflow/test_install.py builds a wheel without build isolation: a fresh `pip install -e ".[test]"` must
    # bring the build backend along, with the build-system's own pins.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    build = dict(_parse(s) for s in pyproject["build-system"]["requires"])
    test = dict(_parse(s) for s in pyproject["project"]["optional-dependencies"]["test"])
    for name, version in build.items():
        assert test.get(name) == version, (
            f"build requirement {name}>={version}: expected the same pin in [project.optional-dependencies] test, "
            f"found {test.get(name)!r}; fix: add \"{name}>={version}\" to the test extra")


def test_keras_is_pinned_below_its_next_major():
    """vaepipe.io.models rewrites the .keras archive's members, which relies on Keras 3's file layout."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    keras = dict(_parse(s) for s in project["dependencies"])["keras"]
    assert keras.endswith(",<4"), keras
