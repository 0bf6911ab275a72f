# The results layout and the grid -> targets logic, in one place.
import functools
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Parse-time checks use the package's dependency-free modules (PyYAML only, no torch).
sys.path.insert(0, str(Path(workflow.basedir, "src")))
from detstudy.study.codegraph import source_files
from detstudy.tasks.detection.data.layout import image_files_stamp, synthetic_image_files, synthetic_split_sizes
from detstudy.study import config as study_config
from detstudy.study import devices as study_devices
from detstudy.study import grid as study_grid
from detstudy.study.architectures import family_of
from detstudy.study.figure_kinds import (CLASSIFICATION_FIGURE_KINDS, CROSS_RUN_FIGURE_KINDS, FIGURE_KINDS,
                                        MULTIMODAL_FIGURE_KINDS, SEGMENTATION_FIGURE_KINDS, VIT_FIGURE_KINDS)
from detstudy.engine.kernels import kernel_settings
from detstudy.study.chain import Phase, chain_training, joint_settings
from detstudy.report.outputs import LATEX_TABLES

TASK = config["task"]  # detection, segmentation or classification: which rule files the Snakefile includes
# each task's results apart, so both demos can run in one working directory
RESULTS = "results" if TASK == "detection" else f"results/{TASK}"
HEADLINE = {"detection": "AP50", "segmentation": "mIoU", "classification": "accuracy"}[TASK]  # the statistics figures' metric
SPLITS = ("train", "val", "test")
MODELS = config["models"]
GRID = config["grid"]
MULTIMODAL = config.get("multimodal")  # absent: no multimodal runs
# compute.device with `auto` resolved on this machine (cuda where a GPU is seen, else cpu): the
# jobs' parameter, so moving a study between a CPU and a GPU machine reruns what it changes
DEVICE = study_devices.resolved_device(config["compute"]["device"])


def imported_models():
    """Grid models whose vanilla runs are official checkpoints (models.<name>.import_checkpoint)."""
    return [m for m in GRID["models"] if MODELS[m].get("import_checkpoint")]


def get_import_source(wildcards):
    return study_grid.import_cells(config, wildcards.model)[f"{wildcards.resolution}px/seed{wildcards.seed}"]


def descriptions_file():
    return study_config.descriptions_path(config, workflow.basedir)


def get_multimodal_prompt(wildcards=None):
    """The prompt template (a function in params: Snakemake would expand its braces)."""
    return MULTIMODAL["prompt"]


study_config.check_workflow(config, workflow.basedir)  # every parse-time check (detstudy.study.config, unit-tested)
if imported_models():  # an imported run's file is read with torch, where the Snakefile's Python has it
    try:
        from detstudy.tasks.detection.checkpoint_import import check_import_files
    except ImportError as error:
        print(f"warning: the imported checkpoints are checked by their import jobs ({error})", file=sys.stderr)
    else:
        check_import_files(config)


def family(model):
    """The detector family of a model (each family has its own train rule)."""
    return family_of(MODELS[model]["architecture"])


def family_models(name):
    """Grid models of one family."""
    return [m for m in GRID["models"] if family(m) == name]


def name_pattern(names):
    """A wildcard constraint matching exactly these names (or nothing)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


def multimodal_models():
    return MULTIMODAL["models"] if MULTIMODAL else []


def phase_names():
    """The multimodal runs of each extended model (strategy by strategy, controls first)."""
    return study_grid.chain_phases(config)


def joint_phases():
    """The chain's runs trained from the model's initial weights (strategy 2: rule train_joint)."""
    return [p for p in phase_names() if Phase.parse(p).previous is None]


def finetuned_phases():
    """The chain's runs fine-tuned from another run's checkpoint (rule train_phase)."""
    return [p for p in phase_names() if Phase.parse(p).previous is not None]


wildcard_constraints:
    model=name_pattern(GRID["models"]),
    resolution=r"\d+",
    split="|".join(SPLITS),
    phase=name_pattern(["base"] + phase_names()),
    seed=r"\d+",


# --- paths ------------------------------------------------------------------------------
def run_dir(name=""):
    """A file of one (model, resolution, phase, seed) run, with wildcards."""
    return f"{RESULTS}/runs/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}/{name}"


def run_log(name):
    return f"{RESULTS}/logs/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}/{name}"


def run_state():
    """A training job's resumable state: not a declared output, so Snakemake never deletes it."""
    return f"{RESULTS}/state/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}"


def run_tracking(name):
    return f"{RESULTS}/tracking/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}/{name}"


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


def dataset_check(split):
    """The check report of one split: every job that reads the split depends on it, so nothing
    trains or evaluates on unchecked data, and an edit of one split reruns only its readers."""
    return f"{DATA_DIR}/checks/{split}.json"


def dataset_checks(*splits):
    return [dataset_check(split) for split in splits]


def training_checks():
    """A training job reads the train and val splits; it also waits for the test split's check,
    so that a broken test split stops the workflow before any training starts. That check is
    `ancient`: rechecking an edited test image must not retrain (Snakemake then ignores its date)."""
    return dataset_checks("train", "val") + [ancient(dataset_check("test"))]


def split_image_files(split):
    """The synthetic generator's image files of a split (known from its settings): outputs of
    the generator and inputs of the split's check. A user dataset's images are not listed as
    inputs (Snakemake slows down badly with tens of thousands); see split_image_stamp."""
    if config["dataset"]["source"] != "synthetic":
        return []
    sizes = synthetic_split_sizes((config["dataset"].get("synthetic") or {}).get("splits"))
    return synthetic_image_files(split_images(split), split, sizes[split])


@functools.cache
def split_image_stamp(split):
    """For a user dataset, a digest of the name, size and date of every image the split lists:
    a changed image changes this parameter of the split's check, which reruns it."""
    if config["dataset"]["source"] == "synthetic":
        return None
    return image_files_stamp(split_annotations(split), split_images(split))


def get_check_reference(wildcards):
    """The training split, whose categories every other split must share (none for itself)."""
    return None if wildcards.split == "train" else ["train", split_annotations("train")]


def get_reference_annotations(wildcards):
    return [] if wildcards.split == "train" else [split_annotations("train")]


# --- the grid ---------------------------------------------------------------------------
def grid_runs():
    """Every (model, resolution, phase, seed) cell (detstudy.study.grid: the one enumeration)."""
    return study_grid.grid_runs(config)


def multimodal_groups():
    """(model, resolution, seed) of every extended vanilla run: one set of multimodal figures each."""
    return [run for run in grid_runs() if run["phase"] == "base" and run["model"] in multimodal_models()]


def expand_runs(name):
    return [run_dir(name).format(**run) for run in grid_runs()]


def vit_runs():
    """The runs of DEIMv2 models (vanilla, phases and controls): they get the attention figures."""
    return [run for run in grid_runs() if family(run["model"]) == "vit"]


def all_run_targets():
    targets = expand_runs("best.pt") + expand_runs("metrics.json") + expand_runs("statistics.json")
    for kind in FIGURE_KINDS:
        targets += expand_runs(f"figures/{kind}.png")
    for kind in VIT_FIGURE_KINDS:
        targets += [run_dir(f"figures/{kind}.png").format(**run) for run in vit_runs()]
    return targets


def plot_style():
    """The figure settings every plot reads (not the attention's or the prediction grid's own:
    changing those redraws only the figures that use them)."""
    return {key: value for key, value in config["figures"].items() if key not in ("attention", "prediction_images")}


COMPARISONS = f"{RESULTS}/statistics/comparisons.json"
CROSS_RUN_FIGURES = {kind: f"{RESULTS}/figures/{kind}.png" for kind in CROSS_RUN_FIGURE_KINDS}
STATISTICS_FIGURES = {"forest": f"{RESULTS}/statistics/forest.png",
                      "differences": f"{RESULTS}/statistics/differences.png"}


def report_tables():
    """The LaTeX tables the report writes (``detstudy.report.outputs``: the renderer's own list)."""
    return [f"{RESULTS}/report/tables/{stem}.tex" for stem in LATEX_TABLES]


def report_runs():
    """The grid's runs as the report reads them: each with its folder, whether it is a DEIMv2 run
    (the attention figures) and its training job's benchmark file (none for an imported run)."""
    return [{**run, "dir": run_dir().format(**run), "vit": family(run["model"]) == "vit",
             "benchmark": None if run["phase"] == "base" and run["model"] in imported_models()
             else run_benchmark("train.tsv").format(**run)} for run in grid_runs()]


def report_outputs():
    return [f"{RESULTS}/report/index.html", f"{RESULTS}/report/report.md", *report_tables()]


# --- code ---------------------------------------------------------------------------------
def package_code(script):
    """The package files a rule's script runs, as inputs: Snakemake watches the script itself
    but cannot see the code it imports, so an edit there would rerun nothing."""
    src = Path(workflow.basedir, "src")
    return [str(p) for p in source_files(Path(workflow.basedir, "scripts", script), src) if src in p.parents]


# --- resources ----------------------------------------------------------------------------
def gpu_slots():
    """GPU jobs take the `gpu` resource (run with --resources gpu=N); CPU-only runs take
    none, so training jobs share the cores (`compute.threads` each) in parallel; `auto` takes
    one only on a machine with a GPU (detstudy.study.devices)."""
    return study_devices.gpu_slots(DEVICE)


def job_resources(kind):
    """A job's resources: a `gpu` for the training and evaluation kinds, and the memory (MB)
    and wall time (minutes) of `compute.jobs.<kind>`, which a cluster executor requests (SLURM:
    --mem, --time); locally they count only against `--resources mem_mb=...`."""
    limits = study_config.job_limits(config, kind)
    gpu = {"gpu": gpu_slots()} if kind in ("training", "evaluation") else {}
    return {**gpu, "mem_mb": limits["mem_mb"], "runtime": limits["runtime"]}


# --- params helpers -----------------------------------------------------------------------
def get_every_core(wildcards):
    """All the cores Snakemake was given (--cores), for a job that must run alone (the latency
    timing); compute.threads where no total is known (a dry run, --unlock)."""
    try:
        return workflow.cores
    except WorkflowError:
        return config["compute"]["threads"]


def cpu_kernels():
    """The CPU kernels and thread count of every job that computes (compute.portable_kernels,
    compute.threads): a parameter, so changing them reruns those jobs, whose results they change."""
    return kernel_settings(config["compute"]["portable_kernels"], config["compute"]["threads"])


def resampling_settings():
    """How each run's test images are resampled, and the intervals drawn from the resamples."""
    return {key: config["statistics"][key] for key in ("resamples", "seed", "level", "method")}


def comparison_settings():
    """The resampling, the baseline model and the extra pairs of the comparisons."""
    return {**resampling_settings(), "baseline": config["statistics"]["baseline"],
            "pairs": config["statistics"]["pairs"]}


def get_architecture(wildcards):
    return MODELS[wildcards.model]["architecture"]


def get_run_info(wildcards):
    """What identifies a run in its metrics JSON and the report."""
    return study_grid.run_identity(config, wildcards.model, wildcards.resolution, wildcards.phase, wildcards.seed)


def get_run_config(wildcards):
    """A run's resolved configuration, for its metrics' provenance record: only what reaches
    the run, so recording it reruns nothing that its own settings would not."""
    resolved = {
        "dataset": config["dataset"],
        "model": MODELS[wildcards.model],
        "resolution": int(wildcards.resolution),
        "seed": int(wildcards.seed),
        "evaluation": config["evaluation"],
        "device": DEVICE,
    }
    if wildcards.phase != "base":
        phase = Phase.parse(wildcards.phase)
        resolved["phase"] = {
            "name": phase.name,
            "strategy": phase.strategy,
            "starts_from": phase.previous or "the model's initial weights",
            "training": get_phase_train_settings(wildcards),
            "fusion": get_phase_fusion(wildcards),
        }
        if phase.previous is None:
            resolved["phase"]["model"] = get_phase_model_settings(wildcards)
        if phase.uses_text:
            resolved["phase"]["text"] = {
                "descriptions": MULTIMODAL["descriptions"],
                "text_encoder": MULTIMODAL["text_encoder"],
                "prompt": get_multimodal_prompt(),
            }
    return resolved


def get_model_settings(wildcards):
    return dict(MODELS[wildcards.model].get("model") or {})


def get_train_settings(wildcards):
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


# --- the multimodal extension -------------------------------------------------------------
TEXT_DIR = f"{RESULTS}/text"


def text_embeddings():
    return f"{TEXT_DIR}/class_embeddings.safetensors"


def text_prompts():
    return f"{TEXT_DIR}/class_prompts.json"


def multimodal_dir(name=""):
    """Cross-run multimodal figures of one extended (model, resolution, seed)."""
    return f"{RESULTS}/multimodal/{{model}}/{{resolution}}px/seed{{seed}}/{name}"


def get_phase_start(wildcards):
    """The best checkpoint of the run this phase starts from: the DAG is the chain (train_phase
    only: the joint runs start from the model's initial weights)."""
    return run_dir("best.pt").format(**{**wildcards, "phase": Phase.parse(wildcards.phase).previous})


def get_phase_embeddings(wildcards):
    """The class embeddings enter the chain where the fusion is attached (phase 1, the
    fusion-only and joint runs)."""
    return [text_embeddings()] if Phase.parse(wildcards.phase).attaches_fusion else []


def get_phase_fusion(wildcards):
    return study_config.phase_fusion(config, wildcards.phase)


def get_phase_train_settings(wildcards):
    """A phase or the fusion-only run: the model's recipe, then the settings shared by every
    fine-tuning run, then the run's own; the joint runs: the model's recipe at their length,
    then multimodal.joint.training (detstudy.study.chain.chain_training)."""
    return chain_training(MODELS[wildcards.model], MULTIMODAL, wildcards.phase)


def get_phase_model_settings(wildcards):
    """The joint runs' model settings: the model's, their epoch marks stretched to the run's length."""
    return joint_settings(MODELS[wildcards.model], MULTIMODAL["joint"])[0]


def get_chain_metrics(wildcards):
    """Metrics of the vanilla run and of every phase and control, in report order."""
    return [run_dir("metrics.json").format(**{**wildcards, "phase": p}) for p in ["base"] + phase_names()]


def multimodal_targets():
    return [multimodal_dir(f"{kind}.png").format(**group) for group in multimodal_groups()
            for kind in MULTIMODAL_FIGURE_KINDS]


# --- experiment tracking (optional) --------------------------------------------------------
TRACKING = config["tracking"]
MLFLOW_ON = bool(TRACKING["mlflow"]["uri"])
TRACKING_ON = MLFLOW_ON or TRACKING["tensorboard"]
TRACKING_PARENT = f"{RESULTS}/tracking/parent.json"  # this invocation's MLflow parent run


@functools.cache
def workflow_tracks():
    """Whether Snakemake itself can reach MLflow (the parent run is opened by the main process,
    which, with --sdm conda, is not a job environment: mlflow must be installed beside snakemake)."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        print("tracking.mlflow: mlflow is not installed beside snakemake (pip install -e '.[tracking]'); "
              "the runs are logged without a parent run", file=sys.stderr)
        return False
    return True


def tracking_targets():
    return [run_tracking("tracked.json").format(**run) for run in grid_runs()] if TRACKING_ON else []


def run_figure_files(wildcards):
    """A run's figures (the task's kinds; a DEIMv2 run's attention figures too)."""
    if TASK == "segmentation":
        kinds = list(SEGMENTATION_FIGURE_KINDS)
    elif TASK == "classification":
        kinds = list(CLASSIFICATION_FIGURE_KINDS)
    else:
        kinds = [*FIGURE_KINDS, *(VIT_FIGURE_KINDS if family(wildcards.model) == "vit" else ())]
    return [run_dir(f"figures/{kind}.png").format(**wildcards) for kind in kinds]


def task_targets():
    """Everything `snakemake` builds for the config's task."""
    if TASK == "segmentation":
        return [*segmentation_targets(), *tracking_targets()]
    if TASK == "classification":
        return [*classification_targets(), *tracking_targets()]
    return [*all_run_targets(), *multimodal_targets(), COMPARISONS, *report_outputs(), *tracking_targets()]
