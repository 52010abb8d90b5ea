"""Sampling run of one state point: samples HDF5 + density-profile figure."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe import io, plots, sampling  # noqa: E402
from vaepipe.seeds import derive_seed  # noqa: E402

params = dict(snakemake.params.items())
state = snakemake.wildcards.state
seed = derive_seed(params["seed"], "sample", state)
result = sampling.run_sampling(params["system"], params["state_point"], params["sampling"],
                               io.read_preliminary(snakemake.input.preliminary), seed,
                               threads=snakemake.threads, state=state)
prov = io.provenance(params, seed)
attrs = {**result.attrs, "seed": params["seed"], "config": prov["config"], "seed_entropy": prov["seed"],
         "git_commit": prov["git_commit"], "simd_level": prov["simd_level"]}
io.write_samples(snakemake.output.samples, result.positions, result.energy, result.chain, attrs)
io.save_figure(plots.density_figure(result.positions, attrs, params["sampling"]["density_bins"]),
               snakemake.output.density)
