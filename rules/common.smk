# The results layout and the grid -> targets logic, in one place.
import os
import re
from pathlib import Path

RESULTS = "results"
SPLITS = ("train", "val", "test")
MODELS = config["models"]
GRID = config["grid"]


def check_grid():
    """Reject grid entries that name no model, before any job starts."""
    unknown = [name for name in GRID["models"] if name not in MODELS]
    if unknown:
        raise ValueError(
            f"config grid.models names {unknown}, which are not keys of `models` "
            f"({sorted(MODELS)}). Fix: add them under `models:` or remove them from grid.models."
        )


def check_dataset_paths():
    """A user dataset whose files are not there fails now, naming the config key."""
    if config["dataset"]["source"] != "coco":
        return
    for split in SPLITS:
        for key, exists in (("annotations", os.path.isfile), ("images", os.path.isdir)):
            path = config["dataset"]["coco"][split][key]
            if not exists(path):
                raise ValueError(
                    f"config dataset.coco.{split}.{key}: {path!r} does not exist (relative paths start "
                    f"at {os.getcwd()}). Fix: point it to your COCO {key} of the {split} split."
                )


check_grid()
check_dataset_paths()


# architecture name prefix -> detector family (each family has its own train rule)
FAMILY_PREFIXES = {"fasterrcnn_": "cnn"}


def family(model):
    architecture = MODELS[model]["architecture"]
    return next(f for prefix, f in FAMILY_PREFIXES.items() if architecture.startswith(prefix))


def family_models(name):
    """Grid models of one family."""
    return [m for m in GRID["models"] if family(m) == name]


def name_pattern(names):
    """A wildcard constraint matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    model=name_pattern(GRID["models"]),
    resolution=r"\d+",
    phase=r"base",
    seed=r"\d+",


# --- paths ------------------------------------------------------------------------------
def run_dir(name=""):
    """A file of one (model, resolution, phase, seed) run, with wildcards."""
    return f"{RESULTS}/runs/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}/{name}"


def run_log(name):
    return f"{RESULTS}/logs/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}/{name}"


def run_benchmark(name):
    return f"{RESULTS}/benchmarks/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}/{name}"


SYNTHETIC_DIR = f"{RESULTS}/data/synthetic"
DATA_DIR = f"{RESULTS}/data"


def split_annotations(split):
    if config["dataset"]["source"] == "synthetic":
        return f"{SYNTHETIC_DIR}/annotations/{split}.json"
    return config["dataset"]["coco"][split]["annotations"]


def split_images(split):
    if config["dataset"]["source"] == "synthetic":
        return f"{SYNTHETIC_DIR}/images/{split}"
    return config["dataset"]["coco"][split]["images"]


def dataset_check():
    """Every training and evaluation job depends on this: nothing trains on unchecked data."""
    return f"{DATA_DIR}/dataset_check.json"


FIGURE_KINDS = ("training_curves", "per_class_ap", "pr_curves", "confusion_matrix", "predictions")


# --- the grid ---------------------------------------------------------------------------
def grid_runs():
    """Every (model, resolution, phase, seed) cell of the grid."""
    return [
        {"model": m, "resolution": r, "phase": "base", "seed": s}
        for m in GRID["models"]
        for r in GRID["resolutions"]
        for s in GRID["seeds"]
    ]


def expand_runs(name):
    return [run_dir(name).format(**run) for run in grid_runs()]


def all_run_targets():
    targets = expand_runs("best.pt") + expand_runs("metrics.json")
    for kind in FIGURE_KINDS:
        targets += expand_runs(f"figures/{kind}.png")
    return targets


def report_outputs():
    return [
        f"{RESULTS}/report/index.html",
        f"{RESULTS}/report/report.md",
        f"{RESULTS}/report/tables/runs.tex",
        f"{RESULTS}/report/tables/per_class_ap50.tex",
    ]


# --- resources ----------------------------------------------------------------------------
def gpu_slots():
    """GPU jobs take the `gpu` resource (run with --resources gpu=N); CPU-only runs take
    none, so training jobs share the cores (`compute.threads` each) in parallel."""
    return 0 if config["compute"]["device"] == "cpu" else 1


# --- params helpers -----------------------------------------------------------------------
def architecture(wildcards):
    return MODELS[wildcards.model]["architecture"]


def run_info(wildcards):
    """What identifies a run in its metrics JSON and the report."""
    return {
        "model": wildcards.model,
        "family": family(wildcards.model),
        "architecture": architecture(wildcards),
        "resolution": int(wildcards.resolution),
        "phase": wildcards.phase,
        "seed": int(wildcards.seed),
    }


def model_settings(wildcards):
    return dict(MODELS[wildcards.model].get("model") or {})


def train_settings(wildcards):
    return dict(MODELS[wildcards.model].get("training") or {})


def run_labels(figure):
    """Labels of a run's figure in Snakemake's own report (wildcards filled in by Snakemake)."""
    return {
        "model": "{model}",
        "resolution": "{resolution}",
        "phase": "{phase}",
        "seed": "{seed}",
        "figure": figure,
    }


def report_templates():
    return sorted(str(p) for p in Path(workflow.basedir, "report", "templates").glob("*.j2"))
