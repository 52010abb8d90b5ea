"""The workflow's own code checks, as CI runs them: `snakemake --lint` finds nothing and snakefmt would change
nothing (the rule files are formatted)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_snakemake_lint_is_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--snakefile", str(REPO / "Snakefile"),
                           "--directory", str(REPO)], capture_output=True, text=True, timeout=300, cwd=REPO)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-5000:]
    assert "Congratulations, your workflow is in a good condition!" in text, text[-5000:]


def test_rules_are_snakefmt_formatted():
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *map(str, files)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
