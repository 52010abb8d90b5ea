"""Encode every sample of one representation: latent means and log-variances with their labels (Parquet)."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
# TensorFlow's C++ runtime writes its start-up lines (CUDA probing, oneDNN) to file descriptor 2: into the log
# with them, not onto the user's console.
os.dup2(sys.stderr.fileno(), 2)

from vaepipe import io, training  # noqa: E402

params = dict(snakemake.params.items())
representation = snakemake.wildcards.representation
labels, z_mean, z_log_var = training.encode_stage(snakemake.input.model, list(snakemake.input.features), params,
                                                   threads=snakemake.threads)
print(f"{representation}: encoded {len(labels)} samples into {z_mean.shape[1]} dimensions", file=sys.stderr)
io.write_latent(snakemake.output.latent, labels, z_mean, z_log_var,
                {"representation": representation, "provenance": io.provenance(params)})
