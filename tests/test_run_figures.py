"""The run_figures step: which figure gets which inputs (the drawing itself: test_report, test_multimodal_report)."""

from __future__ import annotations

import collections
import inspect
import json

from detstudy.steps import run_figures as step
from detstudy.tasks.detection import plots


def test_every_plot_function_is_public():
    defined = {name for name, value in inspect.getmembers(plots, inspect.isfunction)
               if name.startswith("plot_") and value.__module__ == plots.__name__}
    assert defined <= set(plots.__all__)


def test_the_curves_mark_the_best_epoch_by_the_metric_training_selected_with(tmp_path, monkeypatch):
    """A metrics file without select_metric (an older run) was selected with the training
    default, AP: the curves mark val_AP, not AP50."""
    calls = {}
    for name in ("plot_training_curves", "plot_per_class_ap", "plot_pr_curves", "plot_confusion_matrix",
                 "plot_error_breakdown", "plot_predictions"):
        monkeypatch.setattr(step, name, lambda *args, _name=name, **kwargs: calls.setdefault(_name, kwargs))
    monkeypatch.setattr(step, "load_coco_json", lambda path: {})
    metrics = {"run": {"model": "frcnn_r18", "family": "cnn", "resolution": 64, "phase": "base", "seed": 0},
               "training": {"best_epoch": 3}, "pr_curves": [], "confusion": {}, "errors": {}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "detections.json").write_text("[]")
    run = dict(metrics_json=tmp_path / "metrics.json", detections_json=tmp_path / "detections.json",
               history_csv=tmp_path / "history.csv", annotations=tmp_path / "test.json", images_dir=tmp_path,
               outputs=collections.defaultdict(str), score_threshold=0.5, style={})
    step.run_figures(**run)
    assert calls["plot_training_curves"]["best_by"] == "val_AP"
    assert calls["plot_training_curves"]["best_epoch"] == 3
    metrics["training"]["select_metric"] = "AP50"
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    calls.clear()
    step.run_figures(**run)
    assert calls["plot_training_curves"]["best_by"] == "val_AP50"
