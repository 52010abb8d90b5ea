"""Configurations generated from the distance VAE's prior, their energies, and the latent energy landscape.

Thin glue: the logic is vaepipe.stages.reconstruct.generate."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import reconstruct, run  # noqa: E402

run(snakemake, reconstruct.generate)
