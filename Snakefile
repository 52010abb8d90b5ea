# vaepipe workflow. Run from the repository root with this checkout installed in editable mode
# (python -m pip install -e .):
#     snakemake --cores all              (config.yaml; override keys with --configfile my.yaml)
# Config keys, units and output files: README.md and vaepipe/schemas/config.schema.yaml.
from snakemake.utils import min_version, validate

from vaepipe._build import use_workflow_checkout
from vaepipe.config import SCHEMA_PATH, check_config, normalize_numbers

min_version("9.0")

# Before anything else, here and in every job: refuse an installed vaepipe that is not this checkout's code (the
# jobs would run other code than their code digests name), and export the checkout's path to the jobs.
use_workflow_checkout(workflow.basedir)


configfile: "config.yaml"


# Schema first (types, ranges, defaults for every missing key), then the checks that relate keys to each other:
# a bad config stops here, before any job runs, with the offending key named.
validate(config, str(SCHEMA_PATH))
normalize_numbers(config, SCHEMA_PATH)
check_config(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/featurize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/reconstruct.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/minimize.smk"
include: "workflow/rules/quench.smk"
include: "workflow/rules/functional.smk"
include: "workflow/rules/analyze.smk"


rule all:
    default_target: True
    input:
        sampling_outputs(),
        feature_outputs(),
        learning_outputs(),
        reconstruction_outputs(),
        analysis_outputs(),
        minimization_outputs(),
