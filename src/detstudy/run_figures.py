"""The figures step of one run (everything drawn from its metrics, detections and history), and the
multimodal extension's cross-run figures of one (model, resolution, seed)."""

from __future__ import annotations

from typing import Any

from detstudy.data.coco import load_coco_json
from detstudy.figures import (plot_confusion_matrix, plot_error_breakdown, plot_pair_confusion, plot_per_class_ap,
                              plot_pr_curves,
                              plot_predictions, plot_text_similarity, plot_training_curves)
from detstudy.io import read_json
from detstudy.multimodal.chain import phase_label, run_label


def run_figures(*, metrics_json, detections_json, history_csv, annotations, images_dir,
                outputs: dict[str, str], score_threshold: float, style: dict[str, Any],
                prediction_images: int = 8) -> None:
    """Write the six per-run figures named in ``outputs`` (training_curves, per_class_ap,
    pr_curves, confusion_matrix, errors, predictions)."""
    metrics = read_json(metrics_json)
    run = metrics["run"]
    name = run_label(run)
    max_images = prediction_images
    best_by = f"val_{metrics.get('training', {}).get('select_metric', 'AP50')}"
    plot_training_curves(history_csv, outputs["training_curves"], best_by=best_by,
                         best_epoch=metrics.get("training", {}).get("best_epoch"),  # what best.pt holds
                         title=f"Training: {name}", style=style)
    plot_per_class_ap(metrics, outputs["per_class_ap"], title=f"Per-class AP (test): {name}", style=style)
    plot_pr_curves(metrics["pr_curves"], outputs["pr_curves"], title=f"Precision-recall, IoU 0.5: {name}",
                   style=style)
    plot_confusion_matrix(metrics["confusion"], outputs["confusion_matrix"],
                          title=f"Confusion at score >= {score_threshold}: {name}", style=style)
    plot_error_breakdown(metrics["errors"], outputs["errors"],
                         title=f"Where AP50 is lost (TIDE, IoU 0.5, test): {name}", style=style)
    plot_predictions(load_coco_json(annotations), read_json(detections_json), images_dir, outputs["predictions"],
                     score_threshold=score_threshold, max_images=max_images, seed=run["seed"],
                     title=f"Ground truth (green) vs predictions (orange): {name}", style=style)


def multimodal_figures(*, metrics_paths: list[str], phases: list[str], pair: list[str], similarity_png,
                       pair_confusion_png, style: dict[str, Any] | None = None) -> None:
    """Both cross-run figures of one (model, resolution, seed); ``metrics_paths[i]`` is the run of
    ``phases[i]``, in the order the figures show them (vanilla, controls, phases)."""
    if len(metrics_paths) != len(phases):
        raise ValueError(f"{len(metrics_paths)} metrics files for {len(phases)} phases {phases}: "
                         "the rule must give one metrics.json per phase, in the same order")
    runs = [(phase_label(phase), read_json(path)) for phase, path in zip(phases, metrics_paths)]
    style = {k: v for k, v in (style or {}).items() if k != "prediction_images"}
    first = runs[0][1]["run"] if runs else {}
    name = f"{first.get('model')} · {first.get('resolution')} px · seed {first.get('seed')}"
    plot_text_similarity([(label, m["text_similarity"]) for label, m in runs if m.get("text_similarity")],
                         similarity_png, style=style,
                         title=f"Query features vs class descriptions (test): {name}")
    plot_pair_confusion(runs, tuple(pair), pair_confusion_png, style=style,
                        title=f"{' / '.join(pair)} confusion: {name}")
