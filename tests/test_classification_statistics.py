"""The classification bootstrap: every resample's numbers equal scikit-learn's on the drawn images,
the leave-one-out values equal scikit-learn's without each image, the draws are shared by every
run; McNemar's exact test and its place in the comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, top_k_accuracy_score

from detstudy.statistics.bootstrap import draw_indices
from detstudy.statistics.classification import resample_predictions, run_intervals
from detstudy.statistics.comparisons import comparisons
from detstudy.statistics.mcnemar import mcnemar_exact, mcnemar_from_counts
from detstudy.tasks.classification.metrics import SUMMARY, metrics_from_predictions


def predictions(n=60, classes=7, seed=0, skill=1.5):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, n)
    true[:classes] = np.arange(classes)  # every class in the test set
    logits = rng.normal(size=(n, classes)) + skill * np.eye(classes)[true]
    return true, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


CHECKED = ("accuracy", "macro_F1", "weighted_precision", "weighted_recall", "top5")
COLUMNS = [SUMMARY.index(name) for name in CHECKED]


def sklearn_row(true, probabilities, classes):
    """The :data:`CHECKED` statistics as scikit-learn computes them."""
    predicted = probabilities.argmax(axis=1)
    labels = list(range(classes))
    return [accuracy_score(true, predicted), f1_score(true, predicted, labels=labels, average="macro", zero_division=0),
            precision_score(true, predicted, labels=labels, average="weighted", zero_division=0),
            recall_score(true, predicted, labels=labels, average="weighted", zero_division=0),
            top_k_accuracy_score(true, probabilities, k=5, labels=labels)]


def test_every_resample_and_every_leave_one_out_set_is_scikit_learns():
    true, probabilities = predictions()
    values = resample_predictions(true, probabilities, resamples=12, seed=3)
    drawn = np.concatenate(list(draw_indices(len(true), 12, 3)))
    for row, index in zip(values["replicates"], drawn):
        expected = sklearn_row(true[index], probabilities[index], 7)
        assert row[COLUMNS] == pytest.approx(expected, abs=1e-12)
    for i in range(len(true)):
        kept = np.delete(np.arange(len(true)), i)
        expected = sklearn_row(true[kept], probabilities[kept], 7)
        assert values["jackknife"][i, COLUMNS] == pytest.approx(expected, abs=1e-12)
        per_class = f1_score(true[kept], probabilities[kept].argmax(1), labels=list(range(7)), average=None,
                             zero_division=0)
        assert values["class_jackknife"][i] == pytest.approx(per_class, abs=1e-12)
    assert values["estimate"][COLUMNS] == pytest.approx(sklearn_row(true, probabilities, 7), abs=1e-12)


def test_the_draws_depend_only_on_the_images_resamples_and_seed():
    a = np.concatenate(list(draw_indices(40, 1200, 5)))
    assert a.shape == (1200, 40) and np.array_equal(a, np.concatenate(list(draw_indices(40, 1200, 5))))
    assert not np.array_equal(a, np.concatenate(list(draw_indices(40, 1200, 6))))


def test_mcnemar_exact_is_the_binomial_of_the_discordant_images():
    assert mcnemar_from_counts(10, 2)["p"] == pytest.approx(2 * (1 + 12 + 66) / 4096, rel=1e-12)
    assert mcnemar_from_counts(0, 0)["p"] == 1.0
    a = np.array([1, 1, 1, 0, 0, 1], bool)
    b = np.array([1, 0, 0, 0, 1, 1], bool)
    assert mcnemar_exact(a, b) == {"a_only": 2, "b_only": 1, "p": 1.0}
    with pytest.raises(ValueError, match="share the test images"):
        mcnemar_exact(a, b[:3])


def write_run(folder, model, seed, skill, settings, family="cnn"):
    import json

    true, _ = predictions(n=80, classes=4, seed=0)  # one test set for every run
    logits = np.random.default_rng([seed, int(100 * skill)]).normal(size=(80, 4)) + skill * np.eye(4)[true]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    folder.mkdir(parents=True)
    np.savez(folder / "predictions.npz", true=true, probabilities=probabilities,
             paths=np.asarray([f"img{i}.png" for i in range(len(true))]))
    names = ["a", "b", "c", "d"]
    metrics = {"run": {"model": model, "resolution": 32, "phase": "base", "seed": seed, "family": family},
               "metrics": metrics_from_predictions(true, probabilities, names)}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return run_intervals(predictions_path=folder / "predictions.npz", metrics=metrics, settings=settings,
                         statistics_path=folder / "statistics.json", bootstrap_path=folder / "bootstrap.npz"), metrics


def test_runs_intervals_and_comparisons_carry_mcnemar(tmp_path):
    settings = {"resamples": 400, "seed": 0, "level": 0.95, "method": "bca"}
    paths = []
    for model, skill in (("cnn", 0.5), ("vit", 3.0)):
        for seed in (0, 1):
            result, metrics = write_run(tmp_path / model / str(seed), model, seed, skill, settings)
            assert "top5" not in result["metrics"]  # 4 classes: no top-5
            accuracy = result["metrics"]["accuracy"]
            assert accuracy["estimate"] == metrics["metrics"]["accuracy"]
            assert accuracy["low"] <= accuracy["estimate"] <= accuracy["high"]
            paths.append(tmp_path / model / str(seed))
    found = comparisons(statistics=[p / "statistics.json" for p in paths], bootstraps=[p / "bootstrap.npz" for p in paths],
                        settings={**settings, "baseline": "cnn", "pairs": []}, comparisons_path=tmp_path / "c.json")
    row = found["tables"]["baseline"][0]
    assert row["a"].startswith("vit") and row["mcnemar"]["seed_pairs"] == [[0, 0], [1, 1]]
    stored = [np.load(p / "bootstrap.npz")["correct"] for p in paths]
    expected = [mcnemar_exact(stored[2 + k], stored[k]) for k in (0, 1)]
    assert row["mcnemar"]["a_only"] == sum(t["a_only"] for t in expected)
    assert row["mcnemar"]["b_only"] == sum(t["b_only"] for t in expected)
    assert row["mcnemar"]["per_pair"] == expected and row["mcnemar"]["unpaired_seeds"] == []
    # significant only if every seed's pair is: the largest p, never the pooled counts' smaller one
    assert row["mcnemar"]["p"] == max(t["p"] for t in expected) < 0.05
    assert row["mcnemar"]["p_holm"] == row["mcnemar"]["p"]  # one comparison
    assert row["metrics"]["accuracy"]["estimate"] > 0


def test_the_statistics_refuse_predictions_that_disagree_with_the_metrics(tmp_path):
    settings = {"resamples": 50, "seed": 0, "level": 0.95, "method": "percentile"}
    _, metrics = write_run(tmp_path / "run", "cnn", 0, 1.0, settings)
    metrics["metrics"]["accuracy"] += 0.01
    with pytest.raises(ValueError, match="accuracy .* in the metrics. Fix: rerun the run's evaluation"):
        run_intervals(predictions_path=tmp_path / "run" / "predictions.npz", metrics=metrics, settings=settings,
                      statistics_path=tmp_path / "s.json", bootstrap_path=tmp_path / "b.npz")
