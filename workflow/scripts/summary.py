"""results/summary.json and its table for the report.

Thin glue: the logic is vaepipe.stages.analyze.summary."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe.stages import analyze, run  # noqa: E402

run(snakemake, analyze.summary)
