"""Featurization of one state point in one representation: the features HDF5 file.

Thin glue: the logic is vaepipe.stages.featurize.featurize."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe.stages import featurize, run  # noqa: E402

run(snakemake, featurize.featurize)
