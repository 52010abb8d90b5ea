"""Train one representation's VAE: model, history, metrics and figures.

Thin glue: the logic is vaepipe.stages.train.train_vae."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import run, train  # noqa: E402

run(snakemake, train.train_vae)
