"""Train the VAE of one representation on every state point: model, history, metrics and figures."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
# TensorFlow's C++ runtime writes its start-up lines (CUDA probing, oneDNN) to file descriptor 2: into the log
# with them, not onto the user's console.
os.dup2(sys.stderr.fileno(), 2)

from vaepipe import io, training  # noqa: E402
from vaepipe.seeds import derive_seed  # noqa: E402

params = dict(snakemake.params.items())
representation = snakemake.wildcards.representation
out = training.train_stage(list(snakemake.input.features), representation, params, threads=snakemake.threads)
prov = io.provenance(params, derive_seed(params["seed"], "train", representation))
io.write_model(snakemake.output.model, out["model"], prov)
io.write_table_csv(snakemake.output.history, out["history"])
io.write_json(snakemake.output.metrics, {**out["metrics"], "provenance": prov})
io.save_figure(out["loss_figure"], snakemake.output.loss, provenance_record=prov)
io.save_figure(out["reconstruction_figure"], snakemake.output.reconstructions,
               provenance_record=prov)
