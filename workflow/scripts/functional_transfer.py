"""Rule functional_transfer (workflow/rules/functional.smk). Thin glue: the logic is vaepipe.stages.functional.functional_transfer."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # TensorFlow's C++ start-up lines go to the log too

from vaepipe.stages import functional, run  # noqa: E402

run(snakemake, functional.functional_transfer)
