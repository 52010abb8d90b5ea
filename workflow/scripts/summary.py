"""results/summary.json (the numbers users read first) and the same as a table for the report."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe import io, mapping  # noqa: E402

params = dict(snakemake.params.items())
names = params["representations"]
summary = mapping.summary_stage(
    model_metrics=dict(zip(names, map(io.read_json, snakemake.input.models))),
    reconstruction=io.read_json(snakemake.input.reconstruction[0]) if snakemake.input.reconstruction else {},
    generation=io.read_json(snakemake.input.generation[0]) if snakemake.input.generation else {},
    latent=dict(zip(names, map(io.read_json, snakemake.input.latent))),
    anomaly=dict(zip(names, map(io.read_json, snakemake.input.anomaly))),
    headline=params["headline"],
)
io.write_summary(snakemake.output.summary, summary, io.provenance(params))
io.write_summary_table(snakemake.output.table, summary)
