"""Evaluation metrics, confusion matrix and figures on small hand-made COCO dicts."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from detstudy.tasks.detection.evaluation.confusion import confusion_matrix
from detstudy.tasks.detection.evaluation.metrics import (
    best_f1_operating_point,
    box_iou_xywh,
    coco_evaluate,
    operating_point,
)

ROTURA, RAYONES = 3, 7  # non-contiguous dataset ids on purpose
CATEGORIES = [{"id": RAYONES, "name": "RAYONES_ARANAZOS"}, {"id": ROTURA, "name": "ROTURA_FRACTURA"}]


def make_gt(boxes, *, n_images=None, categories=CATEGORIES, with_area=False):
    """boxes: list of (image_id, category_id, [x, y, w, h]). No 'area'/'iscrowd' unless asked."""
    image_ids = sorted({b[0] for b in boxes} | set(range(1, (n_images or 0) + 1)))
    annotations = []
    for number, (image_id, category_id, bbox) in enumerate(boxes, start=1):
        ann = {"id": number, "image_id": image_id, "category_id": category_id, "bbox": list(bbox)}
        if with_area:
            ann["area"] = bbox[2] * bbox[3]
            ann["iscrowd"] = 0
        annotations.append(ann)
    return {
        "images": [{"id": i, "file_name": f"img_{i}.png", "width": 100, "height": 80} for i in image_ids],
        "annotations": annotations,
        "categories": copy.deepcopy(categories),
    }


def dets_from_gt(gt, *, dx=0.0, score=1.0):
    return [{"image_id": a["image_id"], "category_id": a["category_id"],
             "bbox": [a["bbox"][0] + dx, a["bbox"][1], a["bbox"][2], a["bbox"][3]], "score": score}
            for a in gt["annotations"]]


# Two images, both classes, 20x20 boxes (IoU of a 20x20 box shifted by dx: (20 - dx) / (20 + dx)).
BOXES = [
    (1, ROTURA, [10, 10, 20, 20]),
    (1, RAYONES, [50, 40, 20, 20]),
    (2, ROTURA, [30, 30, 20, 20]),
    (2, RAYONES, [5, 50, 20, 20]),
]


# ---------------------------------------------------------------------------------------------- COCO AP

def test_perfect_detections_give_ap_one():
    gt = make_gt(BOXES)
    result = coco_evaluate(gt, dets_from_gt(gt))
    assert result["coco"]["AP"] == pytest.approx(1.0)
    assert result["coco"]["AP50"] == pytest.approx(1.0)
    assert result["coco"]["AP75"] == pytest.approx(1.0)
    assert result["coco"]["APs"] == pytest.approx(1.0)
    assert result["coco"]["APm"] is None and result["coco"]["APl"] is None  # no GT in those ranges
    assert set(result["coco"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl",
                                   "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}
    # category-id order, dataset ids and names kept
    assert [c["id"] for c in result["per_class"]] == [ROTURA, RAYONES]
    assert [c["name"] for c in result["per_class"]] == ["ROTURA_FRACTURA", "RAYONES_ARANAZOS"]
    for cls in result["per_class"]:
        assert cls["AP"] == pytest.approx(1.0) and cls["AP50"] == pytest.approx(1.0)
        assert cls["gt_boxes"] == 2
    for curve in result["pr_curves"]:
        assert len(curve["recall"]) == 101 and len(curve["precision"]) == 101
        assert curve["recall"][0] == 0.0 and curve["recall"][-1] == pytest.approx(1.0)
        assert all(p == pytest.approx(1.0) for p in curve["precision"])


def test_inputs_are_not_modified():
    gt = make_gt(BOXES)  # no area / iscrowd: pycocotools needs them, they are filled on a copy
    dets = dets_from_gt(gt, dx=2)
    gt_before, dets_before = copy.deepcopy(gt), copy.deepcopy(dets)
    coco_evaluate(gt, dets)
    operating_point(gt, dets, 0.5)
    best_f1_operating_point(gt, dets)
    confusion_matrix(gt, dets, score_threshold=0.5)
    assert gt == gt_before and dets == dets_before


def test_shift_below_iou_half_lowers_ap50():
    gt = make_gt(BOXES)
    result = coco_evaluate(gt, dets_from_gt(gt, dx=10))  # IoU = 10/30 = 0.33
    assert result["coco"]["AP50"] == pytest.approx(0.0)
    assert result["coco"]["AP"] == pytest.approx(0.0)


def test_shift_between_half_and_three_quarters_keeps_ap50_but_not_ap75():
    gt = make_gt(BOXES)
    result = coco_evaluate(gt, dets_from_gt(gt, dx=4))  # IoU = 16/24 = 0.667
    assert result["coco"]["AP50"] == pytest.approx(1.0)
    assert result["coco"]["AP75"] == pytest.approx(0.0)
    # IoU thresholds .50, .55, .60, .65 of the ten are passed
    assert result["coco"]["AP"] == pytest.approx(0.4)
    for cls in result["per_class"]:
        assert cls["AP50"] == pytest.approx(1.0) and cls["AP"] == pytest.approx(0.4)


def test_no_detections_give_zero_not_none():
    gt = make_gt(BOXES, categories=CATEGORIES + [{"id": 9, "name": "PERFORACIONES"}])
    result = coco_evaluate(gt, [])
    assert result["coco"]["AP"] == 0.0 and result["coco"]["AP50"] == 0.0 and result["coco"]["AR100"] == 0.0
    assert result["coco"]["APs"] == 0.0
    assert result["coco"]["APl"] is None  # no GT there
    by_id = {c["id"]: c for c in result["per_class"]}
    assert by_id[ROTURA]["AP"] == 0.0 and by_id[RAYONES]["AP50"] == 0.0
    assert by_id[9]["AP"] is None and by_id[9]["AP50"] is None and by_id[9]["gt_boxes"] == 0
    for curve in result["pr_curves"]:
        assert all(p == 0.0 for p in curve["precision"])
        assert not any(np.isnan(curve["precision"]))


def test_wrong_class_gives_zero_for_that_class():
    gt = make_gt(BOXES)
    dets = dets_from_gt(gt)
    for det in dets:
        if det["category_id"] == RAYONES:  # RAYONES boxes predicted as ROTURA, with lower scores
            det["category_id"], det["score"] = ROTURA, 0.5
    result = coco_evaluate(gt, dets)
    by_id = {c["id"]: c for c in result["per_class"]}
    assert by_id[RAYONES]["AP"] == 0.0 and by_id[RAYONES]["AP50"] == 0.0
    assert by_id[ROTURA]["AP"] == pytest.approx(1.0)  # its TPs rank above the false positives


def test_area_from_gt_and_detections_on_unknown_images_are_ignored():
    gt = make_gt(BOXES, with_area=True)
    dets = dets_from_gt(gt) + [{"image_id": 99, "category_id": ROTURA, "bbox": [0, 0, 5, 5], "score": 0.9}]
    with pytest.warns(UserWarning, match="ignored"):
        result = coco_evaluate(gt, dets)
    assert result["coco"]["AP"] == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- operating points

# 3 GT boxes of one class in one image; 4 detections:
#   0.9 on A (TP), 0.8 on nothing (FP), 0.7 on B (TP), 0.6 duplicate of A (FP: A already taken); C missed.
OP_GT = make_gt([(1, ROTURA, [0, 0, 10, 10]), (1, ROTURA, [30, 30, 10, 10]), (1, ROTURA, [60, 0, 10, 10])])
OP_DETS = [
    {"image_id": 1, "category_id": ROTURA, "bbox": [0, 1, 10, 10], "score": 0.9},
    {"image_id": 1, "category_id": ROTURA, "bbox": [80, 60, 10, 10], "score": 0.8},
    {"image_id": 1, "category_id": ROTURA, "bbox": [30, 30, 10, 10], "score": 0.7},
    {"image_id": 1, "category_id": ROTURA, "bbox": [0, 0, 10, 10], "score": 0.6},
]


@pytest.mark.parametrize("threshold, tp, fp, fn, precision, recall", [
    (0.95, 0, 0, 3, 0.0, 0.0),
    (0.9, 1, 0, 2, 1.0, 1 / 3),
    (0.75, 1, 1, 2, 0.5, 1 / 3),
    (0.7, 2, 1, 1, 2 / 3, 2 / 3),
    (0.5, 2, 2, 1, 0.5, 2 / 3),
])
def test_operating_point_hand_computed(threshold, tp, fp, fn, precision, recall):
    point = operating_point(OP_GT, OP_DETS, threshold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    assert point == {"score_threshold": threshold, "precision": pytest.approx(precision),
                     "recall": pytest.approx(recall), "f1": pytest.approx(f1), "tp": tp, "fp": fp, "fn": fn}


def test_operating_point_iou_threshold_and_class():
    # the 0.9 detection overlaps A with IoU 90/110 = 0.82: a TP at 0.5, not at 0.9
    assert operating_point(OP_GT, OP_DETS, 0.9, iou_threshold=0.9)["tp"] == 0
    wrong_class = [dict(d, category_id=RAYONES) for d in OP_DETS]
    point = operating_point(OP_GT, wrong_class, 0.0)
    assert (point["tp"], point["fp"], point["fn"]) == (0, 4, 3)


def test_best_f1_hand_computed():
    best = best_f1_operating_point(OP_GT, OP_DETS)
    assert best["score_threshold"] == pytest.approx(0.7)
    assert best["f1"] == pytest.approx(2 / 3)
    assert (best["tp"], best["fp"], best["fn"]) == (2, 1, 1)
    assert best == operating_point(OP_GT, OP_DETS, best["score_threshold"])


def test_best_f1_matches_brute_force():
    rng = np.random.default_rng(0)
    boxes = [(int(rng.integers(1, 6)), int(rng.choice([ROTURA, RAYONES])),
              [float(v) for v in rng.uniform(0, 60, 2)] + [float(v) for v in rng.uniform(5, 30, 2)])
             for _ in range(25)]
    gt = make_gt(boxes)
    dets = []
    for image_id, category_id, (x, y, w, h) in boxes:
        for _ in range(2):
            dets.append({"image_id": image_id, "category_id": int(rng.choice([ROTURA, RAYONES])),
                         "bbox": [x + rng.normal(0, 3), y + rng.normal(0, 3), w, h],
                         "score": float(np.round(rng.uniform(), 2))})  # rounded: ties in scores
    best = best_f1_operating_point(gt, dets)
    scores = sorted({d["score"] for d in dets})
    brute = max((operating_point(gt, dets, s) for s in scores), key=lambda p: (p["f1"], p["score_threshold"]))
    assert best["f1"] == pytest.approx(brute["f1"])
    assert best == operating_point(gt, dets, best["score_threshold"])


def test_best_f1_without_detections():
    best = best_f1_operating_point(OP_GT, [])
    assert best["score_threshold"] is None
    assert (best["precision"], best["recall"], best["f1"], best["tp"], best["fp"], best["fn"]) == (0.0, 0.0, 0.0, 0, 0, 3)


def test_box_iou():
    iou = box_iou_xywh(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]]))
    assert iou.tolist() == [[1.0, pytest.approx(1 / 3), 0.0, 0.0]]


# ---------------------------------------------------------------------------------------------- confusion matrix

def det(image_id, category_id, bbox, score=0.9):
    return {"image_id": image_id, "category_id": category_id, "bbox": list(bbox), "score": score}


def test_confusion_labels_and_ids_in_id_order():
    cm = confusion_matrix(make_gt([]), [], score_threshold=0.5)
    assert cm["labels"] == ["ROTURA_FRACTURA", "RAYONES_ARANAZOS", "background"]
    assert cm["ids"] == [ROTURA, RAYONES, None]
    assert cm["matrix"] == [[0, 0, 0], [0, 0, 0], [0, 0, 0]]
    assert cm["score_threshold"] == 0.5 and cm["iou_threshold"] == 0.5


def test_confusion_correct_detection_on_diagonal():
    gt = make_gt([(1, ROTURA, [10, 10, 20, 20]), (1, RAYONES, [50, 40, 20, 20])])
    cm = confusion_matrix(gt, [det(1, ROTURA, [11, 10, 20, 20]), det(1, RAYONES, [50, 40, 20, 20])], score_threshold=0.5)
    assert cm["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_confusion_wrong_class_off_diagonal():
    gt = make_gt([(1, ROTURA, [10, 10, 20, 20])])
    cm = confusion_matrix(gt, [det(1, RAYONES, [10, 10, 20, 20])], score_threshold=0.5)
    assert cm["matrix"] == [[0, 1, 0], [0, 0, 0], [0, 0, 0]]  # ROTURA (row) predicted as RAYONES (column)


def test_confusion_unmatched_detection_and_missed_gt():
    gt = make_gt([(1, RAYONES, [10, 10, 20, 20])], n_images=2)
    cm = confusion_matrix(gt, [det(2, RAYONES, [10, 10, 20, 20])], score_threshold=0.5)  # other image
    assert cm["matrix"] == [[0, 0, 0], [0, 0, 1], [0, 1, 0]]


def test_confusion_below_threshold_ignored():
    gt = make_gt([(1, ROTURA, [10, 10, 20, 20])])
    dets = [det(1, ROTURA, [10, 10, 20, 20], score=0.3), det(1, RAYONES, [60, 40, 10, 10], score=0.1)]
    cm = confusion_matrix(gt, dets, score_threshold=0.5)
    assert cm["matrix"] == [[0, 0, 1], [0, 0, 0], [0, 0, 0]]
    cm = confusion_matrix(gt, dets, score_threshold=0.3)  # score >= threshold is kept
    assert cm["matrix"] == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_confusion_greedy_by_iou_each_used_once():
    gt = make_gt([(1, ROTURA, [10, 10, 20, 20])])
    # the RAYONES detection has the higher score but the lower IoU: the best-IoU (ROTURA) one wins the GT
    dets = [det(1, RAYONES, [14, 10, 20, 20], score=0.95), det(1, ROTURA, [10, 11, 20, 20], score=0.6)]
    cm = confusion_matrix(gt, dets, score_threshold=0.5)
    assert cm["matrix"] == [[1, 0, 0], [0, 0, 0], [0, 1, 0]]
    cm = confusion_matrix(gt, dets, score_threshold=0.5, iou_threshold=0.95)
    assert cm["matrix"] == [[0, 0, 1], [0, 0, 0], [1, 1, 0]]


def test_confusion_totals_add_up():
    gt = make_gt(BOXES)
    dets = dets_from_gt(gt, dx=3) + [det(2, ROTURA, [70, 0, 10, 10])]
    cm = np.array(confusion_matrix(gt, dets, score_threshold=0.5)["matrix"])
    assert cm[:-1].sum() == len(BOXES)      # every GT box once (matched or missed)
    assert cm[:, :-1].sum() == len(dets)    # every kept detection once (matched or false positive)


# ---------------------------------------------------------------------------------------------- figures

def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_training_curves(tmp_path):
    from detstudy.tasks.detection.plots import plot_training_curves

    history = tmp_path / "history.csv"
    with open(history, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "lr", "loss", "loss_classifier", "loss_box_reg", "val_AP", "val_AP50", "seconds"])
        for epoch in range(1, 6):
            writer.writerow([epoch, 1e-3 / epoch, 2.0 / epoch, 1.2 / epoch, 0.8 / epoch,
                             0.1 * epoch if epoch != 3 else "", 0.15 * epoch if epoch != 3 else "", 10.0])
    out = tmp_path / "curves.png"
    plot_training_curves(history, out)
    _assert_png(out)


def test_plot_per_class_ap_and_pr_curves(tmp_path):
    from detstudy.tasks.detection.plots import plot_per_class_ap, plot_pr_curves

    gt = make_gt(BOXES, categories=CATEGORIES + [{"id": 9, "name": "PERFORACIONES"}])
    metrics = coco_evaluate(gt, dets_from_gt(gt, dx=4))
    bars = plot_per_class_ap(metrics, tmp_path / "ap.png").axes[0]
    pr = plot_pr_curves(metrics["pr_curves"], tmp_path / "pr.png", style={"dpi": 80}).axes[0]
    _assert_png(tmp_path / "ap.png")
    _assert_png(tmp_path / "pr.png")
    classes = len(metrics["per_class"])
    heights = [patch.get_height() for patch in bars.patches]
    assert len(heights) == 2 * classes  # AP50 and AP per class
    assert heights[:classes] == pytest.approx([c["AP50"] or 0.0 for c in metrics["per_class"]])
    assert "no GT" in [text.get_text() for text in bars.texts]  # PERFORACIONES has no box
    assert bars.get_ylim() == (0, 1.08)
    labels = [text.get_text() for text in pr.get_legend().get_texts()]
    assert len(labels) == classes and "PERFORACIONES (no GT)" in labels
    curve = next(line for line in pr.get_lines() if line.get_label().startswith(metrics["pr_curves"][0]["name"]))
    assert max(curve.get_xdata()) <= 1.0 and max(curve.get_ydata()) <= 1.0


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_matrix(tmp_path, normalize):
    from detstudy.tasks.detection.plots import plot_confusion_matrix

    gt = make_gt(BOXES)
    cm = confusion_matrix(gt, dets_from_gt(gt, dx=3) + [det(2, ROTURA, [70, 0, 10, 10])], score_threshold=0.5)
    out = tmp_path / "cm.png"
    ax = plot_confusion_matrix(cm, out, normalize=normalize).axes[0]
    _assert_png(out)
    shown = ax.get_images()[0].get_array()
    n = len(cm["labels"])
    assert shown.shape == (n, n) and [t.get_text() for t in ax.get_yticklabels()] == [str(x) for x in cm["labels"]]
    counts = np.asarray(cm["matrix"], dtype=float)
    if normalize:
        rows = counts.sum(axis=1) > 0
        assert np.allclose(np.asarray(shown)[rows].sum(axis=1), 1.0)  # row fractions
    else:
        assert np.array_equal(np.asarray(shown), counts)


def test_plot_predictions(tmp_path):
    from PIL import Image

    from detstudy.tasks.detection.plots import _select_images, plot_predictions

    gt = make_gt(BOXES, n_images=3)  # image 3 has no boxes
    for info in gt["images"]:
        Image.new("RGB", (info["width"], info["height"]), (90, 90, 90)).save(tmp_path / info["file_name"])
    dets = dets_from_gt(gt, dx=2, score=0.8) + [det(3, RAYONES, [5, 5, 30, 30], score=0.2)]
    out = tmp_path / "pred.png"
    plot_predictions(gt, dets, tmp_path, out, score_threshold=0.5, max_images=3)
    _assert_png(out)
    # images with GT boxes come first, and the choice is deterministic
    chosen = [img["id"] for img in _select_images(gt, 2, seed=0)]
    assert set(chosen) == {1, 2} and chosen == [img["id"] for img in _select_images(gt, 2, seed=0)]
    with pytest.raises(FileNotFoundError, match="not found"):
        plot_predictions(gt, dets, tmp_path / "missing", tmp_path / "x.png", score_threshold=0.5)


def test_plot_predictions_shows_a_16_bit_image_as_the_model_sees_it(tmp_path):
    from PIL import Image

    from detstudy.tasks.images import load_rgb
    from detstudy.tasks.detection.plots import plot_predictions

    gt = make_gt([box for box in BOXES if box[0] == 1])
    (info,) = gt["images"]
    ramp = np.linspace(0, 65520, info["width"] * info["height"]).astype(np.uint16)
    Image.fromarray(ramp.reshape(info["height"], info["width"])).save(tmp_path / info["file_name"])
    figure = plot_predictions(gt, [], tmp_path, tmp_path / "pred.png", score_threshold=0.5, max_images=1,
                              style={"max_image_side": 10_000})
    shown = np.asarray(figure.axes[0].get_images()[0].get_array())
    assert np.array_equal(shown, np.asarray(load_rgb(tmp_path / info["file_name"])))
    assert shown.min() == 0 and shown.max() == 255 and np.median(shown) < 200  # a ramp, not saturated white


def test_crowd_regions_are_ignored_everywhere():
    gt = make_gt([(1, ROTURA, [10, 10, 20, 20]), (1, ROTURA, [50, 20, 40, 40])], with_area=True)
    gt["annotations"][1]["iscrowd"] = 1
    dets = [det(1, ROTURA, [55, 25, 20, 20], score=0.95),  # inside the crowd region: neither TP nor FP
            det(1, ROTURA, [10, 10, 20, 20], score=0.9)]
    result = coco_evaluate(gt, dets)
    assert result["coco"]["AP"] == pytest.approx(1.0)
    assert result["per_class"][0]["gt_boxes"] == 1
    point = operating_point(gt, dets, 0.5)
    assert (point["tp"], point["fp"], point["fn"]) == (1, 0, 0)
    assert best_f1_operating_point(gt, dets)["f1"] == pytest.approx(1.0)
    cm = confusion_matrix(gt, dets, score_threshold=0.5)
    assert cm["matrix"] == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_an_unknown_evaluation_precision_stops_before_any_work(tmp_path):
    from detstudy.steps.evaluate import evaluate

    with pytest.raises(ValueError, match="evaluation.precision"):
        evaluate(checkpoint=tmp_path / "best.pt", history=tmp_path / "history.csv", test_split=None,
                            metrics_path=tmp_path / "metrics.json", detections_path=tmp_path / "detections.json",
                            run={}, precision="fp64")
    assert not list(tmp_path.iterdir())


def _marked_epoch(figure):
    """The x of the gold best-epoch star on the validation panel."""
    stars = [line for line in figure.axes[1].get_lines() if line.get_marker() == "*"]
    assert len(stars) == 1
    return float(stars[0].get_xdata()[0]), float(stars[0].get_ydata()[0])


def test_training_curves_mark_the_epoch_the_checkpoint_holds(tmp_path):
    """A fine-tuning run: its epoch 0 (the start, never a candidate) validates highest; best.pt
    holds epoch 2. Without the checkpoint's epoch, the first maximum among trained epochs."""
    from detstudy.tasks.detection.plots import plot_training_curves

    history = tmp_path / "history.csv"
    with open(history, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch", "lr", "loss", "val_AP", "val_AP50"])
        for epoch, ap50 in enumerate([0.9, 0.5, 0.7, 0.7]):
            writer.writerow([epoch, 1e-3, 1.0 if epoch else "", ap50 / 2, ap50])
    assert _marked_epoch(plot_training_curves(history, tmp_path / "a.png", best_epoch=2)) == (2.0, 0.7)
    assert _marked_epoch(plot_training_curves(history, tmp_path / "b.png")) == (2.0, 0.7)
    figure = plot_training_curves(history, tmp_path / "c.png", best_by="val_AP", best_epoch=3)
    assert _marked_epoch(figure) == (3.0, 0.35) and figure.axes[1].get_ylim() == (0.0, 1.0)


def test_a_test_split_without_boxes_is_evaluated_and_its_numbers_are_undefined(tmp_path, caplog):
    """The dataset check lets a box-free test split through with a warning; the evaluation must
    then finish, with COCO's undefined numbers as null and the log saying so."""
    from detstudy.tasks.detection.checkpoint import save_checkpoint
    from detstudy.tasks.detection.data.coco import CategoryMap, SplitPaths
    from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
    from detstudy.steps.evaluate import evaluate
    from detstudy.tasks.detection.models import build_detector

    split = generate_synthetic_dataset(tmp_path / "data", seed=1, split_sizes={"train": 1, "val": 1, "test": 2},
                             image_size=64)["test"]
    coco = json.loads(Path(split["annotations"]).read_text())
    coco["annotations"] = []
    Path(split["annotations"]).write_text(json.dumps(coco))
    categories = CategoryMap.from_coco(coco)
    adapter = build_detector("fasterrcnn_resnet18_fpn", len(categories), 64,
                             {"fpn_channels": 16, "box_head_width": 32, "norm": "batchnorm"})
    save_checkpoint(tmp_path / "best.pt", adapter, categories, extra={"epoch": 1})
    (tmp_path / "history.csv").write_text("epoch,val_AP,val_AP50,seconds\n1,0.1,0.2,3.0\n")
    caplog.set_level("INFO", logger="detstudy.evaluate")
    metrics = evaluate(checkpoint=tmp_path / "best.pt", history=tmp_path / "history.csv",
                                  test_split=SplitPaths.of(**split), metrics_path=tmp_path / "metrics.json",
                                  detections_path=tmp_path / "detections.json", run={"model": "m"}, device="cpu",
                                  threads=1)
    assert metrics["coco"]["AP"] is None and metrics["dataset"]["boxes"] == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["coco"]["AP50"] is None
    assert any("undefined" in record.getMessage() for record in caplog.records)
