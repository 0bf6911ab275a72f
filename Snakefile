# CNN vs ViT comparison studies: detectors on a COCO dataset (task: detection, with the
# multimodal extension), semantic segmenters on image/mask folders (task: segmentation) or image
# classifiers on class folders (task: classification).
# This file only wires: the grid logic lives in rules/common.smk, each task's rules in their
# files, the work in the `detstudy` package (src/), called by thin scripts (scripts/).
from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded detection demo is the default, under any detection config given with --configfile
# (which overrides its keys); a segmentation or classification config stands alone
# (config/segmentation.yaml, config/classification.yaml).
if config.get("task", "detection") == "detection":

    configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


report: "report/captions/workflow.rst"


include: "rules/common.smk"


if TASK == "segmentation":

    include: "rules/segmentation_common.smk"
    include: "rules/segmentation.smk"

elif TASK == "classification":

    include: "rules/classification_common.smk"
    include: "rules/classification.smk"

else:

    include: "rules/data.smk"
    include: "rules/train.smk"
    include: "rules/multimodal.smk"
    include: "rules/evaluate.smk"
    include: "rules/statistics.smk"
    include: "rules/figures.smk"
    include: "rules/report.smk"


include: "rules/comparisons.smk"
include: "rules/tracking.smk"


localrules:
    all,


if TASK in ("segmentation", "classification"):

    localrules:
        report,

    # `snakemake report` builds the report in every task (detection's rule of that name renders it)
    rule report:
        input:
            segmentation_report_outputs() if TASK == "segmentation" else classification_report_outputs(),


rule all:
    input:
        task_targets(),
    default_target: True
