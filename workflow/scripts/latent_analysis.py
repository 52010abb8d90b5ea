"""Gamma clustering of one representation's latent means: silhouette, k-NN accuracy, PCA figure."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe import io, mapping  # noqa: E402

params = dict(snakemake.params.items())
out = mapping.latent_stage(snakemake.input.latent, params)
prov = io.provenance(params)
io.write_json(snakemake.output.metrics, {**out["metrics"], "provenance": prov})
io.save_figure(out["figure"], snakemake.output.figure, provenance_record=prov)
