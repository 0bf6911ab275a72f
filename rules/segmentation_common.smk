# The segmentation task's paths, dataset settings and targets (its rules: rules/segmentation.smk).
from detstudy.study.figure_kinds import SEGMENTATION_CROSS_RUN_FIGURE_KINDS
from detstudy.report.outputs import SEGMENTATION_LATEX_TABLES
from detstudy.study.grid import run_label
from detstudy.study.segmentation import folder_stamp, resolved_loss, segmentation_classes, synthetic_files
from detstudy.study.splits import synthetic_split_sizes

SYNTHETIC_MASKS = f"{RESULTS}/data/synthetic_masks"
CLASSES = segmentation_classes(config, workflow.basedir)
SEGMENTATION_TABLES = tuple(SEGMENTATION_LATEX_TABLES)


def mask_split(split):
    """A split's images and masks folders."""
    if config["dataset"]["source"] == "synthetic":
        return {"images": f"{SYNTHETIC_MASKS}/images/{split}", "masks": f"{SYNTHETIC_MASKS}/masks/{split}"}
    return dict(config["dataset"]["folders"][split])


def synthetic_mask_files(split, kind):
    """The demo generator's files of a split (known from its settings); none for a user dataset."""
    if config["dataset"]["source"] != "synthetic":
        return []
    sizes = synthetic_split_sizes((config["dataset"].get("synthetic") or {}).get("splits"))
    return synthetic_files(SYNTHETIC_MASKS, split, kind, sizes[split])


@functools.cache
def mask_split_stamp(split):
    """For a user dataset, a digest of every image and mask file's name, size and date."""
    return None if config["dataset"]["source"] == "synthetic" else folder_stamp(*mask_split(split).values())


def segmentation_dataset():
    """What every job that reads masks must know: the classes, the ignore value, the palette."""
    return {"classes": CLASSES["names"], "ignore_index": config["dataset"]["ignore_index"],
            "palette": config["dataset"]["palette"]}


def get_segmentation_run_config(wildcards):
    """A run's resolved configuration, for its metrics' provenance record."""
    dataset = {key: value for key, value in config["dataset"].items() if key != "colors"}  # colours: figures only
    return {"dataset": dataset, "model": MODELS[wildcards.model], "resolution": int(wildcards.resolution),
            "seed": int(wildcards.seed), "loss": resolved_loss(config),
            "inference": config["evaluation"]["inference"], "precision": config["evaluation"]["precision"],
            "device": DEVICE}


def segmentation_templates():
    """The segmentation report's templates (first, so the script finds the folder) and the shared partials."""
    folder = Path(workflow.basedir, "report", "templates")
    return sorted(str(p) for p in (folder / "segmentation").glob("*.j2")) + \
        sorted(str(p) for p in folder.glob("_*.j2"))


def segmentation_run_files(run):
    return {kind: run_dir(f"figures/{kind}.png").format(**run) for kind in SEGMENTATION_FIGURE_KINDS}


SEGMENTATION_CROSS_RUN_FIGURES = {kind: f"{RESULTS}/figures/{kind}.png" for kind in SEGMENTATION_CROSS_RUN_FIGURE_KINDS}


def segmentation_targets():
    targets = expand_runs("best.pt") + expand_runs("metrics.json") + expand_runs("statistics.json")
    targets += [f for run in grid_runs() for f in segmentation_run_files(run).values()]
    return targets + [COMPARISONS, *SEGMENTATION_CROSS_RUN_FIGURES.values(), *segmentation_report_outputs()]


def segmentation_report_outputs():
    return [f"{RESULTS}/report/index.html", f"{RESULTS}/report/report.md",
            *(f"{RESULTS}/report/tables/{stem}.tex" for stem in SEGMENTATION_TABLES)]
