# Detector comparison study: CNN vs ViT vs multimodal detectors on a COCO dataset.
# This file only wires: the grid logic lives in rules/common.smk, the work in the
# `detstudy` package (src/), called by thin scripts (scripts/).
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


report: "report/captions/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/multimodal.smk"
include: "rules/evaluate.smk"
include: "rules/statistics.smk"
include: "rules/figures.smk"
include: "rules/report.smk"
include: "rules/tracking.smk"


localrules:
    all,


rule all:
    input:
        all_run_targets(),
        multimodal_targets(),
        COMPARISONS,
        report_outputs(),
        tracking_targets(),
    default_target: True
