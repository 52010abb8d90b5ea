"""Configurations generated from the distance VAE's prior, their energies, and the latent energy landscape."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe import io, mapping  # noqa: E402
from vaepipe.seeds import derive_seed  # noqa: E402

params = dict(snakemake.params.items())
out = mapping.generate_stage(snakemake.input.model, snakemake.input.latent, snakemake.input.reconstruction,
                             list(snakemake.input.samples), params, threads=snakemake.threads)
prov = io.provenance(params, derive_seed(params["seed"], "generate"))
io.write_arrays(snakemake.output.arrays, out["arrays"], {"provenance": prov}, io.GENERATED_FORMAT)
io.write_json(snakemake.output.metrics, {**out["metrics"], "provenance": prov})
io.save_figure(out["energy_figure"], snakemake.output.histograms, provenance_record=prov)
io.save_figure(out["landscape_figure"], snakemake.output.landscape, provenance_record=prov)
