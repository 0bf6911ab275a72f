"""The classification study end to end on a tiny config (``task: classification``): targets, the
one protocol's numbers, statistics with McNemar, report, predict, rerun triggers, byte-identical
reruns, kill and resume, a user's ImageFolder tree and CSV files, bad data stopped before any
training."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import Workflow, copy_workflow

from detstudy.report.outputs import CLASSIFICATION_LATEX_TABLES
from detstudy.study.figure_kinds import CLASSIFICATION_CROSS_RUN_FIGURE_KINDS, CLASSIFICATION_FIGURE_KINDS

pytestmark = pytest.mark.workflow

MODELS = ("resnet", "mobilevit", "dinov3")
ROOT = "results/classification"
RUNS = [f"{ROOT}/runs/{m}/32px/base/seed0" for m in MODELS]
TRAINING = {"epochs": 2, "batch_size": 8, "optimizer": "adamw", "lr": 0.002, "lr_schedule": "cosine",
            "warmup_iters": 2, "augmentation": {"crop_scale": [0.6, 1.0], "horizontal_flip": 0.5}}


def tiny_classification_config() -> dict:
    return {
        "task": "classification",
        "dataset": {"name": "tiny-crops", "source": "synthetic",
                    "synthetic": {"seed": 1, "image_size": 96, "crop_size": 32,
                                  "splits": {"train": 24, "val": 12, "test": 18}}},
        "grid": {"models": list(MODELS), "resolutions": [32], "seeds": [0]},
        "models": {"resnet": {"architecture": "resnet_demo", "training": dict(TRAINING)},
                   "mobilevit": {"architecture": "mobilevit_demo", "training": dict(TRAINING)},
                   "dinov3": {"architecture": "dinov3_demo", "training": dict(TRAINING)}},
        "loss": {"label_smoothing": 0.1},
        "evaluation": {"latency_images": 2, "batch_size": 8},
        "compute": {"device": "cpu", "threads": 1},
        "statistics": {"resamples": 200, "baseline": "resnet"},
        "figures": {"dpi": 50, "prediction_images": 2},
        "report": {"title": "Tiny classification"},
    }


def classification_workflow(path: Path) -> Workflow:
    workflow = copy_workflow(path)
    workflow.write_config(tiny_classification_config())
    return workflow


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Workflow:
    workflow = classification_workflow(tmp_path_factory.mktemp("classification") / "wf")
    workflow.snakemake("--cores", "2", "--resources", "gpu=1")
    return workflow


def test_every_target_is_built(finished: Workflow):
    root = finished.root
    for run in RUNS:
        for name in ("best.pt", "history.csv", "metrics.json", "predictions.npz", "speed.json", "statistics.json",
                     "bootstrap.npz"):
            assert (root / run / name).stat().st_size > 0, f"{run}/{name}"
        for kind in CLASSIFICATION_FIGURE_KINDS:
            assert (root / run / "figures" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
        assert "ETA" in (root / run.replace("/runs/", "/logs/") / "train.log").read_text()
    for kind in CLASSIFICATION_CROSS_RUN_FIGURE_KINDS:
        assert (root / ROOT / "figures" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
    for stem in CLASSIFICATION_LATEX_TABLES:
        assert r"\begin{tabular}" in (root / ROOT / "report/tables" / f"{stem}.tex").read_text()


def test_metrics_hold_the_one_protocol_and_the_statistics_agree(finished: Workflow):
    from detstudy.tasks.classification.metrics import metrics_from_predictions

    root = finished.root
    for model, run in zip(MODELS, RUNS):
        metrics = json.loads((root / run / "metrics.json").read_text())
        assert metrics["run"]["model"] == model and metrics["task"] == "classification"
        assert metrics["protocol"]["images"] == 18 and len(metrics["protocol"]["classes"]) == 6
        stored = np.load(root / run / "predictions.npz")
        assert metrics["metrics"] == metrics_from_predictions(stored["true"], stored["probabilities"],
                                                              metrics["protocol"]["classes"])
        training = metrics["training"]
        assert training["select_metric"] == "accuracy" and training["best_epoch"] in (1, 2)
        assert training["val_accuracy"] is not None and training["train_accuracy"] is not None
        assert metrics["provenance"]["dataset"]["test"]["images"] == 18
        statistics = json.loads((root / run / "statistics.json").read_text())
        assert statistics["metrics"]["accuracy"]["estimate"] == pytest.approx(metrics["metrics"]["accuracy"], abs=1e-12)
        assert "top5" in statistics["metrics"] or metrics["metrics"]["top5"] is None
        speed = json.loads((root / run / "speed.json").read_text())["speed"]
        assert speed["latency_ms_per_image"] > 0 and speed["gflops"] > 0 and speed["checkpoint_mb"] > 0
    families = {json.loads((root / run / "metrics.json").read_text())["run"]["family"] for run in RUNS}
    assert families == {"cnn", "hybrid", "vit"}


def test_the_comparisons_and_the_report_carry_the_paired_tests(finished: Workflow):
    root = finished.root
    comparisons = json.loads((root / ROOT / "statistics/comparisons.json").read_text())
    assert list(comparisons["cells"][0]["metrics"])[:2] == ["accuracy", "macro_F1"]
    rows = comparisons["tables"]["baseline"]
    assert {row["b"] for row in rows} == {"resnet · 32 px · base"} and len(rows) == 2
    assert all({"a_only", "b_only", "p", "p_holm"} <= set(row["mcnemar"]) for row in rows)
    html = (root / ROOT / "report/index.html").read_text()
    assert "Δaccuracy vs resnet" in html and "McNemar" in html and "Hybrid" in html and "Per-class F1" in html
    assert "BGR" in html  # MobileViT's input, recorded
    markdown = (root / ROOT / "report/report.md").read_text()
    assert "## Train, validation and test" in markdown and "| NORMAL |" in markdown
    from detstudy.report.classification_report import train_val_test_view
    from detstudy.report.significance import Significance
    from detstudy.report.task_tables import load_task_runs

    table = train_val_test_view(load_task_runs([root / run / "metrics.json" for run in RUNS]),
                                Significance.load(root / ROOT / "statistics/comparisons.json"))
    assert sum(group["span"] for group in table["group_headers"]) == len(table["columns"])  # each header over its columns


def test_the_latex_tables_compile(finished: Workflow):
    from test_report import compile_latex

    compile_latex(finished.root / ROOT / "report/tables")


def test_nothing_reruns_after_a_complete_run(finished: Workflow):
    assert finished.planned_jobs() == set()


def _every(*rules: str) -> set[tuple[str, str]]:
    return {(rule, model) for rule in rules for model in MODELS}


SHARED = {("comparisons", ""), ("statistics_figures", ""), ("classification_cross_run_figures", ""),
          ("classification_report", ""), ("all", "")}
PER_RUN = ("train_classifier", "evaluate_classifier", "classifier_latency", "classification_statistics",
           "classification_figures")


def test_a_changed_learning_rate_retrains_only_that_model(finished: Workflow):
    planned = finished.planned_after(lambda c: c["models"]["mobilevit"]["training"].update(lr=0.001))
    assert planned == {(rule, "mobilevit") for rule in PER_RUN} | SHARED


def test_a_changed_label_smoothing_retrains_every_model_but_checks_no_data(finished: Workflow):
    planned = finished.planned_after(lambda c: c["loss"].update(label_smoothing=0.0))
    assert planned == _every(*PER_RUN) | SHARED


def test_a_changed_resample_count_reruns_the_statistics_and_the_report_only(finished: Workflow):
    planned = finished.planned_after(lambda c: c["statistics"].update(resamples=300))
    assert planned == _every("classification_statistics") | SHARED


def test_predict_gives_the_top_k_classes_as_csv_and_json(finished: Workflow, tmp_path):
    from detstudy.cli import main

    images = tmp_path / "new"
    images.mkdir()
    sources = sorted((finished.root / ROOT / "data/synthetic_crops/images/test").glob("*/*.png"))[:3]
    for k, source in enumerate(sources):
        shutil.copy(source, images / f"img{k}.png")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(finished.root / RUNS[0] / "best.pt"), "--images", str(images),
                 "--out", str(out), "--top-k", "3", "--device", "cpu"]) == 0
    result = json.loads((out / "predictions.json").read_text())
    assert result["top_k"] == 3 and [item["image"] for item in result["images"]] == ["img0.png", "img1.png", "img2.png"]
    for item in result["images"]:
        probabilities = [entry["probability"] for entry in item["top"]]
        assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1 + 1e-5
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 9 and rows[0]["class"] == result["images"][0]["top"][0]["class"]
    # the test image's class from predict is the evaluation's
    stored = np.load(finished.root / RUNS[0] / "predictions.npz")
    names = json.loads((finished.root / RUNS[0] / "metrics.json").read_text())["protocol"]["classes"]
    index = [str(p) for p in stored["paths"]].index(next(str(p) for p in stored["paths"] if p.endswith(sources[0].name)))
    assert result["images"][0]["top"][0]["class"] == names[int(stored["probabilities"][index].argmax())]
    (images / "broken.png").write_bytes(b"not an image")
    assert main(["predict", "--checkpoint", str(finished.root / RUNS[0] / "best.pt"), "--images", str(images),
                 "--out", str(tmp_path / "out2")]) == 2
    assert not (tmp_path / "out2").exists()


def test_same_config_and_seed_give_byte_identical_results(tmp_path):
    workflow = classification_workflow(tmp_path / "wf")
    config = workflow.config()
    config["grid"]["models"] = ["dinov3"]
    config["statistics"]["baseline"] = None
    workflow.write_config(config)
    targets = [f"{ROOT}/runs/dinov3/32px/base/seed0/metrics.json", f"{ROOT}/runs/dinov3/32px/base/seed0/best.pt"]
    workflow.snakemake(*targets, "--cores", "2")
    first = {target: (workflow.root / target).read_bytes() for target in targets}
    workflow.snakemake(*targets, "--cores", "2", "--forceall")
    for target in targets:  # the checkpoint too: its file holds no trace of its temporary name
        assert (workflow.root / target).read_bytes() == first[target], target


def test_a_killed_training_job_resumes_with_rerun_incomplete(tmp_path):
    target = f"{ROOT}/runs/resnet/32px/base/seed0/best.pt"
    runs = {}
    for name in ("straight", "killed"):
        workflow = classification_workflow(tmp_path / name)
        config = workflow.config()
        config["models"]["resnet"]["training"].update(epochs=6)
        workflow.write_config(config)
        runs[name] = workflow
    runs["straight"].snakemake(target, "--cores", "1")
    killed = runs["killed"]
    state = killed.root / f"{ROOT}/state/resnet/32px/base/seed0/state.pt"
    killed.kill_once_state_exists(target, state)
    assert torch.load(state, weights_only=True)["epoch"] < 6
    killed.snakemake("--unlock")
    killed.snakemake(target, "--cores", "1", "--rerun-incomplete")
    assert "resuming after epoch" in (killed.root / f"{ROOT}/logs/resnet/32px/base/seed0/train.log").read_text()
    straight = torch.load(runs["straight"].root / target, weights_only=True)["model"]
    resumed = torch.load(killed.root / target, weights_only=True)["model"]
    assert all(torch.equal(value, resumed[key]) for key, value in straight.items())


def _user_tree(root: Path, *, broken=None) -> dict:
    """Three ImageFolder splits as a user brings them (grayscale, RGBA and 16-bit images among them)."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        for k, name in enumerate(("crack", "stain")):
            folder = root / "data" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
                pixels[..., k] = 255  # each class a colour cast the models can learn
                image = Image.fromarray(pixels)
                if i == 1:
                    image = image.convert("L")
                elif i == 2:
                    image = image.convert("RGBA")
                image.save(folder / f"{split}{i}.png")
        splits[split] = str(root / "data" / split)
    Image.fromarray((np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30)).save(root / "data/test/crack/deep.png")
    if broken:
        broken(root / "data")
    return splits


def _user_config(workflow: Workflow, splits: dict) -> None:
    config = workflow.config()
    config["dataset"] = {"name": "mine", "source": "imagefolder", "splits": splits}
    config["grid"]["models"] = ["resnet"]
    config["statistics"]["baseline"] = None
    workflow.write_config(config)


def test_a_user_imagefolder_tree_runs_through_and_reruns_the_check_of_an_edited_split(tmp_path):
    workflow = classification_workflow(tmp_path / "wf")
    _user_config(workflow, _user_tree(tmp_path))
    target = f"{ROOT}/runs/resnet/32px/base/seed0/metrics.json"
    workflow.snakemake(target, "--cores", "2")
    metrics = json.loads((workflow.root / target).read_text())
    assert metrics["protocol"]["classes"] == ["crack", "stain"] and metrics["protocol"]["images"] == 5
    shutil.copy(tmp_path / "data/test/stain/test0.png", tmp_path / "data/test/stain/test9.png")
    planned = workflow.planned_jobs(target)
    assert ("check_image_split", "") in planned and ("evaluate_classifier", "resnet") in planned
    assert ("train_classifier", "resnet") not in planned


def test_a_user_csv_dataset_runs_through(tmp_path):
    workflow = classification_workflow(tmp_path / "wf")
    tree = _user_tree(tmp_path)
    splits = {}
    for split, folder in tree.items():
        rows = [(str(p.relative_to(tmp_path / "data")), p.parent.name) for p in sorted(Path(folder).glob("*/*.png"))]
        with open(tmp_path / "data" / f"{split}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([("path", "label"), *rows])
        splits[split] = str(tmp_path / "data" / f"{split}.csv")
    _user_config(workflow, splits)
    target = f"{ROOT}/runs/resnet/32px/base/seed0/metrics.json"
    workflow.snakemake(target, "--cores", "2")
    assert json.loads((workflow.root / target).read_text())["protocol"]["images"] == 5


@pytest.mark.parametrize("breaks, expected", [
    (lambda d: shutil.copy(d / "train/crack/train0.png", d / "test/crack/copy.png"), "leakage"),
    (lambda d: shutil.rmtree(d / "val/stain"), "no class 'stain'"),
    (lambda d: (d / "test/stain/test0.png").write_bytes(b"broken"), "unreadable image"),
    (lambda d: (d / "val/rust").mkdir(), "class 'rust' has no image"),
])
def test_broken_data_stops_before_any_training(tmp_path, breaks, expected):
    workflow = classification_workflow(tmp_path / "wf")
    _user_config(workflow, _user_tree(tmp_path, broken=breaks))
    result = workflow.snakemake("--cores", "2", check=False)
    assert result.returncode != 0
    logs = "".join(p.read_text() for p in (workflow.root / ROOT / "logs/data").glob("check_*.log"))
    assert expected in logs and "Fix:" in logs
    assert not (workflow.root / ROOT / "runs").exists()


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["grid"].update(resolutions=[36]), "not a multiple of dinov3_demo's patch size 8"),
    (lambda c: c["models"]["resnet"].update(architecture="segformer_demo"), "is a segmentation model"),
    (lambda c: c["models"]["mobilevit"]["training"]["augmentation"].update(mosaic=0.5),
     "are not classification augmentations"),
    (lambda c: c["models"]["mobilevit"]["training"].update(select_metric="mIoU"), "is not a classification metric"),
    (lambda c: c["dataset"].update(source="imagefolder", splits={"train": "nope", "val": "nope", "test": "x.csv"}),
     "dataset.splits.train: 'nope' is not a folder"),
    (lambda c: c["loss"].update(dice_weight=0.5), "are segmentation settings"),
    (lambda c: c["loss"].update(class_weights="median_frequency"), "['class_weights'] are segmentation settings"),
])
def test_a_bad_classification_config_is_refused_with_its_key(tmp_path, edit, expected):
    workflow = classification_workflow(tmp_path / "wf")
    config = workflow.config()
    edit(config)
    workflow.write_config(config)
    result = workflow.snakemake("-n", check=False)
    assert result.returncode != 0 and expected in result.stdout + result.stderr


def test_lint_is_clean(tmp_path):
    workflow = classification_workflow(tmp_path / "wf")
    result = workflow.snakemake("--lint", check=False)
    assert result.returncode == 0 and "Lints for" not in result.stdout, result.stdout


def test_a_classification_run_through_slurm_gives_the_local_numbers(cluster, finished: Workflow, tmp_path):
    """The same run as SLURM jobs (profiles/slurm): its metrics byte for byte the local run's."""
    target = f"{ROOT}/runs/dinov3/32px/base/seed0/metrics.json"
    workflow = classification_workflow(tmp_path / "wf")
    config = workflow.config()
    config["compute"]["jobs"] = {kind: {"mem_mb": 1500, "runtime": 20} for kind in ("training", "evaluation", "light")}
    workflow.write_config(config)
    done = subprocess.run(
        ["snakemake", target, "--profile", "profiles/slurm", "--jobs", "4", "--slurm-no-account",
         "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
         "--default-resources", "slurm_partition=test", "mem_mb=500", "runtime=10", "--latency-wait", "5"],
        cwd=workflow.root, env={**cluster.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "train_classifier" in done.stderr and "has been submitted with SLURM jobid" in done.stderr
    metrics = json.loads((workflow.root / target).read_text())
    local = json.loads((finished.root / target).read_text())
    metrics.pop("provenance"), local.pop("provenance")  # the hosts' names and paths differ
    assert metrics == local


def test_tracking_replays_a_classification_run_into_tensorboard(finished: Workflow):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = finished.config()
    config["tracking"] = {"tensorboard": True}
    finished.write_config(config)
    target = f"{ROOT}/tracking/dinov3/32px/base/seed0/tracked.json"
    try:
        finished.snakemake(target, "--cores", "1")
        assert {job[0] for job in finished.planned_jobs()} <= {"track_run", "all"}  # no result reruns
    finally:
        finished.write_config(tiny_classification_config())
    events = EventAccumulator(str(finished.root / f"{ROOT}/tensorboard/dinov3/32px/base/seed0"))
    events.Reload()
    metrics = json.loads((finished.root / RUNS[2] / "metrics.json").read_text())["metrics"]
    assert events.Scalars("test/accuracy")[0].value == pytest.approx(metrics["accuracy"], rel=1e-6)
    assert "test/F1/NORMAL" in events.Tags()["scalars"]
    assert len(events.Scalars("train/val_accuracy")) >= 1


def test_the_report_targets_of_both_kinds_build(finished: Workflow):
    assert finished.planned_jobs("report") <= {("report", "")}
    finished.snakemake("--report", "snakemake_report.html", "--cores", "1")
    assert (finished.root / "snakemake_report.html").stat().st_size > 10_000
