"""Density-profile figure of one state point's samples (a separate job, so figures never resample).

Thin glue: the logic is vaepipe.stages.sample.density."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe.stages import run, sample  # noqa: E402

run(snakemake, sample.density)
