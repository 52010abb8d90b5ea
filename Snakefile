# vaepipe workflow. Run from the repository root with this checkout installed in editable mode
# (python -m pip install -e .):
#     snakemake --cores all              (config.yaml; override keys with --configfile my.yaml)
# Config keys, units and output files: README.md and vaepipe/schemas/config.schema.yaml.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

from vaepipe._build import use_workflow_checkout
from vaepipe.config import prepare_config, read_config_file
from vaepipe.plan import check_plan

min_version("9.0")

# Before anything else, here and in every job: refuse an installed vaepipe that is not this checkout's code (the
# jobs would run other code than their code digests name), and export the checkout's path to the jobs.
use_workflow_checkout(workflow.basedir)

# Snakemake's loader says only "not valid JSON or YAML" for a broken config.yaml: read it first for the line.
try:
    if Path("config.yaml").is_file():
        read_config_file("config.yaml")
except ValueError as exc:
    raise WorkflowError(str(exc)) from None


configfile: "config.yaml"


# Schema first (YAML 1.2 numbers, types, ranges, defaults for every missing key), then the checks that relate keys
# to each other and to physics, then the plan's (splits, batches, every job's memory and work against one cap): a
# bad config stops here, before any job runs, in one message with the key, the value, what is expected, the fix.
try:
    check_plan(prepare_config(config))
except ValueError as exc:
    raise WorkflowError(str(exc)) from None


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
include: "workflow/rules/export.smk"


rule all:
    default_target: True
    input:
        sampling_outputs(),
        feature_outputs(),
        learning_outputs(),
        reconstruction_outputs(),
        analysis_outputs(),
        minimization_outputs(),
        EXPORT_OUTPUTS,
