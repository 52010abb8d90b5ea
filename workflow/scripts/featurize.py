"""Featurization of one state point in one representation: the features HDF5 file."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import time  # noqa: E402

import numpy as np  # noqa: E402

from vaepipe import features, io  # noqa: E402

params = dict(snakemake.params.items())
representation = snakemake.wildcards.representation
start = time.perf_counter()
samples = io.read_samples(snakemake.input.samples)
result = features.featurize(samples, representation, params["features"])
print(f"{representation}: {samples.num_samples} samples -> features {result.features.shape} "
      f"in {time.perf_counter() - start:.2f} s", file=sys.stderr)
prov = io.provenance(params)
copied = ("gamma", "temperature", "n_particles", "box_length", "dim", "boundary", "seed")
attrs = {**{k: samples.attrs[k] for k in copied}, **result.attrs, "state": snakemake.wildcards.state,
         "config": prov["config"], "git_commit": prov["git_commit"]}
io.write_features(snakemake.output.features, representation, result.features, samples.energy, samples.chain,
                  np.arange(samples.num_samples), attrs, order=result.order, anchors=result.anchors)
