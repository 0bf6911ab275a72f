"""The workflow end to end on a tiny config: targets, metric fields, reruns, config errors, lint."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import Workflow
from test_report import compile_latex

from detstudy.study.figure_kinds import CROSS_RUN_FIGURE_KINDS, VIT_FIGURE_KINDS

pytestmark = pytest.mark.workflow

MODELS = ("frcnn_resnet18", "frcnn_efficientnet_b0", "deimv2")
RUNS = [f"results/runs/{m}/64px/base/seed0" for m in MODELS]
FIGURES = ("training_curves", "per_class_ap", "pr_curves", "confusion_matrix", "errors", "predictions")
COCO_KEYS = {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}


def test_every_target_is_built(finished_workflow: Workflow):
    root = finished_workflow.root
    for run in RUNS:
        for name in ("best.pt", "history.csv", "metrics.json", "detections.json", "speed.json", "statistics.json",
                     "bootstrap.npz"):
            assert (root / run / name).stat().st_size > 0, f"{run}/{name}"
        for kind in FIGURES:
            assert (root / run / "figures" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
        assert (root / run.replace("results/runs", "results/logs") / "train.log").read_text().count("ETA") >= 1
        assert (root / run.replace("results/runs", "results/benchmarks") / "train.tsv").exists()
    for name in ("index.html", "report.md", "tables/runs.tex", "tables/per_class_ap50.tex", "tables/multimodal.tex",
                 "tables/errors.tex"):
        assert (root / "results/report" / name).stat().st_size > 0
    for name in ("checks/train.json", "checks/val.json", "checks/test.json", "statistics.json", "statistics.png"):
        assert (root / "results/data" / name).exists()
    for name in ("comparisons.json", "forest.png", "differences.png"):
        assert (root / "results/statistics" / name).stat().st_size > 0
    for kind in CROSS_RUN_FIGURE_KINDS:
        assert (root / "results/figures" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"
    for run in [r for r in RUNS if "/deimv2/" in r]:
        for kind in VIT_FIGURE_KINDS:
            assert (root / run / "figures" / f"{kind}.png").read_bytes()[:4] == b"\x89PNG"


def test_the_statistics_cover_every_cell_and_compare_with_the_baseline(finished_workflow: Workflow):
    root = finished_workflow.root
    comparisons = json.loads((root / "results/statistics/comparisons.json").read_text())
    assert len(comparisons["cells"]) == len(RUN_CELLS) and comparisons["settings"]["resamples"] == 200
    baseline = [(row["a"], row["b"]) for row in comparisons["tables"]["baseline"]]
    assert len(baseline) == len(RUN_CELLS) - 1 and {b for _, b in baseline} == {"frcnn_resnet18 · 64 px · base"}
    assert ("deimv2 · 64 px · joint", "deimv2 · 64 px · joint_notext") in {
        (row["a"], row["b"]) for row in comparisons["tables"]["multimodal"]}
    for run in RUNS:
        statistics = json.loads((root / run / "statistics.json").read_text())
        metrics = json.loads((root / run / "metrics.json").read_text())
        assert statistics["metrics"]["AP50"]["estimate"] == metrics["coco"]["AP50"]
        assert statistics["images"] == metrics["dataset"]["images"]
    html = (root / "results/report/index.html").read_text()
    assert "ΔAP50 vs frcnn_resnet18" in html and "confidence interval" in html


def test_the_error_breakdown_of_every_run_is_tidecvs(finished_workflow: Workflow):
    """Each run's TIDE breakdown from COCOeval's matches equals tidecv's own on its detections
    (on tidecv's recall grid; on COCOeval's, its AP50 is the metrics' AP50)."""
    from test_errors import _tidecv

    from detstudy.tasks.detection.evaluation.errors import ERRORS, SHORT_NAMES, error_breakdown
    from detstudy.tasks.detection.evaluation.metrics import coco_evaluator

    root = finished_workflow.root
    for run in RUNS:
        metrics = json.loads((root / run / "metrics.json").read_text())
        gt = json.loads((root / metrics["dataset"]["annotations"]).read_text())
        detections = json.loads((root / run / "detections.json").read_text())
        assert metrics["errors"]["AP50"] == pytest.approx(metrics["coco"]["AP50"], abs=1e-12)
        evaluator = coco_evaluator(gt, detections)
        evaluator.params.recThrs = [x / 100 for x in range(101)]
        ours = error_breakdown(evaluator)
        ap, main, special, counts = _tidecv(gt, detections)
        # tidecv also averages in the classes with boxes but no objects, at AP 0 whatever is fixed
        with_objects = {a["category_id"] for a in gt["annotations"]}
        share = len(with_objects) / len(with_objects | {d["category_id"] for d in detections})
        assert ours["AP50"] * share == pytest.approx(ap, abs=1e-9), run
        for name in ERRORS:
            assert ours["dAP"][name] * share == pytest.approx(main[SHORT_NAMES[name]], abs=1e-9), (run, name)
            assert ours["counts"][name] == counts[SHORT_NAMES[name]] == metrics["errors"]["counts"][name], (run, name)


def test_metrics_json_has_the_common_protocol_fields(finished_workflow: Workflow):
    metrics = json.loads((finished_workflow.root / RUNS[0] / "metrics.json").read_text())
    assert metrics["run"] == {"model": "frcnn_resnet18", "family": "cnn", "architecture": "fasterrcnn_resnet18_fpn",
                              "resolution": 64, "phase": "base", "seed": 0, "strategy": None, "stage": 0, "control": None,
                              "text": False, "imported": False}
    assert set(metrics["coco"]) == COCO_KEYS
    names = [c["name"] for c in metrics["per_class"]]
    assert names == ["NORMAL", "DEFORMACIONES", "ROTURA_FRACTURA", "RAYONES_ARANAZOS", "PERFORACIONES",
                     "CONTAMINACION"]
    assert all({"AP", "AP50"} <= set(c) for c in metrics["per_class"])
    points = metrics["operating_points"]
    assert points["configured"]["score_threshold"] == 0.3
    assert {"precision", "recall", "f1"} <= set(points["best_f1"])
    assert metrics["params"]["total"] > 1_000_000
    assert metrics["precision"] == "fp32"
    assert metrics["training"]["epochs"] == 1
    speed = json.loads((finished_workflow.root / RUNS[0] / "speed.json").read_text())
    assert speed["speed"]["device"] == "cpu" and speed["speed"]["latency_ms_per_image"] > 0
    assert speed["run"] == metrics["run"] and speed["train_seconds"] > 0
    assert speed["speed"]["gflops"] > 0.1 and speed["speed"]["memory"] == "cpu_peak_rss"
    assert speed["speed"]["peak_memory_mb"] > 100 and speed["train_peak_memory_mb"] > 100
    assert speed["train_images_per_second"] > 0
    provenance = metrics["provenance"]
    assert provenance["config"]["model"]["architecture"] == "fasterrcnn_resnet18_fpn"
    assert provenance["config"]["resolution"] == 64 and provenance["config"]["evaluation"]["score_threshold"] == 0.3
    assert set(provenance["dataset"]) == {"train", "val", "test"} and provenance["device"]["type"] == "cpu"
    for split, checksum in provenance["dataset"].items():  # hashed once, by the split's check
        check = json.loads((finished_workflow.root / f"results/data/checks/{split}.json").read_text())
        assert checksum == check["checksum"] and re.fullmatch(r"[0-9a-f]{64}", checksum["images_sha256"])
    assert provenance["versions"]["torch"] and "git" in provenance


def test_vit_run_uses_the_same_protocol(finished_workflow: Workflow):
    metrics = json.loads((finished_workflow.root / RUNS[2] / "metrics.json").read_text())
    assert metrics["run"]["family"] == "vit" and metrics["run"]["architecture"] == "deimv2_demo"
    assert set(metrics["coco"]) == COCO_KEYS and len(metrics["per_class"]) == 6
    history = (finished_workflow.root / RUNS[2] / "history.csv").read_text().splitlines()
    assert "loss_mal" in history[0] and len(history) == 2
    log = (finished_workflow.root / "results/logs/deimv2/64px/base/seed0/train.log").read_text()
    assert "training deimv2_demo" in log and "ETA" in log


def test_report_names_every_run(finished_workflow: Workflow):
    html = (finished_workflow.root / "results/report/index.html").read_text()
    for model in MODELS:
        assert model in html
    assert ">ViT<" in html and ">CNN<" in html
    assert "ROTURA_FRACTURA" in html and "data:image/png;base64," in html
    tex = (finished_workflow.root / "results/report/tables/runs.tex").read_text()
    assert "\\toprule" in tex and "\\bottomrule" in tex
    compile_latex(finished_workflow.root / "results/report/tables")


def test_the_report_opens_in_a_browser(finished_workflow: Workflow, tmp_path):
    """Headless Chromium loads the page: every section the contents list, every table with rows,
    every figure decoded; the full-page screenshot lands in $DETSTUDY_SCREENSHOTS (or tmp)."""
    from detstudy.report.browser import find_browser, open_report

    if find_browser() is None:
        pytest.skip("no chromium + chromedriver (tests/system_packages.sh installs them)")
    folder = Path(os.environ.get("DETSTUDY_SCREENSHOTS") or tmp_path)
    page = open_report(finished_workflow.root / "results/report/index.html", folder / "report.png")
    assert set(page.toc) <= set(page.sections) and len(page.toc) >= 8
    assert {"comparison", "per-class", "errors", "multimodal", "runs", "provenance"} <= set(page.sections)
    assert sum(section.startswith("run-") for section in page.sections) == len(RUN_CELLS)
    assert {t["id"] for t in page.tables} >= {"table-runs", "table-errors"}
    assert all(t["rows"] >= 2 for t in page.tables), page.tables
    assert page.broken == [] and page.images >= len(RUN_CELLS) * len(FIGURES)
    assert page.screenshot.read_bytes()[:4] == b"\x89PNG" and page.screenshot.stat().st_size > 100_000


def test_nothing_reruns_after_a_complete_run(finished_workflow: Workflow):
    assert finished_workflow.planned_jobs() == set()


def test_changed_learning_rate_reruns_only_that_model(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["models"]["frcnn_resnet18"]["training"].update(lr=0.002))
    assert jobs == {("train_cnn", "frcnn_resnet18"), ("evaluate", "frcnn_resnet18"), ("latency", "frcnn_resnet18"),
                    ("run_figures", "frcnn_resnet18"), ("run_statistics", "frcnn_resnet18"), ("comparisons", ""),
                    ("statistics_figures", ""), ("cross_run_figures", ""), ("report", ""), ("all", "")}


def test_changed_augmentation_reruns_only_the_vit_model_and_its_multimodal_chain(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["models"]["deimv2"]["training"]["augmentation"].update(mosaic=0.0))
    assert jobs == {("train_vit", "deimv2"), ("evaluate", "deimv2"), ("latency", "deimv2"), ("run_figures", "deimv2"),
                    ("run_statistics", "deimv2"), ("comparisons", ""), ("statistics_figures", ""), ("report", ""),
                    ("train_phase", "deimv2"), ("train_joint", "deimv2"), ("multimodal_figures", "deimv2"),
                    ("vit_attention", "deimv2"), ("cross_run_figures", ""), ("all", "")}


def test_tracking_logs_every_run_and_changes_no_result(finished_workflow: Workflow, tmp_path):
    """MLflow (a SQLite store) and TensorBoard on: only the tracking jobs run, every run lands
    under this invocation's parent run, and every metrics.json keeps its bytes."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    root = finished_workflow.root
    before = {path: path.read_bytes() for path in root.glob("results/runs/**/metrics.json")}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    original = finished_workflow.config()
    config = json.loads(json.dumps(original))
    config["tracking"] = {"mlflow": {"uri": uri, "experiment": "tiny"}, "tensorboard": True}
    finished_workflow.write_config(config)
    try:
        assert finished_workflow.planned_jobs() == _every("track_run") | {("all", "")}
        finished_workflow.snakemake("--cores", "2")
    finally:
        finished_workflow.write_config(original)
    parent = json.loads((root / "results/tracking/parent.json").read_text())["run_id"]
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                              filter_string="tags.`detstudy.kind` = 'run'")
    assert len(runs) == len(RUN_CELLS) and {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent}
    assert all(r.data.metrics["test/AP50"] >= 0 for r in runs)
    assert len(list(root.glob("results/tensorboard/**/events.out.tfevents.*"))) == len(RUN_CELLS)
    assert {path: path.read_bytes() for path in root.glob("results/runs/**/metrics.json")} == before
    assert finished_workflow.planned_jobs() == set()  # tracking off again: nothing to do


def test_snakemake_report_builds(finished_workflow: Workflow):
    finished_workflow.snakemake("--report", "snakemake_report.html", "--cores", "1")
    assert (finished_workflow.root / "snakemake_report.html").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["evaluation"].update(score_threshhold=0.5), "score_threshhold"),
        (lambda c: c["models"]["frcnn_resnet18"]["training"].update(lr="fast"), "lr"),
        (lambda c: c["models"]["frcnn_resnet18"]["model"].update(fpn_channel=8), "fpn_channel"),
        (lambda c: c["grid"].update(models=["frcnn_resnet18", "yolo"]), "yolo"),
        (lambda c: c["models"]["frcnn_resnet18"].update(architecture="fasterrcnn_vgg"), "fasterrcnn_vgg"),
        (lambda c: c["models"]["deimv2"]["model"].update(fpn_channels=8), "fpn_channels"),
        (lambda c: c["grid"].update(resolutions=[80]), "80 px does not suit model 'deimv2'"),
        (lambda c: c["models"]["deimv2"]["training"]["augmentation"].update(epochs=[0, 2, 1]),
         "models.deimv2.training.augmentation.epochs: [0, 2, 1]"),
        (lambda c: c["models"]["deimv2"]["model"].update(backbone_weights="weights/vitt_distill.pt"),
         "models.deimv2.model.backbone_weights: 'weights/vitt_distill.pt' is not a file"),
        (lambda c: c["dataset"].update(source="coco", coco={
            split: {"annotations": f"missing/{split}.json", "images": "missing"} for split in ("train", "val", "test")}),
         "dataset.coco.train.annotations: 'missing/train.json' does not exist"),
        (lambda c: c["statistics"].update(resamples=50), "50 is less than the minimum of 100"),
        (lambda c: c["statistics"].update(baseline="yolo"), "statistics.baseline: 'yolo' is not a model of grid.models"),
        (lambda c: c["statistics"].update(pairs=[{"a": {"model": "deimv2", "resolution": 64, "phase": "phase3"},
                                                  "b": {"model": "deimv2", "resolution": 64}}]),
         "statistics.pairs[0].a: {'model': 'deimv2', 'resolution': 64, 'phase': 'phase3'} is not a run of the grid"),
    ],
    ids=["unknown-key", "wrong-type", "unknown-model-setting", "unknown-grid-model", "unknown-architecture",
         "cnn-setting-on-vit", "vit-resolution", "augmentation-windows", "missing-backbone-file", "missing-dataset",
         "too-few-resamples", "unknown-baseline", "pair-outside-the-grid"],
)
def test_bad_config_is_rejected_with_the_key(workflow: Workflow, edit, expected):
    config = workflow.config()
    edit(config)
    workflow.write_config(config)
    result = workflow.snakemake("-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_lint_is_clean(workflow: Workflow):
    result = workflow.snakemake("--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def _user_dataset(workflow: Workflow, tmp_path):
    """The tiny synthetic data re-labelled with non-contiguous category ids, as a user's COCO dataset."""
    from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset

    paths = generate_synthetic_dataset(tmp_path / "user", seed=5, split_sizes={"train": 4, "val": 2, "test": 2}, image_size=64)
    for split in paths.values():
        coco = json.loads(open(split["annotations"]).read())
        for item in coco["categories"] + coco["annotations"]:
            key = "id" if "name" in item else "category_id"
            item[key] = item[key] * 10 + 3
        with open(split["annotations"], "w") as handle:
            json.dump(coco, handle)
    config = workflow.config()
    config["dataset"] = {"name": "user", "source": "coco", "coco": paths}
    workflow.write_config(config)
    return paths


def test_user_coco_dataset_is_checked_and_described(workflow: Workflow, tmp_path):
    _user_dataset(workflow, tmp_path)
    assert ("generate_synthetic_dataset", "") not in workflow.planned_jobs()
    workflow.snakemake("results/data/statistics.json", "--cores", "1")
    statistics = json.loads((workflow.root / "results/data/statistics.json").read_text())
    assert [c["id"] for c in statistics["categories"]] == [13, 23, 33, 43, 53, 63]


def test_replaced_image_of_a_user_dataset_reruns_only_its_split_check(workflow: Workflow, tmp_path):
    paths = _user_dataset(workflow, tmp_path)
    workflow.snakemake("results/data/statistics.json", "--cores", "2")
    image = Path(paths["test"]["images"]) / json.loads(open(paths["test"]["annotations"]).read())["images"][0]["file_name"]
    original, stat = image.read_bytes(), image.stat()
    _repaint_one_pixel(image)
    planned = workflow.planned_jobs("results/data/statistics.json", keys=("split",))
    assert planned == {("check_split", "test"), ("dataset_statistics", "")}
    image.write_bytes(original)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the file as it was: nothing to redo
    assert workflow.planned_jobs("results/data/statistics.json") == set()


def _remove_first_image_file(paths, split):
    coco = json.loads(open(paths[split]["annotations"]).read())
    (Path(paths[split]["images"]) / coco["images"][0]["file_name"]).unlink()
    return coco["images"][0]["file_name"]


def _edit_annotations(paths, split, edit):
    path = Path(paths[split]["annotations"])
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))


def _rename_second_category(coco):
    coco["categories"][1]["name"] = "DENTS"


def _empty(coco):
    coco["images"], coco["annotations"] = [], []


def _box_outside(coco):
    coco["annotations"][0]["bbox"] = [50.0, 50.0, 40.0, 40.0]  # the images are 64 px


@pytest.mark.parametrize(
    ("split", "breaks", "expected"),
    [
        ("val", _remove_first_image_file, ["Fix:"]),
        ("test", lambda p, s: Path(p[s]["annotations"]).write_text('{"images": [}'), ["not valid JSON", "Fix:"]),
        ("val", lambda p, s: _edit_annotations(p, s, _rename_second_category),
         ["'DENTS'", "train.json", "Fix: export every split with the same category list"]),
        ("test", lambda p, s: _edit_annotations(p, s, _empty), ["split 'test' has no images", "Fix:"]),
        ("train", lambda p, s: _edit_annotations(p, s, _box_outside), ["annotation", "outside", "Fix:"]),
    ],
    ids=["missing-image", "not-json", "categories-differ", "empty-split", "box-outside-image"],
)
def test_broken_dataset_stops_before_any_training(workflow: Workflow, tmp_path, split, breaks, expected):
    paths = _user_dataset(workflow, tmp_path)
    item = breaks(paths, split)
    result = workflow.snakemake("--cores", "2", check=False)
    assert result.returncode != 0
    log = (workflow.root / f"results/logs/data/check_{split}.log").read_text()
    for fragment in [f"{split}.json", *expected] + ([item] if isinstance(item, str) else []):
        assert fragment in log, f"{fragment!r} not in the {split} check's log:\n{log}"
    results = workflow.root / "results"
    assert not (results / f"data/checks/{split}.json").exists()
    assert not list(results.glob("logs/*/*/*/*/train.log")) and not (results / "state").exists()
    assert not list(results.glob("runs/**/*.*"))
    assert not [p for p in results.rglob(".*")], "a temporary file was left behind"


def _every(rule: str) -> set[tuple[str, str]]:
    return {(rule, model) for model in MODELS}


#: what reruns once the test metrics of every run change: the statistics, their figures, the report
STATISTICS = _every("run_statistics") | {("comparisons", ""), ("statistics_figures", "")}
#: what a figure setting or the figure code redraws besides the per-run figures
FIGURES_ONWARD = {("multimodal_figures", "deimv2"), ("statistics_figures", ""), ("vit_attention", "deimv2"),
                  ("cross_run_figures", ""), ("report", ""), ("all", "")}


def test_changed_score_threshold_reruns_evaluation_onward_without_retraining(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["evaluation"].update(score_threshold=0.4))
    assert jobs == _every("evaluate") | _every("run_figures") | STATISTICS | {
        ("multimodal_figures", "deimv2"), ("cross_run_figures", ""), ("report", ""), ("all", "")}


def test_changed_evaluation_precision_reruns_evaluation_onward_without_retraining(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["evaluation"].update(precision="bfloat16"))
    assert jobs == _every("evaluate") | _every("latency") | _every("run_figures") | STATISTICS | {
        ("multimodal_figures", "deimv2"), ("cross_run_figures", ""), ("report", ""), ("all", "")}


def test_changed_figure_style_reruns_figures_and_report_only(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["figures"].update(dpi=61))
    assert jobs == _every("run_figures") | FIGURES_ONWARD


def test_changed_attention_settings_redraw_the_vit_figures_and_the_report_only(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["figures"].update(attention={"images": 1, "detections": 2}))
    assert jobs == {("vit_attention", "deimv2"), ("report", ""), ("all", "")}


def test_changed_preview_size_rerenders_the_report_only(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["report"].update(preview_width=600))
    assert jobs == {("report", ""), ("all", "")}


def test_changed_resample_count_reruns_the_statistics_and_the_report_only(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["statistics"].update(resamples=300))
    assert jobs == STATISTICS | {("cross_run_figures", ""), ("report", ""), ("all", "")}  # its whiskers


def test_changed_baseline_reruns_the_comparisons_and_the_report_only(finished_workflow: Workflow):
    jobs = finished_workflow.planned_after(lambda c: c["statistics"].update(baseline="deimv2"))
    assert jobs == {("comparisons", ""), ("statistics_figures", ""), ("cross_run_figures", ""), ("report", ""),
                    ("all", "")}


def test_edited_report_template_reruns_the_report_only(finished_workflow: Workflow):
    template = finished_workflow.root / "report/templates/report.md.j2"
    original = template.read_text()
    template.write_text(original + "\n")
    try:
        assert finished_workflow.planned_jobs() == {("report", ""), ("all", "")}
    finally:
        template.write_text(original)


def test_added_resolution_trains_only_the_new_cells(finished_workflow: Workflow):
    original = finished_workflow.config()
    config = json.loads(json.dumps(original))
    config["grid"]["resolutions"] = [64, 96]
    finished_workflow.write_config(config)
    try:
        output = finished_workflow.snakemake("-n", "--cores", "1").stdout
    finally:
        finished_workflow.write_config(original)
    resolutions = set(re.findall(r"wildcards: .*?resolution=(\d+)", output))
    assert resolutions == {"96"}  # nothing of the finished 64 px cells reruns
    for rule in ("train_cnn", "train_vit", "train_phase", "multimodal_figures", "report"):
        assert f"rule {rule}:" in output


def _planned_after_code_edit(workflow: Workflow, module: str) -> set[tuple[str, str]]:
    """The jobs a dry run plans once a package module got a comment; its text is restored after."""
    source = workflow.root / "src/detstudy" / module
    original = source.read_text()
    source.write_text(original + "\n# an edit\n")
    try:
        return workflow.planned_jobs()
    finally:
        source.write_text(original)


def test_edited_package_code_reruns_the_jobs_that_run_it(finished_workflow: Workflow):
    jobs = _planned_after_code_edit(finished_workflow, "tasks/detection/plots.py")  # the per-run and multimodal figures
    assert jobs == _every("run_figures") | {("multimodal_figures", "deimv2"), ("report", ""), ("all", "")}
    jobs = _planned_after_code_edit(finished_workflow, "engine/figure_style.py")  # every figure
    assert jobs == _every("run_figures") | FIGURES_ONWARD
    jobs = _planned_after_code_edit(finished_workflow, "tasks/detection/models/deimv2_attention.py")
    assert jobs == {("vit_attention", "deimv2"), ("report", ""), ("all", "")}
    jobs = _planned_after_code_edit(finished_workflow, "statistics/intervals.py")
    assert jobs == STATISTICS | {("cross_run_figures", ""), ("report", ""), ("all", "")}  # the whiskers


def test_edited_report_code_reruns_the_report_only(finished_workflow: Workflow):
    """The figures name phases through the chain, not the report: editing render.py redraws nothing."""
    assert _planned_after_code_edit(finished_workflow, "report/render.py") == {("report", ""), ("all", "")}


RUN_CELLS = {(m, "base") for m in MODELS} | {
    ("deimv2", p) for p in ("phase1", "phase2", "phase2_notext", "joint", "joint_notext")}


def _per_run(*rules: str) -> set[tuple[str, ...]]:
    return {(rule, model, phase, "") for rule in rules for model, phase in RUN_CELLS}


#: the ViT figures of every DEIMv2 run (drawn on test images)
VIT_RUNS = {("vit_attention", model, phase, "") for model, phase in RUN_CELLS if model == "deimv2"}


def _planned_after_file_edit(workflow: Workflow, path, edit) -> set[tuple[str, ...]]:
    """The jobs a dry run plans once ``edit(path)`` changed a dataset file; its bytes are restored after."""
    original = path.read_bytes()
    edit(path)
    try:
        return workflow.planned_jobs(keys=("model", "phase", "split"))
    finally:
        path.write_bytes(original)  # same bytes again: Snakemake compares contents, nothing reruns


def _repaint_one_pixel(path):
    from PIL import Image

    image = Image.open(path).convert("RGB")
    image.putpixel((0, 0), tuple(255 - v for v in image.getpixel((0, 0))))
    image.save(path)


def test_edited_test_image_reruns_its_check_and_the_evaluations_without_retraining(finished_workflow: Workflow):
    image = finished_workflow.root / "results/data/synthetic/images/test/test_00001.png"
    jobs = _planned_after_file_edit(finished_workflow, image, _repaint_one_pixel)
    assert jobs == _per_run("evaluate", "run_figures", "run_statistics") | VIT_RUNS | {
        ("comparisons", "", "", ""), ("statistics_figures", "", "", ""), ("cross_run_figures", "", "", ""),
        ("check_split", "", "", "test"), ("dataset_statistics", "", "", ""),
        ("multimodal_figures", "deimv2", "", ""), ("report", "", "", ""), ("all", "", "", "")}
    assert finished_workflow.planned_jobs() == set()  # restored bytes: up to date again


def test_edited_training_split_reruns_everything(finished_workflow: Workflow):
    def shrink_first_box(path):
        coco = json.loads(path.read_text())
        coco["annotations"][0]["bbox"][2] -= 1
        path.write_text(json.dumps(coco))

    everything = finished_workflow.planned_jobs("--forceall", keys=("model", "phase", "split"))
    annotations = finished_workflow.root / "results/data/synthetic/annotations/train.json"
    jobs = _planned_after_file_edit(finished_workflow, annotations, shrink_first_box)
    assert jobs == everything - {("generate_synthetic_dataset", "", "", "")}
    assert {("check_split", "", "", s) for s in ("train", "val", "test")} <= jobs  # val/test: same categories?
    assert _per_run("evaluate") <= jobs and ("train_phase", "deimv2", "phase2", "") in jobs


def test_changed_thread_count_reruns_every_computing_job(finished_workflow: Workflow):
    """The intra-op thread count changes a run's sums, so it is a parameter of every job that
    computes (and the scheduler's --cores no longer decides it)."""
    everything = finished_workflow.planned_jobs("--forceall", keys=("model", "phase", "split"))
    jobs = finished_workflow.planned_after(lambda c: c["compute"].update(threads=c["compute"]["threads"] + 1),
                                           keys=("model", "phase", "split"))
    assert jobs == everything


def test_same_config_and_seed_give_byte_identical_metrics(workflow: Workflow):
    """Everything from the generated data to the metrics, twice: a CNN, the ViT and a text phase."""
    config = workflow.config()
    config["grid"]["models"] = ["frcnn_resnet18", "deimv2"]
    config["multimodal"].update(phases={"phase1": {"epochs": 1, "lr": 1e-3}}, controls=[])
    workflow.write_config(config)
    targets = [f"results/runs/{cell}/seed0/metrics.json"
               for cell in ("frcnn_resnet18/64px/base", "deimv2/64px/base", "deimv2/64px/phase1")]
    workflow.snakemake(*targets, "--cores", "2")
    outputs = [target.replace("metrics.json", name) for target in targets
               for name in ("metrics.json", "detections.json", "best.pt")]
    first = {output: (workflow.root / output).read_bytes() for output in outputs}
    workflow.snakemake(*targets, "--cores", "2", "--forceall")
    for output in outputs:
        assert (workflow.root / output).read_bytes() == first[output], output
    workflow.snakemake(targets[0].replace("metrics.json", "speed.json"), "--cores", "2")  # the latency job
    speed = json.loads((workflow.root / targets[0]).with_name("speed.json").read_text())
    assert speed["speed"]["latency_ms_per_image"] > 0  # the timings, which differ, live beside them



def test_two_seeds_are_pooled_with_both_sources_of_variance(workflow: Workflow):
    """A tiny two-seed grid through the statistics: the cell's mean, its seeds' spread, and an
    interval that resamples the seeds as well as the images."""
    config = workflow.config()
    config["grid"].update(models=["frcnn_resnet18", "frcnn_efficientnet_b0"], seeds=[0, 1])
    config.pop("multimodal")
    config["dataset"]["synthetic"]["splits"]["test"] = 6
    workflow.write_config(config)
    workflow.snakemake("results/statistics/comparisons.json", "--cores", "2")
    comparisons = json.loads((workflow.root / "results/statistics/comparisons.json").read_text())
    cells = {cell["model"]: cell for cell in comparisons["cells"]}
    assert set(cells) == {"frcnn_resnet18", "frcnn_efficientnet_b0"} and cells["frcnn_resnet18"]["seeds"] == [0, 1]
    runs = [json.loads((workflow.root / f"results/runs/frcnn_resnet18/64px/base/seed{s}/statistics.json").read_text())
            for s in (0, 1)]
    pooled = cells["frcnn_resnet18"]["metrics"]["AR100"]
    values = [run["metrics"]["AR100"]["estimate"] for run in runs]
    assert pooled["estimate"] == pytest.approx(sum(values) / 2)
    assert pooled["seed_sd"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)
    assert [(row["a"], row["b"]) for row in comparisons["tables"]["baseline"]] == [
        ("frcnn_efficientnet_b0 · 64 px · base", "frcnn_resnet18 · 64 px · base")]
