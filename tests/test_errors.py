"""The TIDE error breakdown against the reference implementation (``tidecv``) on a hand-made
case with every error type and on random scenes, and against COCOeval's own AP50."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detstudy.tasks.detection.evaluation.errors import ERRORS, SHORT_NAMES, error_breakdown
from detstudy.tasks.detection.evaluation.metrics import coco_evaluate, coco_evaluator

tidecv = pytest.importorskip("tidecv")

CLASSES = [{"id": 1, "name": "crack"}, {"id": 2, "name": "stain"}, {"id": 3, "name": "scratch"}]


def _dataset(images: dict[int, list]) -> dict:
    gt = {"images": [{"id": i, "file_name": f"{i}.png", "width": 200, "height": 200} for i in images],
          "categories": CLASSES, "annotations": []}
    for image, objects in images.items():
        for cls, box in objects:
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": image, "category_id": cls,
                                      "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    return gt


def _tidecv(gt: dict, detections: list[dict]):
    """tidecv's own numbers for the same data (its AP and dAP are in 0-100)."""
    truth, preds = tidecv.Data("gt"), tidecv.Data("preds")
    for data in (truth, preds):
        for c in gt["categories"]:
            data.add_class(c["id"], c["name"])
        for image in gt["images"]:
            data.add_image(image["id"], image["file_name"])
    for ann in gt["annotations"]:
        truth.add_ground_truth(ann["image_id"], ann["category_id"], ann["bbox"])
    for det in detections:
        preds.add_detection(det["image_id"], det["category_id"], det["score"], det["bbox"])
    tide = tidecv.TIDE()
    run = tide.evaluate(truth, preds, mode=tidecv.TIDE.BOX)
    main, special = tide.get_main_errors()["preds"], tide.get_special_errors()["preds"]
    counts = {error.short_name: len(found) for error, found in run.error_dict.items()}
    return run.ap / 100, {k: v / 100 for k, v in main.items()}, {k: v / 100 for k, v in special.items()}, counts


def _assert_same_as_tidecv(gt: dict, detections: list[dict]) -> dict:
    """Ours equals tidecv's on tidecv's recall grid, and COCOeval's AP50 on COCOeval's (the two
    grids differ in the last bit: ``np.linspace(0, 1, 101)`` against ``x / 100``, which moves a
    recall that lands on a grid point by one bar)."""
    found = error_breakdown(coco_evaluator(gt, detections))
    assert found["AP50"] == pytest.approx(coco_evaluate(gt, detections)["coco"]["AP50"], abs=1e-12)
    evaluator = coco_evaluator(gt, detections)
    evaluator.params.recThrs = np.array([x / 100 for x in range(101)])
    found = error_breakdown(evaluator)
    ap, main, special, counts = _tidecv(gt, detections)
    assert found["AP50"] == pytest.approx(ap, abs=1e-12)
    for name in ERRORS:
        assert found["dAP"][name] == pytest.approx(main[SHORT_NAMES[name]], abs=1e-12), name
        assert found["counts"][name] == counts[SHORT_NAMES[name]], name
    assert found["false_positives_dAP"] == pytest.approx(max(special["FalsePos"], 0), abs=1e-12)
    assert found["false_negatives_dAP"] == pytest.approx(max(special["FalseNeg"], 0), abs=1e-12)
    return found


def _det(image, cls, score, box):
    return {"image_id": image, "category_id": cls, "score": score, "bbox": box}


def test_every_error_type_is_found_and_fixed_as_tidecv_does():
    gt = _dataset({
        1: [(1, [10, 10, 50, 50]), (2, [100, 100, 40, 40]), (3, [20, 120, 60, 30])],
        2: [(1, [30, 30, 60, 60]), (3, [120, 20, 50, 50])],
        3: [(2, [50, 50, 80, 80]), (1, [150, 150, 30, 30])],   # the crack here is never detected: missed
    })
    detections = [
        _det(1, 1, 0.95, [11, 11, 50, 50]),      # true positive
        _det(1, 1, 0.90, [12, 10, 49, 51]),      # duplicate of it
        _det(1, 1, 0.40, [102, 98, 40, 40]),     # classification: on the stain, called crack
        _det(1, 3, 0.85, [20, 120, 25, 30]),     # localisation: IoU 0.42 with the scratch, which stays free
        _det(1, 3, 0.30, [55, 120, 30, 30]),     # localisation on the same scratch, lower score: removed
        _det(2, 1, 0.80, [31, 29, 60, 61]),      # true positive
        _det(2, 1, 0.60, [30, 30, 30, 40]),      # localisation on a taken crack: removed when fixed
        _det(2, 2, 0.70, [0, 170, 20, 20]),      # background
        _det(2, 2, 0.50, [130, 30, 50, 50]),     # both: IoU 0.47 with the scratch, wrong class (which is missed)
        _det(3, 2, 0.75, [48, 52, 80, 80]),      # true positive
        _det(3, 3, 0.65, [60, 60, 40, 40]),      # both
    ]
    found = _assert_same_as_tidecv(gt, detections)
    assert {name for name, n in found["counts"].items() if n} == set(ERRORS)
    assert found["counts"] == {"classification": 1, "localisation": 3, "both": 2, "duplicate": 1, "background": 1,
                               "missed": 2}
    assert found["true_positives"] == 3 and found["objects"] == 7


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_scenes_agree_with_tidecv(seed):
    rng = np.random.default_rng(seed)
    images, detections = {}, []
    for image in range(1, 31):
        objects = []
        for _ in range(rng.integers(1, 5)):
            x, y, w, h = rng.uniform(0, 150, 2).tolist() + rng.uniform(10, 50, 2).tolist()
            objects.append((int(rng.integers(1, 4)), [x, y, w, h]))
            for _ in range(rng.integers(0, 3)):  # near-misses and duplicates of each object
                jitter = rng.normal(0, rng.choice([2, 8, 20]), 4)
                cls = objects[-1][0] if rng.random() < 0.8 else int(rng.integers(1, 4))
                detections.append(_det(image, cls, float(rng.random()),
                                       [x + jitter[0], y + jitter[1], max(w + jitter[2], 2), max(h + jitter[3], 2)]))
        for _ in range(rng.integers(0, 3)):  # background boxes
            detections.append(_det(image, int(rng.integers(1, 4)), float(rng.random()),
                                   rng.uniform(0, 180, 2).tolist() + rng.uniform(5, 20, 2).tolist()))
        images[image] = objects
    gt = _dataset(images)
    for cls in (1, 2, 3):  # every class has objects: tidecv then averages the same classes as COCOeval
        assert any(a["category_id"] == cls for a in gt["annotations"])
    found = _assert_same_as_tidecv(gt, detections)
    assert sum(found["counts"].values()) > 10


def test_no_detections_at_all():
    gt = _dataset({1: [(1, [10, 10, 50, 50])]})
    found = error_breakdown(coco_evaluator(gt, []))
    assert found["AP50"] == 0 and found["counts"]["missed"] == 1
    assert found["dAP"]["missed"] == 0  # fixing the only object leaves no class to average: no gain counted


def test_the_figure_draws_each_error_at_its_cost(tmp_path):
    from detstudy.tasks.detection.plots import plot_error_breakdown

    gt = _dataset({1: [(1, [10, 10, 50, 50]), (2, [100, 100, 40, 40])], 2: [(3, [20, 20, 60, 60])]})
    detections = [_det(1, 1, 0.9, [11, 11, 50, 50]), _det(1, 1, 0.8, [102, 98, 40, 40]),
                  _det(2, 3, 0.7, [20, 20, 30, 60]), _det(2, 2, 0.6, [150, 150, 20, 20])]
    errors = error_breakdown(coco_evaluator(gt, detections))
    figure = plot_error_breakdown(errors, tmp_path / "errors.png")
    main, special = figure.axes
    assert [round(bar.get_height(), 12) for bar in main.patches] == [round(errors["dAP"][n], 12) for n in ERRORS]
    assert [bar.get_height() for bar in special.patches] == [errors["false_positives_dAP"],
                                                             errors["false_negatives_dAP"]]
    assert (tmp_path / "errors.png").stat().st_size > 0


def test_a_split_without_objects_gives_undefined_values_and_a_figure(tmp_path):
    from detstudy.tasks.detection.plots import plot_error_breakdown

    gt = _dataset({1: [], 2: []})
    errors = error_breakdown(coco_evaluator(gt, [_det(1, 1, 0.9, [10, 10, 20, 20])]))
    assert errors["AP50"] is None and set(errors["dAP"].values()) == {None}
    assert errors["counts"]["background"] == 1 and json.loads(json.dumps(errors, allow_nan=False))
    plot_error_breakdown(errors, tmp_path / "errors.png")
    assert (tmp_path / "errors.png").stat().st_size > 0
