"""The segmentation study end to end on a tiny config (``task: segmentation``): targets, the one
protocol's numbers, statistics, report, rerun triggers, byte-identical reruns, kill and resume,
bad data stopped before any training."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import Workflow, copy_workflow

from detstudy.report.outputs import SEGMENTATION_LATEX_TABLES
from detstudy.study.figure_kinds import SEGMENTATION_CROSS_RUN_FIGURE_KINDS, SEGMENTATION_FIGURE_KINDS

pytestmark = pytest.mark.workflow

MODELS = ("convnext", "maxvit", "segformer")
RUNS = [f"results/segmentation/runs/{m}/64px/base/seed0" for m in MODELS]
TRAINING = {"epochs": 2, "batch_size": 4, "optimizer": "adamw", "lr": 0.002, "lr_schedule": "poly",
            "warmup_iters": 2, "augmentation": {"scale_range": [0.75, 1.25], "horizontal_flip": 0.5}}


def tiny_segmentation_config() -> dict:
    return {
        "task": "segmentation",
        "dataset": {"name": "tiny-masks", "source": "synthetic",
                    "synthetic": {"seed": 1, "image_size": 64, "splits": {"train": 8, "val": 4, "test": 6}}},
        "grid": {"models": list(MODELS), "resolutions": [64], "seeds": [0]},
        "models": {"convnext": {"architecture": "upernet_convnext_demo", "training": dict(TRAINING)},
                   "maxvit": {"architecture": "upernet_maxvit_demo", "training": dict(TRAINING)},
                   "segformer": {"architecture": "segformer_demo", "training": dict(TRAINING)}},
        "loss": {"class_weights": "inverse_log"},
        "evaluation": {"latency_images": 2},
        "compute": {"device": "cpu", "threads": 1},
        "statistics": {"resamples": 200, "baseline": "convnext"},
        "figures": {"dpi": 50, "prediction_images": 2},
        "report": {"title": "Tiny segmentation"},
    }


def segmentation_workflow(path: Path) -> Workflow:
    workflow = copy_workflow(path)
    workflow.write_config(tiny_segmentation_config())
    return workflow


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Workflow:
    workflow = segmentation_workflow(tmp_path_factory.mktemp("segmentation") / "wf")
    workflow.snakemake("--cores", "2", "--resources", "gpu=1")
    return workflow


def test_every_target_is_built(finished: Workflow):
    root = finished.root
    for run in RUNS:
        for name in ("best.pt", "history.csv", "metrics.json", "confusions.npz", "samples.npz", "speed.json",
                     "statistics.json", "bootstrap.npz"):
            assert (root / run / name).stat().st_size > 0, f"{run}/{name}"
        for kind in SEGMENTATION_FIGURE_KINDS:
            assert (root / run / "figures" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
        assert "ETA" in (root / run.replace("/runs/", "/logs/") / "train.log").read_text()
    for kind in SEGMENTATION_CROSS_RUN_FIGURE_KINDS:
        assert (root / "results/segmentation/figures" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
    for stem in SEGMENTATION_LATEX_TABLES:
        assert r"\begin{tabular}" in (root / "results/segmentation/report/tables" / f"{stem}.tex").read_text()
    assert not (root / "results/segmentation/report/tables/runs.tex").exists()  # no detection table


def test_metrics_hold_the_one_protocol_and_the_statistics_agree(finished: Workflow):
    from detstudy.tasks.segmentation.metrics import metrics_from_confusion

    root = finished.root
    for model, run in zip(MODELS, RUNS):
        metrics = json.loads((root / run / "metrics.json").read_text())
        assert metrics["run"]["model"] == model and metrics["task"] == "segmentation"
        assert metrics["protocol"]["classes"][0] == "background" and metrics["protocol"]["images"] == 6
        stored = np.load(root / run / "confusions.npz")
        assert metrics["metrics"] == metrics_from_confusion(stored["confusions"].sum(axis=0), metrics["protocol"]["classes"])
        assert metrics["training"]["select_metric"] == "mIoU" and metrics["training"]["best_epoch"] in (1, 2)
        assert metrics["provenance"]["dataset"]["test"]["pairs"] == 6
        statistics = json.loads((root / run / "statistics.json").read_text())
        assert statistics["metrics"]["mIoU"]["estimate"] == pytest.approx(metrics["metrics"]["mIoU"], abs=1e-12)
        speed = json.loads((root / run / "speed.json").read_text())["speed"]
        assert speed["latency_ms_per_image"] > 0 and speed["gflops"] > 0 and speed["checkpoint_mb"] > 0
    families = {json.loads((root / run / "metrics.json").read_text())["run"]["family"] for run in RUNS}
    assert families == {"cnn", "hybrid", "vit"}


def test_the_comparisons_and_the_report_use_the_cnn_baseline(finished: Workflow):
    root = finished.root
    comparisons = json.loads((root / "results/segmentation/statistics/comparisons.json").read_text())
    assert list(comparisons["cells"][0]["metrics"]) == ["mIoU", "mDice", "aAcc", "mAcc"]
    assert {row["b"] for row in comparisons["tables"]["baseline"]} == {"convnext · 64 px · base"}
    assert len(comparisons["tables"]["baseline"]) == 2
    html = (root / "results/segmentation/report/index.html").read_text()
    assert "ΔmIoU vs convnext" in html and "Hybrid" in html and "Per-class IoU" in html
    markdown = (root / "results/segmentation/report/report.md").read_text()
    assert "| background |" in markdown and "inverse_log" in markdown
    dataset = json.loads((root / "results/segmentation/data/statistics.json").read_text())
    train = json.loads((root / "results/segmentation/data/checks/train.json").read_text())
    assert [e["pixels"] for e in dataset["splits"]["train"]["per_class"]] == \
        [e["pixels"] for e in train["counts"]["per_class"]]
    checkpoint = torch.load(root / RUNS[0] / "best.pt", weights_only=True)
    assert checkpoint["class_weights"] == pytest.approx(dataset["class_weights"]["values"], abs=1e-6)


def test_the_latex_tables_compile(finished: Workflow):
    from test_report import compile_latex

    compile_latex(finished.root / "results/segmentation/report/tables")


def test_nothing_reruns_after_a_complete_run(finished: Workflow):
    assert finished.planned_jobs() == set()


def _every(*rules: str) -> set[tuple[str, str]]:
    return {(rule, model) for rule in rules for model in MODELS}


SHARED = {("comparisons", ""), ("statistics_figures", ""), ("segmentation_cross_run_figures", ""),
          ("segmentation_report", ""), ("all", "")}


def test_a_changed_learning_rate_retrains_only_that_model(finished: Workflow):
    planned = finished.planned_after(lambda c: c["models"]["maxvit"]["training"].update(lr=0.001))
    per_run = ("train_segmenter", "evaluate_segmenter", "segmenter_latency", "segmentation_statistics",
               "segmentation_figures")
    assert planned == {(rule, "maxvit") for rule in per_run} | SHARED


def test_a_changed_loss_retrains_every_model_but_checks_no_data(finished: Workflow):
    planned = finished.planned_after(lambda c: c["loss"].update(dice_weight=0.5))
    assert ("train_segmenter", "segformer") in planned and not {j for j in planned if j[0] == "check_mask_split"}
    assert _every("train_segmenter") <= planned


def test_a_changed_class_weight_method_redescribes_the_data_and_retrains(finished: Workflow):
    planned = finished.planned_after(lambda c: c["loss"].update(class_weights="median_frequency"))
    assert ("mask_statistics", "") in planned and _every("train_segmenter") <= planned


def test_a_changed_inference_mode_reevaluates_and_revalidates(finished: Workflow):
    planned = finished.planned_after(lambda c: c["evaluation"].update(inference="slide"))
    # validation predicts the same way as the test, so the training reruns too: it picks the best epoch by it
    assert _every("train_segmenter", "evaluate_segmenter", "segmenter_latency") <= planned
    assert not {job for job in planned if job[0] in ("check_mask_split", "mask_statistics")}


def test_a_changed_resample_count_reruns_the_statistics_and_the_report_only(finished: Workflow):
    planned = finished.planned_after(lambda c: c["statistics"].update(resamples=300))
    assert planned == _every("segmentation_statistics") | SHARED


def test_figure_settings_redraw_the_figures_and_the_report_only(finished: Workflow):
    planned = finished.planned_after(lambda c: c["figures"].update(prediction_images=1))
    assert planned == _every("segmentation_figures") | {("segmentation_report", ""), ("all", "")}
    planned = finished.planned_after(lambda c: c["dataset"].update(colors=[[k, k, k] for k in range(7)]))
    assert planned == _every("segmentation_figures") | {("segmentation_report", ""), ("all", "")}


def test_an_edited_test_mask_reruns_its_check_and_the_evaluations_without_retraining(finished: Workflow):
    mask = finished.root / "results/segmentation/data/synthetic_masks/masks/test/test_00000.png"
    original = mask.read_bytes()
    pixels = np.asarray(Image.open(mask)).copy()
    pixels[0, 0] = 1 if pixels[0, 0] != 1 else 2
    Image.fromarray(pixels).save(mask)
    try:
        planned = finished.planned_jobs()
    finally:
        mask.write_bytes(original)
    assert ("check_mask_split", "") in planned and _every("evaluate_segmenter") <= planned
    assert not {job for job in planned if job[0] == "train_segmenter"}


def test_same_config_and_seed_give_byte_identical_results(tmp_path):
    workflow = segmentation_workflow(tmp_path / "wf")
    config = workflow.config()
    config["grid"]["models"] = ["segformer"]
    config["statistics"]["baseline"] = None
    workflow.write_config(config)
    targets = ["results/segmentation/runs/segformer/64px/base/seed0/metrics.json", "results/segmentation/runs/segformer/64px/base/seed0/best.pt"]
    workflow.snakemake(*targets, "--cores", "2")
    first = {target: (workflow.root / target).read_bytes() for target in targets}
    workflow.snakemake(*targets, "--cores", "2", "--forceall")
    for target in targets:  # the checkpoint too: its file holds no trace of its temporary name
        assert (workflow.root / target).read_bytes() == first[target], target


def test_a_killed_training_job_resumes_with_rerun_incomplete(tmp_path):
    target = "results/segmentation/runs/convnext/64px/base/seed0/best.pt"
    runs = {}
    for name in ("straight", "killed"):
        workflow = segmentation_workflow(tmp_path / name)
        config = workflow.config()
        config["models"]["convnext"]["training"].update(epochs=5)
        workflow.write_config(config)
        runs[name] = workflow
    runs["straight"].snakemake(target, "--cores", "1")
    killed = runs["killed"]
    state = killed.root / "results/segmentation/state/convnext/64px/base/seed0/state.pt"
    killed.kill_once_state_exists(target, state)
    assert torch.load(state, weights_only=True)["epoch"] < 5
    killed.snakemake("--unlock")
    killed.snakemake(target, "--cores", "1", "--rerun-incomplete")
    assert "resuming after epoch" in (killed.root / "results/segmentation/logs/convnext/64px/base/seed0/train.log").read_text()
    straight = torch.load(runs["straight"].root / target, weights_only=True)["model"]
    resumed = torch.load(killed.root / target, weights_only=True)["model"]
    assert all(torch.equal(value, resumed[key]) for key, value in straight.items())


def _user_dataset(root: Path, *, broken=None) -> dict:
    """Three splits of images and masks in folders, as a user brings them."""
    rng = np.random.default_rng(0)
    folders = {}
    for split, count in (("train", 6), ("val", 3), ("test", 3)):
        images, masks = root / "data" / split / "images", root / "data" / split / "masks"
        images.mkdir(parents=True)
        masks.mkdir(parents=True)
        for k in range(count):
            Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(images / f"{split}{k}.jpg")
            mask = rng.integers(0, 3, (64, 80), dtype=np.uint8)
            mask[:4] = 255
            Image.fromarray(mask).save(masks / f"{split}{k}.png")
        folders[split] = {"images": str(images), "masks": str(masks)}
    if broken:
        broken(root / "data")
    return folders


def _user_config(workflow: Workflow, folders: dict) -> None:
    config = workflow.config()
    config["dataset"] = {"name": "mine", "source": "folders", "folders": folders,
                         "classes": ["clean", "crack", "stain"]}
    config["grid"]["models"] = ["segformer"]
    config["statistics"]["baseline"] = None
    workflow.write_config(config)


def test_a_user_dataset_of_folders_runs_through(tmp_path):
    workflow = segmentation_workflow(tmp_path / "wf")
    _user_config(workflow, _user_dataset(tmp_path))
    workflow.snakemake("results/segmentation/runs/segformer/64px/base/seed0/metrics.json", "results/segmentation/data/statistics.json",
                       "--cores", "2")
    metrics = json.loads((workflow.root / "results/segmentation/runs/segformer/64px/base/seed0/metrics.json").read_text())
    assert metrics["protocol"]["classes"] == ["clean", "crack", "stain"]
    # the mask's top rows are 255 (ignored): the metrics count every other pixel of the 3 test images
    assert metrics["metrics"]["pixels"] == 3 * 60 * 80


@pytest.mark.parametrize("breaks, expected", [
    (lambda d: (d / "test/masks/test0.png").unlink(), "no mask"),
    (lambda d: Image.fromarray(np.full((64, 80), 7, np.uint8)).save(d / "val/masks/val1.png"), "values 7"),
    (lambda d: Image.fromarray(np.zeros((32, 80), np.uint8)).save(d / "train/masks/train2.png"), "80x32 px"),
])
def test_broken_data_stops_before_any_training(tmp_path, breaks, expected):
    workflow = segmentation_workflow(tmp_path / "wf")
    _user_config(workflow, _user_dataset(tmp_path, broken=breaks))
    result = workflow.snakemake("--cores", "2", check=False)
    assert result.returncode != 0
    logs = "".join(p.read_text() for p in (workflow.root / "results/segmentation/logs/data").glob("check_*.log"))
    assert expected in logs and "Fix:" in logs
    assert not (workflow.root / "results/segmentation/runs").exists()


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["dataset"].update(ignore_index=2), "ignore_index: 2 is class"),
    (lambda c: c["loss"].update(class_weights=[1.0, 2.0]), "2 weights for 7 classes"),
    (lambda c: c["grid"].update(resolutions=[70]), "not a multiple of 32"),
    (lambda c: c["models"]["convnext"].update(architecture="fasterrcnn_resnet18_fpn"), "is a detection model"),
    (lambda c: c["models"]["maxvit"]["training"]["augmentation"].update(mosaic=0.5), "are not segmentation augmentations"),
    (lambda c: c["models"]["maxvit"]["training"].update(select_metric="AP50"), "is not a segmentation metric"),
])
def test_a_bad_segmentation_config_is_refused_with_its_key(tmp_path, edit, expected):
    workflow = segmentation_workflow(tmp_path / "wf")
    config = workflow.config()
    edit(config)
    workflow.write_config(config)
    result = workflow.snakemake("-n", check=False)
    assert result.returncode != 0 and expected in result.stdout + result.stderr


def test_lint_is_clean(tmp_path):
    workflow = segmentation_workflow(tmp_path / "wf")
    result = workflow.snakemake("--lint", check=False)
    assert result.returncode == 0 and "Lints for" not in result.stdout, result.stdout


def test_a_segmentation_run_through_slurm_gives_the_local_numbers(cluster, finished: Workflow, tmp_path):
    """The same run as SLURM jobs (profiles/slurm): its metrics byte for byte the local run's."""
    target = "results/segmentation/runs/segformer/64px/base/seed0/metrics.json"
    workflow = segmentation_workflow(tmp_path / "wf")
    config = workflow.config()
    config["compute"]["jobs"] = {kind: {"mem_mb": 1500, "runtime": 20} for kind in ("training", "evaluation", "light")}
    workflow.write_config(config)
    done = subprocess.run(
        ["snakemake", target, "--profile", "profiles/slurm", "--jobs", "4", "--slurm-no-account",
         "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
         "--default-resources", "slurm_partition=test", "mem_mb=500", "runtime=10", "--latency-wait", "5"],
        cwd=workflow.root, env={**cluster.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "train_segmenter" in done.stderr and "has been submitted with SLURM jobid" in done.stderr
    metrics = json.loads((workflow.root / target).read_text())
    local = json.loads((finished.root / target).read_text())
    metrics.pop("provenance"), local.pop("provenance")  # the hosts' names and paths differ
    assert metrics == local


def test_tracking_replays_a_segmentation_run_into_tensorboard(finished: Workflow):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = finished.config()
    config["tracking"] = {"tensorboard": True}
    finished.write_config(config)
    target = "results/segmentation/tracking/segformer/64px/base/seed0/tracked.json"
    try:
        finished.snakemake(target, "--cores", "1")
        assert {job[0] for job in finished.planned_jobs()} <= {"track_run", "all"}  # no result reruns
    finally:
        finished.write_config(tiny_segmentation_config())
    events = EventAccumulator(str(finished.root / "results/segmentation/tensorboard/segformer/64px/base/seed0"))
    events.Reload()
    metrics = json.loads((finished.root / RUNS[2] / "metrics.json").read_text())["metrics"]
    assert events.Scalars("test/mIoU")[0].value == pytest.approx(metrics["mIoU"], rel=1e-6)
    assert "test/IoU/background" in events.Tags()["scalars"]
    assert len(events.Scalars("train/val_mIoU")) >= 1


def test_the_report_targets_of_both_kinds_build(finished: Workflow):
    """`snakemake report` (the study's report, up to date: nothing to do) and Snakemake's own
    `--report` with every figure's caption."""
    assert finished.planned_jobs("report") <= {("report", "")}
    finished.snakemake("--report", "snakemake_report.html", "--cores", "1")
    assert (finished.root / "snakemake_report.html").stat().st_size > 10_000
