"""Sampling run of one state point: the samples HDF5 file, resumable from a checkpoint."""

import signal
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from vaepipe import io, sampling  # noqa: E402
from vaepipe.mc import simd_level  # noqa: E402
from vaepipe.seeds import derive_seed  # noqa: E402

# A cluster's time limit or a cancelled run sends SIGTERM: stop like Ctrl-C, which writes a last checkpoint.
signal.signal(signal.SIGTERM, signal.default_int_handler)

params = dict(snakemake.params.items())
# Where and how often to checkpoint changes no result: kept out of the provenance (see common.smk).
checkpoint = params.pop("checkpoint")
state = snakemake.wildcards.state
seed = derive_seed(params["seed"], "sample", state)
print(f"pair kernel: {simd_level()}", file=sys.stderr)
result = sampling.run_sampling(params["system"], params["state_point"], params["sampling"],
                               io.read_preliminary(snakemake.input.preliminary), seed,
                               threads=snakemake.threads, state=state, checkpoint=checkpoint["path"],
                               checkpoint_interval=checkpoint["interval"], code=params["code"])
prov = io.provenance(params, seed)
attrs = {**result.attrs, "seed": params["seed"], "config": prov["config"], "seed_entropy": prov["seed"],
         "git_commit": prov["git_commit"]}
io.write_samples(snakemake.output.samples, result.positions, result.energy, result.chain, attrs)
io.remove_checkpoint(checkpoint["path"])
