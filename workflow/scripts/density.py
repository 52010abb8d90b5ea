"""Density-profile figure of one state point's samples (a separate job, so figures never resample)."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe import io, plots  # noqa: E402

samples = io.read_samples(snakemake.input.samples)
io.save_figure(plots.density_figure(samples.positions, samples.attrs, snakemake.params.bins),
               snakemake.output.density, provenance_record=io.provenance(dict(snakemake.params.items())))
