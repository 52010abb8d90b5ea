# vaepipe workflow. Run from the repository root with the package installed
# (pip install -e . --no-build-isolation):
#     snakemake --cores all              (config.yaml; override keys with --configfile my.yaml)
# Config keys, units and output files: README.md and workflow/schemas/config.schema.yaml.
from snakemake.utils import min_version, validate

from vaepipe.config import check_config, normalize_numbers

min_version("9.0")


configfile: "config.yaml"


# Schema first (types, ranges, defaults for every missing key), then the checks that relate keys to each other:
# a bad config stops here, before any job runs, with the offending key named.
validate(config, "workflow/schemas/config.schema.yaml")
normalize_numbers(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
check_config(config)


include: "workflow/rules/common.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/featurize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/reconstruct.smk"
include: "workflow/rules/analyze.smk"


rule all:
    default_target: True
    input:
        sampling_outputs(),
        feature_outputs(),
        learning_outputs(),
        reconstruction_outputs(),
        analysis_outputs(),
