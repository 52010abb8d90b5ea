"""Gram-matrix reconstruction of the distance VAE's test set, alignment, and energies against the originals."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe import io, mapping  # noqa: E402
from vaepipe.seeds import derive_seed  # noqa: E402

params = dict(snakemake.params.items())
out = mapping.reconstruct_stage(snakemake.input.model, list(snakemake.input.features), list(snakemake.input.samples),
                                params, threads=snakemake.threads)
prov = io.provenance(params, derive_seed(params["seed"], "reconstruct", "learned"))
io.write_arrays(snakemake.output.arrays, out["arrays"], {**out["attrs"], "provenance": prov},
                io.RECONSTRUCTION_FORMAT)
io.write_json(snakemake.output.metrics, {**out["metrics"], "provenance": prov})
io.save_figure(out["examples_figure"], snakemake.output.examples, provenance_record=prov)
io.save_figure(out["rmsd_figure"], snakemake.output.rmsd, provenance_record=prov)
io.save_figure(out["energy_figure"], snakemake.output.energy, provenance_record=prov)
