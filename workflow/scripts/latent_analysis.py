"""Gamma clustering of one representation's latent means: silhouette, k-NN accuracy, PCA figure.

Thin glue: the logic is vaepipe.stages.analyze.latent_analysis."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe.stages import analyze, run  # noqa: E402

run(snakemake, analyze.latent_analysis)
