"""Preliminary run of one state point: summary JSON + trace/autocorrelation figure.

Thin glue: the logic is vaepipe.stages.sample.preliminary."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe.stages import run, sample  # noqa: E402

run(snakemake, sample.preliminary)
