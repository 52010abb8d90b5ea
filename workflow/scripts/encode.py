"""Encode every sample of one representation: latent means and log-variances with their labels (Parquet).

Thin glue: the logic is vaepipe.stages.train.encode."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import run, train  # noqa: E402

run(snakemake, train.encode)
