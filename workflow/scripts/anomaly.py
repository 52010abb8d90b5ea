"""Anomaly detection with one representation's VAE: ROC against overlaps, random configurations, held-out gamma.

Thin glue: the logic is vaepipe.stages.analyze.anomaly."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import analyze, run  # noqa: E402

run(snakemake, analyze.anomaly)
