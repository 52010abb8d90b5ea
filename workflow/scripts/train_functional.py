"""Rule train_functional (workflow/rules/functional.smk). Thin glue: the logic is vaepipe.stages.functional.train_functional."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import functional, run  # noqa: E402

run(snakemake, functional.train_functional)
