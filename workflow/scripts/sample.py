"""Sampling run of one state point: the samples HDF5 file (checkpointed; a SIGTERM writes a last checkpoint).

Thin glue: the logic is vaepipe.stages.sample.sample."""

import signal
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
# A cluster's time limit or a cancelled run sends SIGTERM: stop like Ctrl-C, which writes a last checkpoint.
signal.signal(signal.SIGTERM, signal.default_int_handler)

from vaepipe.stages import run, sample  # noqa: E402

run(snakemake, sample.sample)
