"""Preliminary run of one state point: summary JSON + trace/autocorrelation figure."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe import io, plots, sampling  # noqa: E402
from vaepipe.seeds import derive_seed  # noqa: E402

params = dict(snakemake.params.items())
state = snakemake.wildcards.state
seed = derive_seed(params["seed"], "preliminary", state)
result = sampling.run_preliminary(params["system"], params["state_point"], params["preliminary"], seed, state=state)
# The figure first and the summary last: the summary is what the next stage reads, so it alone marks completion.
prov = io.provenance(params, seed)
io.save_figure(plots.preliminary_figure(result), snakemake.output.plot, provenance_record=prov)
io.write_preliminary(snakemake.output.summary, {**result.summary, "provenance": prov})
