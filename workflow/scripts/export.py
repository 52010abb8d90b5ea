"""Rule export (workflow/rules/export.smk). Thin glue: the logic is vaepipe.stages.export.export."""

import os
import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)
os.dup2(sys.stderr.fileno(), 2)  # warnings of the C libraries (HDF5) go to the log too

from vaepipe.stages import export, run  # noqa: E402

run(snakemake, export.export)
