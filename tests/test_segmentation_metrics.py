"""The segmentation protocol against torchmetrics and mmsegmentation's formula, to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detstudy.tasks.segmentation.confusion import confusion_matrix, image_confusions
from detstudy.tasks.segmentation.metrics import SUMMARY, metrics_from_confusion, resampled_statistics, summary

IGNORE = 255


def mmseg_metrics(predictions, targets, num_classes, ignore_index=IGNORE):
    """mmsegmentation's IoUMetric, written out from its formula (intersect_and_union, then
    total_area_to_metrics): areas by histogram, ratios with NaN where a denominator is 0,
    np.nanmean over classes."""
    total = {key: torch.zeros(num_classes, dtype=torch.float64) for key in ("intersect", "union", "pred", "label")}
    for pred, label in zip(predictions, targets):
        mask = label != ignore_index
        pred, label = pred[mask], label[mask]
        intersect = pred[pred == label]
        area = {name: torch.histc(values.double(), bins=num_classes, min=0, max=num_classes - 1)
                for name, values in (("intersect", intersect), ("pred", pred), ("label", label))}
        area["union"] = area["pred"] + area["label"] - area["intersect"]
        for key in total:
            total[key] += area[key]
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = (total["intersect"] / total["union"]).numpy()
        acc = (total["intersect"] / total["label"]).numpy()
        dice = (2 * total["intersect"] / (total["pred"] + total["label"])).numpy()
    return {"aAcc": float(total["intersect"].sum() / total["label"].sum()), "mIoU": np.nanmean(iou),
            "mAcc": np.nanmean(acc), "mDice": np.nanmean(dice), "IoU": iou, "Acc": acc, "Dice": dice}


def cases():
    """Random masks with ignore pixels; a class absent from ground truth and prediction; a class
    only predicted; a one-class image."""
    rng = np.random.default_rng(0)
    num_classes = 6
    targets, predictions = [], []
    for shape in ((17, 23), (32, 32), (5, 40)):
        target = rng.integers(0, 4, shape)  # classes 4 and 5 never in the ground truth
        target[rng.random(shape) < 0.1] = IGNORE
        prediction = np.where(rng.random(shape) < 0.7, np.where(target == IGNORE, 0, target), rng.integers(0, 4, shape))
        prediction[0, 0] = 4  # class 4 predicted once: IoU 0, counted; class 5 nowhere: absent
        targets.append(torch.from_numpy(target))
        predictions.append(torch.from_numpy(prediction))
    targets.append(torch.full((8, 8), 2))  # a one-class image
    predictions.append(torch.full((8, 8), 2))
    return targets, predictions, num_classes


def test_the_metrics_are_mmsegmentations():
    targets, predictions, num_classes = cases()
    confusion = image_confusions(targets, predictions, num_classes, IGNORE).sum(axis=0)
    ours = metrics_from_confusion(confusion, [f"c{k}" for k in range(num_classes)])
    theirs = mmseg_metrics(predictions, targets, num_classes)
    for name in SUMMARY:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9), name
    for k, row in enumerate(ours["per_class"]):
        for key in ("IoU", "Acc", "Dice"):
            if np.isnan(theirs[key][k]):
                assert row[key] is None, (k, key)  # absent, not 0
            else:
                assert row[key] == pytest.approx(theirs[key][k], abs=1e-9), (k, key)
    assert ours["per_class"][4]["IoU"] == 0.0 and ours["per_class"][5]["IoU"] is None


def test_miou_is_torchmetrics_macro_jaccard_with_the_ignore_index():
    from torchmetrics.classification import MulticlassJaccardIndex

    targets, predictions, num_classes = cases()
    metric = MulticlassJaccardIndex(num_classes=num_classes, average="none", ignore_index=IGNORE)
    for target, prediction in zip(targets, predictions):
        metric.update(prediction.flatten(), target.flatten())
    per_class = metric.compute().double().numpy()
    confusion = image_confusions(targets, predictions, num_classes, IGNORE).sum(axis=0)
    ours = metrics_from_confusion(confusion, [f"c{k}" for k in range(num_classes)])
    present = [row["IoU"] is not None for row in ours["per_class"]]
    assert present == [True, True, True, True, True, False]
    assert np.allclose([row["IoU"] for row in ours["per_class"] if row["IoU"] is not None], per_class[present], atol=1e-6)
    assert ours["mIoU"] == pytest.approx(per_class[present].mean(), abs=1e-6)  # float32 in torchmetrics


def test_out_of_range_ground_truth_is_refused():
    with pytest.raises(ValueError, match="class 9 outside 0..5"):
        confusion_matrix(torch.tensor([[9]]), torch.tensor([[0]]), 6)
    assert confusion_matrix(torch.tensor([[IGNORE, 1]]), torch.tensor([[3, 1]]), 6).sum() == 1


def test_a_resample_is_the_dataset_of_its_drawn_images():
    targets, predictions, num_classes = cases()
    confusions = image_confusions(targets, predictions, num_classes, IGNORE)
    weights = np.array([[1, 1, 1, 1], [2, 0, 1, 0], [0, 0, 0, 3], [0, 0, 0, 0]])
    found, per_class = resampled_statistics(confusions, weights, chunk=3)
    for row, w in enumerate(weights):
        drawn = [i for i, count in enumerate(w) for _ in range(count)]
        if not drawn:
            assert np.isnan(found[row]).all()
            continue
        reference = mmseg_metrics([predictions[i] for i in drawn], [targets[i] for i in drawn], num_classes)
        assert found[row] == pytest.approx([reference[name] for name in SUMMARY], abs=1e-12, nan_ok=True)
        assert np.allclose(per_class[row], reference["IoU"], atol=1e-12, equal_nan=True)
    assert np.array_equal(summary(confusions.sum(axis=0)), found[0])


def test_predicted_labels_are_argmax_with_its_ties():
    from detstudy.tasks.segmentation.confusion import predicted_labels

    logits = torch.randn(5, 9, 11)
    logits[:, 0, 0] = 1.0  # every class tied: the first wins, as argmax
    assert torch.equal(predicted_labels(logits), logits.argmax(dim=0))
    assert int(predicted_labels(logits)[0, 0]) == 0
