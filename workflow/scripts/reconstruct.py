"""One VAE's test reconstructions back as particles, with their energies and baselines.

Thin glue: the logic is vaepipe.stages.reconstruct.reconstruct."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import reconstruct, run  # noqa: E402

run(snakemake, reconstruct.reconstruct)
