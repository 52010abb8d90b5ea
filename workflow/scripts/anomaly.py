"""Anomaly detection with one representation's VAE: ROC against overlaps, random configurations, held-out gamma."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe import io, mapping  # noqa: E402
from vaepipe.seeds import derive_seed  # noqa: E402

params = dict(snakemake.params.items())
representation = snakemake.wildcards.representation
out = mapping.anomaly_stage(snakemake.input.model, list(snakemake.input.features), list(snakemake.input.samples),
                            list(snakemake.input.heldout), params, threads=snakemake.threads)
prov = io.provenance(params, derive_seed(params["seed"], "anomaly", representation))
io.write_json(snakemake.output.metrics, {**out["metrics"], "provenance": prov})
io.save_figure(out["figure"], snakemake.output.figure, provenance_record=prov)
