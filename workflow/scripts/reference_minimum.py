"""Rule reference_minimum (workflow/rules/quench.smk). Thin glue: the logic is vaepipe.stages.quench.reference_minimum."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import quench, run  # noqa: E402

run(snakemake, quench.reference_minimum)
