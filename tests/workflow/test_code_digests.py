"""Rerun triggers that cannot drift: a rule's code digest is the import closure of its script (vaepipe/_build.py).

On a copy of the finished tiny run, one package module is edited at a time, and ``snakemake --summary`` names
the outputs whose params changed: exactly those of the rules whose closure holds the module, and no other (what
else reruns because its inputs will change is Snakemake's business, not the digests').
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import snakemake_command
from vaepipe import _build

REPO = Path(__file__).resolve().parents[2]

RULES = sorted(p.stem for p in (REPO / "workflow" / "scripts").glob("*.py"))
# Modules to edit: together they put every rule both inside and outside some closure (checked below).
EDITED = ["vaepipe/plots/__init__.py", "vaepipe/decorrelation.py", "vaepipe/representations/voxel.py",
          "vaepipe/reconstruct.py", "vaepipe/stages/analyze.py"]


def _params_changed(summary: str) -> set[str]:
    """Rules with an output whose status in ``snakemake --summary`` is "params changed"."""
    rows = [line.split("\t") for line in summary.splitlines()]
    header = rows[0]
    rule, status = header.index("rule"), header.index("status")
    return {row[rule] for row in rows[1:] if len(row) > status and row[status] == "params changed"}


def _rules_with_outputs(summary: str) -> set[str]:
    """Rules that have an output in this run (tiny.yaml holds no gamma out, so functional_transfer has none)."""
    rows = [line.split("\t") for line in summary.splitlines()]
    rule = rows[0].index("rule")
    return {row[rule] for row in rows[1:] if len(row) > rule}


def _expected(module: str, root: Path) -> set[str]:
    return {rule for rule in RULES if module in _build.code_files(root / "workflow" / "scripts" / f"{rule}.py", root)}


@pytest.fixture(scope="module")
def copy(tiny_finished, tmp_path_factory):
    work, config = tiny_finished
    target = tmp_path_factory.mktemp("digests") / "work"
    shutil.copytree(work, target, symlinks=True)  # copy2 keeps the modification times that Snakemake compares
    return target, config


def test_the_edited_modules_cover_every_rule_both_ways():
    inside = {rule for module in EDITED for rule in _expected(module, REPO)}
    outside = {rule for module in EDITED for rule in set(RULES) - _expected(module, REPO)}
    assert inside == outside == set(RULES)


@pytest.mark.parametrize("module", EDITED)
def test_editing_a_module_reruns_exactly_the_rules_whose_closure_holds_it(copy, module, monkeypatch):
    work, config = copy
    source = work / module
    original = source.read_text()
    # The installed package is the repository's, not the edited copy's: the Snakefile refuses that unless told.
    monkeypatch.setenv("VAEPIPE_ALLOW_STALE_BUILD", "1")
    try:
        source.write_text(original + "\n# an edit that Snakemake cannot see by itself\n")
        proc = subprocess.run(snakemake_command(work, config, "--summary"),
                              capture_output=True, text=True, timeout=600, env=dict(os.environ))
    finally:
        source.write_text(original)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert _params_changed(proc.stdout) == _expected(module, work) & _rules_with_outputs(proc.stdout), \
        proc.stdout[-3000:]
