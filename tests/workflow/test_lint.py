"""The workflow's own code checks, as CI runs them: `snakemake --lint` finds nothing but the one environment (below)
and snakefmt would change nothing (the rule files are formatted)."""

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


# The one lint the workflow keeps on purpose: no rule names a conda environment. Every job runs vaepipe itself
# (the package and its compiled core), which a per-rule environment built from environment.yml would not hold
# (Snakemake copies the file to a temporary place, so it cannot pip-install the checkout), and each such
# environment would build the C++ core again. The one environment the README installs (pip, or conda from
# environment.yml) is active when snakemake starts, and every job, local or through SLURM, runs in it.
SOFTWARE_LINT = "Specify a conda environment or container for each rule."


def test_snakemake_lint_finds_nothing_but_the_one_environment():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(REPO)], capture_output=True, text=True, timeout=300, cwd=REPO)
    text = proc.stdout + proc.stderr
    rules = re.findall(r"^Lints for rule (\w+)", text, re.M)
    lints = re.findall(r"^    \* (.+):$", text, re.M)
    assert rules and set(lints) == {SOFTWARE_LINT} and len(lints) == len(rules), text[-5000:]
    assert "conda:" not in "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))


def test_rules_are_snakefmt_formatted():
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *map(str, files)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
