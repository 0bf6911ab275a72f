# The classification task's paths, dataset settings and targets (its rules: rules/classification.smk).
from detstudy.report.outputs import CLASSIFICATION_LATEX_TABLES
from detstudy.study.classification import split_sources, split_stamp
from detstudy.study.figure_kinds import CLASSIFICATION_CROSS_RUN_FIGURE_KINDS
from detstudy.study.grid import run_label

SYNTHETIC_CROPS = f"{RESULTS}/data/synthetic_crops"
SOURCES = split_sources(config, SYNTHETIC_CROPS)  # split -> a folder of class folders, or a path,label CSV
CLASSIFICATION_TABLES = tuple(CLASSIFICATION_LATEX_TABLES)


def synthetic_crops():
    """The demo generator's folder (a directory output: the crops' names depend on the scenes)."""
    return [SYNTHETIC_CROPS] if config["dataset"]["source"] == "synthetic" else []


@functools.cache
def classification_split_stamp(split):
    """For a user dataset, a digest of every image's name, size and date (detstudy.study.classification)."""
    return None if config["dataset"]["source"] == "synthetic" else split_stamp(SOURCES[split])


def get_reference_check(wildcards):
    """The training split's check (its classes and image digests) for val and test: the leakage check."""
    return [] if wildcards.split == "train" else [dataset_check("train")]


def get_leakage_split(wildcards):
    """The split test is also kept apart from: val's images (their digests computed by the test
    check itself, so the val and test checks run side by side)."""
    return SOURCES["val"] if wildcards.split == "test" else None


def get_classification_run_config(wildcards):
    """A run's resolved configuration, for its metrics' provenance record."""
    return {"dataset": config["dataset"], "model": MODELS[wildcards.model], "resolution": int(wildcards.resolution),
            "seed": int(wildcards.seed), "loss": {"label_smoothing": config["loss"]["label_smoothing"]},
            "precision": config["evaluation"]["precision"], "device": DEVICE}


def classification_templates():
    """The classification report's templates (first, so the script finds the folder) and the shared partials."""
    folder = Path(workflow.basedir, "report", "templates")
    return sorted(str(p) for p in (folder / "classification").glob("*.j2")) + \
        sorted(str(p) for p in folder.glob("_*.j2"))


def classification_run_files(run):
    return {kind: run_dir(f"figures/{kind}.png").format(**run) for kind in CLASSIFICATION_FIGURE_KINDS}


CLASSIFICATION_CROSS_RUN_FIGURES = {kind: f"{RESULTS}/figures/{kind}.png"
                                    for kind in CLASSIFICATION_CROSS_RUN_FIGURE_KINDS}


def classification_targets():
    targets = expand_runs("best.pt") + expand_runs("metrics.json") + expand_runs("statistics.json")
    targets += [f for run in grid_runs() for f in classification_run_files(run).values()]
    return targets + [COMPARISONS, *CLASSIFICATION_CROSS_RUN_FIGURES.values(), *classification_report_outputs()]


def classification_report_outputs():
    return [f"{RESULTS}/report/index.html", f"{RESULTS}/report/report.md",
            *(f"{RESULTS}/report/tables/{stem}.tex" for stem in CLASSIFICATION_TABLES)]
