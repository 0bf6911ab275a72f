"""Bootstrap statistics: the resampled COCO AP against COCOeval itself, intervals, comparisons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pathlib import Path

from detstudy.tasks.detection.evaluation.metrics import coco_evaluate, coco_evaluator
from detstudy.statistics import comparisons as comparing
from detstudy.statistics.intervals import bias_correction, holm, interval, p_value
from detstudy.tasks.detection.evaluation.resampled_ap import SUMMARY, extract_matches, resampled_statistics
from detstudy.statistics.bootstrap import image_digest, resample_weights
from detstudy.steps.run_statistics import run_statistics

ROOT = Path(__file__).resolve().parents[1]


def scene(seed: int = 0, n_images: int = 24, n_classes: int = 3, rounded: bool = True, same_score_pairs: bool = False):
    """A test split and detections: boxes found, displaced, confused and invented, crowd regions,
    scores rounded to two decimals so that many tie across images."""
    rng = np.random.default_rng(seed)
    images = [{"id": 5 + 2 * i, "width": 100, "height": 100, "file_name": f"{i}.png"} for i in range(n_images)]
    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(n_classes)]
    annotations, detections = [], []
    for image in images:
        for _ in range(rng.integers(0, 4)):
            x, y = rng.uniform(0, 60, 2)
            w, h = rng.uniform(5, 40, 2)
            c = int(rng.integers(1, n_classes + 1))
            annotations.append({"id": len(annotations) + 1, "image_id": image["id"], "category_id": c,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(rng.random() < 0.08)})
            if rng.random() < 0.8:
                label = c if rng.random() < 0.8 else int(rng.integers(1, n_classes + 1))
                detections.append({"image_id": image["id"], "category_id": label, "score": float(rng.random()),
                                   "bbox": [x + rng.normal(0, 4), y + rng.normal(0, 4), w, h]})
        for _ in range(rng.integers(0, 3)):
            detections.append({"image_id": image["id"], "category_id": int(rng.integers(1, n_classes + 1)),
                               "bbox": [*rng.uniform(0, 60, 2), *rng.uniform(5, 40, 2)], "score": float(rng.random())})
    if rounded:
        for det in detections:
            det["score"] = round(det["score"], 2)
    if same_score_pairs:  # a true positive and a far-off box of one image and class at one score
        for det in list(detections[:40:3]):
            detections.append({**det, "bbox": [det["bbox"][0] + 30, det["bbox"][1] + 30, 5, 5]})
    return {"images": images, "categories": categories, "annotations": annotations}, detections


def resampled_dataset(gt: dict, detections: list[dict], counts) -> tuple[dict, list[dict]]:
    """The dataset of a resample: each copy of an image an image of its own, copies given
    consecutive ids in the original image order."""
    images, annotations, dets = [], [], []
    for i in np.argsort([image["id"] for image in gt["images"]], kind="stable"):
        original = gt["images"][i]
        for _ in range(int(counts[i])):
            new_id = len(images) + 1
            images.append({**original, "id": new_id})
            annotations += [{**a, "image_id": new_id} for a in gt["annotations"] if a["image_id"] == original["id"]]
            dets += [{**d, "image_id": new_id} for d in detections if d["image_id"] == original["id"]]
    annotations = [{**a, "id": number} for number, a in enumerate(annotations, 1)]
    return {"images": images, "categories": gt["categories"], "annotations": annotations}, dets


def cocoeval_numbers(gt, detections) -> np.ndarray:
    """AP, AP50, AP75, AR@100 and each class's AP50 by a full COCOeval (NaN for undefined)."""
    metrics = coco_evaluate(gt, detections)
    values = [metrics["coco"][name] for name in SUMMARY] + [c["AP50"] for c in metrics["per_class"]]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def assert_like_cocoeval(gt, detections, weights, tolerance=1e-9):
    matches = extract_matches(coco_evaluator(gt, detections))
    summary, per_class = resampled_statistics(matches, weights)
    for row, counts in enumerate(weights):
        expected = cocoeval_numbers(*resampled_dataset(gt, detections, counts))
        found = np.concatenate([summary[row], per_class[row]])
        assert np.array_equal(np.isnan(expected), np.isnan(found)), (counts, expected, found)
        assert np.nanmax(np.abs(expected - found), initial=0) <= tolerance, (counts, expected, found)
    return matches


def test_resampled_statistics_are_cocoevals_on_the_resampled_dataset():
    gt, detections = scene()
    n = len(gt["images"])
    weights = resample_weights(n, 12, seed=3)
    weights = np.vstack([np.ones(n, dtype=np.int64), weights, np.eye(n, dtype=np.int64)[[0, 5]] * n])
    matches = assert_like_cocoeval(gt, detections, weights)
    assert not any(c.tied for c in matches.classes)
    # the resamples of one image only leave most classes without a box: NaN, as COCOeval's -1
    summary, per_class = resampled_statistics(matches, weights[-2:])
    assert np.isnan(per_class).any()


def test_same_score_detections_of_one_image_are_pooled_copy_by_copy():
    gt, detections = scene(seed=1, same_score_pairs=True)
    weights = resample_weights(len(gt["images"]), 8, seed=0)
    matches = assert_like_cocoeval(gt, detections, weights)
    assert all(c.tied for c in matches.classes)
    for cls in matches.classes:  # the reason for the slow path: the pooled counts alone differ here
        cls.tied = False
    summary, _ = resampled_statistics(matches, weights)
    expected = np.array([cocoeval_numbers(*resampled_dataset(gt, detections, w))[:4] for w in weights])
    assert np.nanmax(np.abs(summary - expected)) > 1e-6


def test_unrounded_scores_and_a_run_without_detections():
    gt, detections = scene(seed=2, rounded=False)
    weights = resample_weights(len(gt["images"]), 6, seed=1)
    assert_like_cocoeval(gt, detections, weights)
    summary, per_class = resampled_statistics(extract_matches(coco_evaluator(gt, [])), weights)
    assert np.all(summary[:, :3] == 0) and np.all(per_class[np.isfinite(per_class)] == 0)


def test_the_same_seed_draws_the_same_images():
    first, again, other = (resample_weights(30, 50, seed) for seed in (4, 4, 5))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.all(first.sum(axis=1) == 30) and first.shape == (50, 30)
    with pytest.raises(ValueError, match="expected"):
        resampled_statistics(extract_matches(coco_evaluator(*scene())), first)


# ------------------------------------------------------------------------------------- intervals
def test_bca_agrees_with_scipy_on_a_skewed_mean():
    from scipy import stats

    rng = np.random.default_rng(0)
    data = rng.lognormal(0, 1, 40)
    draws = rng.integers(0, len(data), (20000, len(data)))
    jackknife = np.array([np.delete(data, i).mean() for i in range(len(data))])
    ours = interval(data[draws].mean(axis=1), data.mean(), jackknife=jackknife, method="bca")
    theirs = stats.bootstrap((data,), np.mean, n_resamples=20000, method="BCa", random_state=1).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.03) and ours.high == pytest.approx(theirs.high, abs=0.05)
    percentile = interval(data[draws].mean(axis=1), data.mean(), method="percentile")
    assert (percentile.low, percentile.high) == tuple(np.quantile(data[draws].mean(axis=1), [0.025, 0.975]))
    # a right-skewed statistic: BCa moves both ends up from the percentile interval
    assert ours.high > percentile.high and ours.low > percentile.low


def test_the_default_method_is_the_schemas():
    """An interval asked for without a method is the configured default's (basic), as the schema says."""
    import yaml

    from detstudy.statistics.methods import DEFAULT_METHOD

    schema = yaml.safe_load((ROOT / "config/schema.yaml").read_text())
    assert schema["properties"]["statistics"]["properties"]["method"]["default"] == DEFAULT_METHOD
    rng = np.random.default_rng(0)
    replicates = rng.lognormal(0, 1, 500)
    mirrored = interval(replicates, 1.0)  # no jackknife: a BCa default would refuse
    assert mirrored.method == DEFAULT_METHOD
    low, high = np.quantile(replicates, [0.025, 0.975])
    assert mirrored.low == pytest.approx(2 * 1.0 - high) and mirrored.high == pytest.approx(2 * 1.0 - low)


def test_bias_correction_and_undefined_statistics():
    replicates = np.array([0.1, 0.2, 0.2, 0.3])
    assert bias_correction(replicates, 0.2) == 0.0  # half below, the ties counted half
    assert bias_correction(replicates, 0.35) > 0
    empty = interval([np.nan, np.nan], 0.4, jackknife=[0.4, 0.4], method="bca")
    assert np.isnan(empty.low) and empty.to_dict()["low"] is None
    with pytest.raises(ValueError, match="unknown interval method 'normal'"):
        interval(replicates, 0.2, method="normal")


def test_p_values_and_holm():
    rng = np.random.default_rng(0)
    assert p_value(rng.normal(0.1, 0.02, 5000), 0.1) < 0.001  # five sd from zero
    assert p_value(rng.normal(0.01, 0.02, 5000), 0.01) > 0.5
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    adjusted = holm([0.2, float("nan"), 0.01])
    assert adjusted[0] == pytest.approx(0.2) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)


# ------------------------------------------------------------------------------------- the steps
def write_run(folder, gt, detections, run: dict, settings: dict):
    folder.mkdir(parents=True)
    annotations, dets, metrics = folder / "test.json", folder / "detections.json", folder / "metrics.json"
    annotations.write_text(json.dumps(gt))
    dets.write_text(json.dumps(detections))
    metrics.write_text(json.dumps({"run": run, **coco_evaluate(gt, detections)}))
    run_statistics(detections=dets, annotations=annotations, metrics=metrics, settings=settings,
                   statistics_path=folder / "statistics.json", bootstrap_path=folder / "bootstrap.npz")
    return folder / "statistics.json", folder / "bootstrap.npz"


SETTINGS = {"resamples": 300, "seed": 0, "level": 0.95, "method": "bca"}


def noisier(detections, seed, drop):
    rng = np.random.default_rng(seed)
    return [d for d in detections if rng.random() > drop]


def test_run_statistics_writes_the_intervals_of_the_evaluated_numbers(tmp_path):
    gt, detections = scene(n_images=30)
    statistics, arrays = write_run(tmp_path / "run", gt, detections, {"model": "m", "resolution": 64,
                                                                       "phase": "base", "seed": 0}, SETTINGS)
    record = json.loads(statistics.read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    ap50 = record["metrics"]["AP50"]
    assert ap50["estimate"] == pytest.approx(metrics["coco"]["AP50"], abs=1e-12)
    assert ap50["low"] < ap50["estimate"] < ap50["high"] and ap50["method"] == "bca"
    assert ap50["bca"] == [ap50["low"], ap50["high"]] and ap50["percentile"] != ap50["bca"]
    # the basic interval mirrors the percentile one around the estimate
    assert ap50["basic"] == pytest.approx([2 * ap50["estimate"] - ap50["percentile"][1],
                                           2 * ap50["estimate"] - ap50["percentile"][0]])
    assert record["images"] == 30 and record["image_ids_sha256"] == image_digest([i["id"] for i in gt["images"]])
    assert [c["name"] for c in record["per_class"]] == ["class0", "class1", "class2"]
    with np.load(arrays) as data:
        assert data["replicates"].shape == (300, 4) and data["jackknife"].shape == (30, 4)
        assert ap50["bias"] == pytest.approx(np.nanmean(data["replicates"][:, 1]) - ap50["estimate"])


def test_detections_that_are_not_the_evaluated_ones_are_refused(tmp_path):
    gt, detections = scene(n_images=20)
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "test.json").write_text(json.dumps(gt))
    (folder / "detections.json").write_text(json.dumps(detections[:-5]))
    (folder / "metrics.json").write_text(json.dumps({"run": {}, **coco_evaluate(gt, detections)}))
    with pytest.raises(ValueError, match=r"metrics.json: AP .* from the detections .*Fix: rerun the run's evaluation"):
        run_statistics(detections=folder / "detections.json", annotations=folder / "test.json",
                       metrics=folder / "metrics.json", settings=SETTINGS,
                       statistics_path=folder / "statistics.json", bootstrap_path=folder / "bootstrap.npz")
    assert not (folder / "statistics.json").exists() and not (folder / "bootstrap.npz").exists()


def test_comparisons_pool_seeds_and_adjust_each_table(tmp_path, monkeypatch):
    built = []

    class Recorded(comparing.Cell):  # the cells the step pools, to check their replicates
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(comparing, "Cell", Recorded)
    gt, detections = scene(n_images=40)
    runs = [("frcnn", "base", 0, 0.0), ("frcnn", "base", 1, 0.05), ("deim", "base", 0, 0.3),
            ("deim", "phase1", 0, 0.25), ("deim", "phase1_shuffled", 0, 0.3), ("deim", "phase2", 0, 0.2)]
    paths = [write_run(tmp_path / f"{m}-{p}-{s}", gt, noisier(detections, 10 + i, drop),
                       {"model": m, "resolution": 64, "phase": p, "seed": s, "family": "x"}, SETTINGS)
             for i, (m, p, s, drop) in enumerate(runs)]
    settings = {**SETTINGS, "baseline": "frcnn",
                "pairs": [{"a": {"model": "deim", "resolution": 64, "phase": "phase2"},
                           "b": {"model": "deim", "resolution": 64, "phase": "phase1"}},
                          {"a": {"model": "deim", "resolution": 64, "phase": "phase2"},  # also a planned one
                           "b": {"model": "deim", "resolution": 64, "phase": "base"}}]}
    out = tmp_path / "comparisons.json"
    result = comparing.comparisons(statistics=[p[0] for p in paths], bootstraps=[p[1] for p in paths],
                                   settings=settings, comparisons_path=out)
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    cells = {(c["model"], c["phase"]): c for c in result["cells"]}
    frcnn = cells[("frcnn", "base")]
    assert frcnn["seeds"] == [0, 1] and frcnn["metrics"]["AP50"]["seed_sd"] is not None
    seed_values = [json.loads(p[0].read_text())["metrics"]["AP50"]["estimate"] for p in paths[:2]]
    assert frcnn["metrics"]["AP50"]["estimate"] == pytest.approx(np.mean(seed_values))
    # replicate b of the pool: the seeds drawn for it, with replacement, each on image resample b
    pooled = next(cell for cell in built if cell.key == ("frcnn", 64, "base"))
    own = []  # [seed, resample, column]: each seed's replicates, summary and per-class columns
    for _, path in paths[:2]:
        with np.load(path) as data:
            own.append(np.concatenate([data["replicates"], data["class_replicates"]], axis=1))
    own = np.stack(own)
    assert pooled.replicates.shape == own.shape[1:] == (SETTINGS["resamples"], len(pooled.columns))
    draws = comparing._seed_draws(2, SETTINGS["resamples"], SETTINGS["seed"], pooled.key)
    expected = np.stack([own[draw, b].mean(axis=0) for b, draw in enumerate(draws)])
    np.testing.assert_allclose(pooled.replicates, expected, rtol=0, atol=1e-12)
    # and whatever the draws: with two seeds a replicate is seed 0's, seed 1's or their mean on
    # resample b, and all three occur (a mean of every seed alone would not carry the seed variance)
    ap50 = pooled.column("AP50")
    first, second, found = own[0, :, ap50], own[1, :, ap50], pooled.replicates[:, ap50]
    differ = ~np.isclose(first, second, rtol=0, atol=1e-9)
    kinds = np.select([np.isclose(found, first, rtol=0, atol=1e-12), np.isclose(found, second, rtol=0, atol=1e-12),
                       np.isclose(found, (first + second) / 2, rtol=0, atol=1e-12)], [0, 1, 2], default=-1)
    assert differ.sum() > 100 and np.all(kinds[differ] >= 0), np.flatnonzero(kinds < 0)
    assert set(kinds[differ]) == {0, 1, 2}
    # the written interval is the pool's, not one seed's
    assert frcnn["metrics"]["AP50"]["bias"] == pytest.approx(np.nanmean(expected[:, ap50]) - np.mean(seed_values))
    assert frcnn["metrics"]["AP50"]["se"] == pytest.approx(np.nanstd(expected[:, ap50], ddof=1))
    assert frcnn["metrics"]["AP50"]["percentile"] == pytest.approx(
        list(np.clip(np.nanquantile(expected[:, ap50], [0.025, 0.975]), 0, 1)))
    assert cells[("deim", "base")]["metrics"]["AP50"]["seed_sd"] is None
    pairs = {name: [(row["a"], row["b"]) for row in rows] for name, rows in result["tables"].items()}
    assert len(pairs["baseline"]) == 4 and all(b == "frcnn · 64 px · base" for _, b in pairs["baseline"])
    assert set(pairs["multimodal"]) == {
        ("deim · 64 px · phase1", "deim · 64 px · base"), ("deim · 64 px · phase1_shuffled", "deim · 64 px · base"),
        ("deim · 64 px · phase2", "deim · 64 px · base"),
        ("deim · 64 px · phase1", "deim · 64 px · phase1_shuffled")}
    assert pairs["extra"] == [("deim · 64 px · phase2", "deim · 64 px · phase1"),
                              ("deim · 64 px · phase2", "deim · 64 px · base")]
    from detstudy.report.significance import Significance

    read = Significance(result)  # the repeated pair keeps each table's own Holm family
    planned = read.difference("deim · 64 px · phase2", "deim · 64 px · base", "AP50", "multimodal")
    extra = read.difference("deim · 64 px · phase2", "deim · 64 px · base", "AP50", "extra")
    assert planned["p"] == extra["p"] and planned["p_holm"] >= extra["p_holm"]
    rows = result["tables"]["baseline"]
    raw = [row["metrics"]["AP50"]["p"] for row in rows]
    assert [row["metrics"]["AP50"]["p_holm"] for row in rows] == pytest.approx(holm(raw))
    deim = next(row for row in rows if row["a"] == "deim · 64 px · base")["metrics"]["AP50"]
    own = [json.loads(p[0].read_text())["metrics"]["AP50"]["estimate"] for p in paths]
    assert deim["estimate"] == pytest.approx(own[2] - np.mean(own[:2]))
    assert deim["low"] < deim["estimate"] < deim["high"]


def test_each_strategy_meets_its_own_controls_and_its_class_drops_are_measured(tmp_path):
    """The multimodal table pairs a run with text with its own controls only (fusion_only with
    fusion_only_shuffled, not with phase 1's), and a run against vanilla carries each class's
    difference, Holm-adjusted across the classes: a run that lost every class1 detection drops
    class1 alone, significantly."""
    gt, detections = scene(n_images=60)
    lost = [d for d in detections if d["category_id"] != 2]  # class1 forgotten, the rest as vanilla
    runs = [("base", detections), ("fusion_only", lost), ("fusion_only_shuffled", noisier(detections, 1, 0.2)),
            ("phase1", detections), ("phase1_shuffled", noisier(detections, 2, 0.2)),
            ("joint", noisier(detections, 3, 0.1)), ("joint_notext", noisier(detections, 4, 0.1))]
    paths = [write_run(tmp_path / phase, gt, found, {"model": "deim", "resolution": 64, "phase": phase, "seed": 0,
                                                      "family": "x"}, SETTINGS) for phase, found in runs]
    result = comparing.comparisons(statistics=[p[0] for p in paths], bootstraps=[p[1] for p in paths],
                                   settings={**SETTINGS, "baseline": None}, comparisons_path=tmp_path / "c.json")
    rows = {(row["a_key"][2], row["b_key"][2]): row for row in result["tables"]["multimodal"]}
    against_controls = {pair for pair in rows if pair[1] != "base"}
    assert against_controls == {("fusion_only", "fusion_only_shuffled"), ("phase1", "phase1_shuffled"),
                                ("joint", "joint_notext")}
    assert all(("per_class" in row) == (pair[1] == "base") for pair, row in rows.items())
    classes = rows[("fusion_only", "base")]["per_class"]
    vanilla = json.loads(paths[0][0].read_text())["per_class"]
    assert list(classes) == ["class0", "class1", "class2"]
    assert classes["class1"]["estimate"] == pytest.approx(-vanilla[1]["AP50"]["estimate"], abs=1e-12)
    assert classes["class1"]["high"] < 0 and classes["class1"]["p_holm"] < 0.05
    for name in ("class0", "class2"):  # untouched: no difference on any resample
        assert classes[name]["estimate"] == 0 and classes[name]["p_holm"] == 1
    raw = [classes[name]["p"] for name in classes]
    assert [classes[name]["p_holm"] for name in classes] == pytest.approx(holm(raw))
    identical = rows[("phase1", "base")]["per_class"]
    assert all(value["estimate"] == 0 for value in identical.values())


def test_comparisons_refuse_runs_on_other_test_images(tmp_path):
    gt, detections = scene(n_images=20)
    first = write_run(tmp_path / "a", gt, detections, {"model": "a", "resolution": 64, "phase": "base", "seed": 0}, SETTINGS)
    last = gt["images"][-1]["id"]
    fewer = {**gt, "images": gt["images"][:-1], "annotations": [a for a in gt["annotations"] if a["image_id"] != last]}
    second = write_run(tmp_path / "b", fewer, [d for d in detections if d["image_id"] != last],
                       {"model": "b", "resolution": 64, "phase": "base", "seed": 0}, SETTINGS)
    with pytest.raises(ValueError, match="not computed on the same test images"):
        comparing.comparisons(statistics=[first[0], second[0]], bootstraps=[first[1], second[1]],
                              settings={**SETTINGS, "baseline": "a", "pairs": []}, comparisons_path=tmp_path / "c.json")
    assert not (tmp_path / "c.json").exists()


def test_the_best_of_a_column_is_significant_only_against_every_other(tmp_path):
    gt, detections = scene(n_images=40)
    runs = [("good", 0.0), ("close", 0.02), ("poor", 0.6)]
    paths = [write_run(tmp_path / name, gt, noisier(detections, 3, drop),
                       {"model": name, "resolution": 64, "phase": "base", "seed": 0}, SETTINGS)
             for name, drop in runs]
    result = comparing.comparisons(statistics=[p[0] for p in paths], bootstraps=[p[1] for p in paths],
                                   settings={**SETTINGS, "baseline": None, "pairs": []},
                                   comparisons_path=tmp_path / "c.json")
    ap50 = result["best"]["AP50"]
    close_two = {"good · 64 px · base", "close · 64 px · base"}
    assert ap50["best"] in close_two and not ap50["significant"]
    assert ap50["tied"][0] == ap50["best"] and set(ap50["tied"]) == close_two  # the poor run is clearly worse
    assert ap50["p_holm"]["poor · 64 px · base"] < 0.05
    two = comparing.comparisons(statistics=[paths[0][0], paths[2][0]], bootstraps=[paths[0][1], paths[2][1]],
                                settings={**SETTINGS, "baseline": None, "pairs": []}, comparisons_path=tmp_path / "d.json")
    assert two["best"]["AP50"]["significant"] and two["best"]["AP50"]["tied"] == []
    assert set(two["best"]) >= {"AP", "AP50", "AP75", "AR100", "AP50 class0"}


# ------------------------------------------------------------------------------------- the report
def test_the_report_shows_intervals_and_bolds_only_the_significant(tmp_path):
    from test_report import TEMPLATES, _provenance, compile_latex

    from detstudy.report import render_report
    from detstudy.figures.intervals import statistics_figures

    gt, detections = scene(n_images=40)
    runs = [("frcnn", "cnn", "base", 0, 0.0), ("deim", "vit", "base", 0, 0.5),
            ("deim", "multimodal", "phase1", 0, 0.45), ("deim", "vit", "phase1_shuffled", 0, 0.5)]
    paths, metrics_paths = [], []
    for i, (model, family, phase, seed, drop) in enumerate(runs):
        run = {"model": model, "family": family, "architecture": f"{model}_arch", "resolution": 64,
               "phase": phase, "seed": seed}
        folder = tmp_path / f"{model}-{phase}"
        paths.append(write_run(folder, gt, noisier(detections, 20 + i, drop), run, SETTINGS))
        record = json.loads((folder / "metrics.json").read_text())
        record.update(dataset={"split": "test", "images": 40}, provenance=_provenance(run))
        (folder / "metrics.json").write_text(json.dumps(record))
        metrics_paths.append(folder / "metrics.json")
    out = tmp_path / "report"
    comparisons_json = tmp_path / "statistics" / "comparisons.json"
    result = comparing.comparisons(statistics=[p[0] for p in paths], bootstraps=[p[1] for p in paths],
                                   settings={**SETTINGS, "baseline": "frcnn", "pairs": []},
                                   comparisons_path=comparisons_json)
    figures = [tmp_path / "statistics" / "forest.png", tmp_path / "statistics" / "differences.png"]
    statistics_figures(comparisons_json=comparisons_json, forest_png=figures[0], differences_png=figures[1])
    render_report(metrics_paths=metrics_paths, figures={}, out_html=out / "index.html", out_md=out / "report.md",
                  out_tables_dir=out / "tables", templates_dir=TEMPLATES, comparisons_json=comparisons_json,
                  statistics_figures=figures)
    html, md = (out / "index.html").read_text(), (out / "report.md").read_text()
    tex = (out / "tables" / "runs.tex").read_text()
    frcnn = next(c for c in result["cells"] if c["model"] == "frcnn")["metrics"]["AP50"]
    shown = f"[{frcnn['low']:.3f}, {frcnn['high']:.3f}]"
    assert f'<span class="ci">{shown}</span>' in html and shown in md
    assert rf"[\num{{{frcnn['low']:.3f}}}, \num{{{frcnn['high']:.3f}}}]" in tex
    best = result["best"]["AP50"]
    winner = f"{next(c for c in result['cells'] if c['label'] == best['best'])['metrics']['AP50']['estimate']:.3f}"
    assert best["significant"] == (f"<strong>{winner}</strong>" in html)  # bold only when significant
    assert "ΔAP50 vs frcnn" in html and "baseline" in html
    assert "Does the text help?" in html and "the text fusion's AP50 gain over vanilla" in md
    assert "shuffled-text control" in md and md.count("![") == 2
    assert html.count('src="data:image/png') == 2
    bias, basic = f"{frcnn['bias']:+.3f}", f"[{frcnn['basic'][0]:.3f}, {frcnn['basic'][1]:.3f}]"
    assert "Appendix: bootstrap" in html and f"| {frcnn['estimate']:.3f} | {bias} | {basic} | {shown} |" in md
    compile_latex(out / "tables")


def test_a_subset_of_the_matches_is_the_matching_of_the_subset():
    gt, detections = scene(seed=4)
    chosen = [3, 0, 7, 12, 19]
    ids = {gt["images"][i]["id"] for i in chosen}
    sub_gt = {**gt, "images": [im for im in gt["images"] if im["id"] in ids],
              "annotations": [a for a in gt["annotations"] if a["image_id"] in ids]}
    sub_dets = [d for d in detections if d["image_id"] in ids]
    weights = resample_weights(len(chosen), 10, seed=2)
    direct = resampled_statistics(extract_matches(coco_evaluator(sub_gt, sub_dets)), weights)
    via = resampled_statistics(extract_matches(coco_evaluator(gt, detections)).subset(chosen), weights)
    for a, b in zip(direct, via):
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.nanmax(np.abs(a - b), initial=0) == 0


def _drawn_at(ax, y) -> tuple[list[tuple[float, float]], list]:
    """What a row of an interval figure shows, read back from any kind of artist: the horizontal
    segments at height ``y`` as (left, right), and the one-point markers there."""
    from matplotlib.collections import LineCollection

    segments, markers = [], []
    for line in ax.lines:
        xs, ys = (np.asarray(v, dtype=float) for v in line.get_data())
        if len(ys) and np.all(ys == y):
            if len(xs) == 1 and line.get_marker() == "o":
                markers.append(line)
            elif len(xs) > 1:
                segments.append((xs.min(), xs.max()))
    for collection in ax.collections:
        if isinstance(collection, LineCollection):
            segments += [(seg[:, 0].min(), seg[:, 0].max()) for seg in collection.get_segments()
                         if len(seg) > 1 and np.all(seg[:, 1] == y)]
    return segments, markers


def test_the_forest_plot_draws_each_cell_at_its_interval(tmp_path):
    from detstudy.figures.intervals import plot_differences, plot_forest

    gt, detections = scene(n_images=30)
    paths = [write_run(tmp_path / name, gt, noisier(detections, i, drop),
                       {"model": name, "resolution": 64, "phase": "base", "seed": 0, "family": family}, SETTINGS)
             for i, (name, family, drop) in enumerate((("a", "cnn", 0.0), ("b", "vit", 0.3), ("c", "vit", 0.6)))]
    record = comparing.comparisons(statistics=[p[0] for p in paths], bootstraps=[p[1] for p in paths],
                                   settings={**SETTINGS, "baseline": "a", "pairs": []}, comparisons_path=tmp_path / "c.json")
    figure = plot_forest(record, tmp_path / "forest.png")
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [c["label"] for c in record["cells"]]
    for row, cell in enumerate(record["cells"]):
        value = cell["metrics"]["AP50"]
        segments, (marker,) = _drawn_at(ax, row)
        assert marker.get_xdata()[0] == pytest.approx(value["estimate"])
        assert segments == [pytest.approx((value["low"], value["high"]))]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["cnn", "vit"]
    figure = plot_differences(record, tmp_path / "differences.png")
    ax = figure.axes[0]
    rows = record["tables"]["baseline"]
    assert [t.get_text() for t in ax.get_yticklabels()] == [row["a"] for row in rows] and len(rows) == 2
    for y, row in enumerate(rows):
        significant = row["metrics"]["AP50"]["p_holm"] < 0.05
        segments, (marker,) = _drawn_at(ax, y)
        assert segments == [pytest.approx((row["metrics"]["AP50"]["low"], row["metrics"]["AP50"]["high"]))]
        assert (marker.get_markerfacecolor() != "white") == significant
    assert (tmp_path / "forest.png").read_bytes()[:4] == b"\x89PNG"


def test_an_interval_on_one_side_of_its_estimate_is_drawn_as_it_is(tmp_path):
    """A basic or BCa interval can exclude its estimate: it is drawn from low to high, not
    stretched to the estimate."""
    from detstudy.figures.intervals import plot_differences, plot_forest

    intervals = [(0.50, 0.60, 0.70), (0.50, 0.30, 0.45), (0.50, 0.40, 0.60)]  # above, below, around
    metrics = [{"AP50": {"estimate": e, "low": lo, "high": hi, "p_holm": 0.01}} for e, lo, hi in intervals]
    record = {"cells": [{"family": "cnn", "label": f"cell {i}", "metrics": m} for i, m in enumerate(metrics)],
              "tables": {"baseline": [{"a": f"cell {i}", "metrics": m} for i, m in enumerate(metrics)]},
              "settings": {"level": 0.95, "method": "bca", "resamples": 100, "alpha": 0.05, "baseline": "base"}}
    for plot in (plot_forest, plot_differences):
        ax = plot(record, tmp_path / f"{plot.__name__}.png").axes[0]
        for y, (estimate, low, high) in enumerate(intervals):
            segments, markers = _drawn_at(ax, y)
            assert segments == [pytest.approx((low, high))], (plot.__name__, y)
            assert [m.get_xdata()[0] for m in markers] == [pytest.approx(estimate)]


# --------------------------------------------------------------------------------------
# one class at a time: the same numbers as every class held at once
# --------------------------------------------------------------------------------------
def _previous_resampled_statistics(matches, weights, chunk=2000):
    """resampled_statistics as it was before it went one class (and IoU threshold) at a time:
    every class's [true positives x images] counts built first and held together. Kept verbatim
    as the reference the new order must reproduce to the bit."""
    from detstudy.tasks.detection.evaluation import resampled_ap as rap

    def class_counts(cls, n_images):
        counts = []
        for t in range(cls.true.shape[0]):
            positions = np.flatnonzero(cls.true[t])
            if not len(positions):
                counts.append(None)
                continue
            counts.append((rap._counts_before(positions, cls.image, n_images),
                           rap._counts_before(np.flatnonzero(cls.false[t]), cls.image, n_images, at=positions)))
        return counts

    def class_precision(cls, weights, recall_thresholds, before):
        batch, n_thresholds = len(weights), cls.true.shape[0]
        w = weights.astype(float)
        n_gt = weights @ cls.gt_counts
        precision = np.zeros((batch, n_thresholds, len(recall_thresholds)))
        recall = np.zeros((batch, n_thresholds))
        needed = rap._minimal_counts(recall_thresholds, n_gt)
        eps = np.spacing(1)
        for t in range(n_thresholds):
            if before[t] is None:
                continue
            true_before, false_before = before[t]
            n_positions = true_before.shape[0]
            tp = w @ true_before.T
            fp = w @ false_before.T
            pr = tp / (fp + tp + eps)
            envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            top = int(tp[:, -1].max()) + 1
            span = top + 1
            offsets = np.arange(batch, dtype=float)[:, None] * span
            counts = np.arange(top + 1, dtype=float)[None, :]
            found = np.searchsorted((tp + offsets).ravel(), (counts + offsets).ravel(), side="left").reshape(batch, -1)
            found -= np.arange(batch)[:, None] * n_positions
            at_count = np.where(found < n_positions,
                                np.take_along_axis(envelope, np.minimum(found, n_positions - 1), axis=1), 0.0)
            precision[:, t] = np.take_along_axis(at_count, np.minimum(needed, top).astype(np.int64), axis=1)
            recall[:, t] = tp[:, -1] / np.maximum(n_gt, 1)
        return precision, recall, n_gt > 0

    def statistics(weights, counts):
        batch, n_classes = len(weights), len(matches.classes)
        thresholds = matches.iou_thresholds
        t50 = np.where(thresholds == 0.5)[0]
        t75 = np.where(thresholds == 0.75)[0]
        ap_sum = np.zeros((batch, 3))
        recall_sum = np.zeros(batch)
        valid = np.zeros(batch)
        per_class = np.full((batch, n_classes), np.nan)
        for k, cls in enumerate(matches.classes):
            if cls.tied:
                precision, recall, present = rap._class_precision_copies(cls, weights, matches.recall_thresholds)
            else:
                precision, recall, present = class_precision(cls, weights, matches.recall_thresholds, counts[k])
            mask = present.astype(float)
            ap_sum[:, 0] += mask * precision.mean(axis=(1, 2))
            ap_sum[:, 1] += mask * precision[:, t50].mean(axis=(1, 2))
            ap_sum[:, 2] += mask * precision[:, t75].mean(axis=(1, 2))
            recall_sum += mask * recall.mean(axis=1)
            valid += mask
            per_class[:, k] = np.where(present, precision[:, t50].mean(axis=(1, 2)), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            summary = np.column_stack([ap_sum / valid[:, None], recall_sum / valid])
        summary[valid == 0] = np.nan
        return summary, per_class

    weights = np.asarray(weights, dtype=np.int64)
    counts = [None if cls.tied else class_counts(cls, matches.n_images) for cls in matches.classes]
    summaries, per_class = [], []
    for start in range(0, len(weights), chunk):
        s, c = statistics(weights[start:start + chunk], counts)
        summaries.append(s)
        per_class.append(c)
    return np.concatenate(summaries), np.concatenate(per_class)


def _random_matches(seed: int, n_images: int = 60, n_classes: int = 4):
    """Made-up matches: per class, true positives at thresholds they pass, false positives,
    images without boxes of the class, one class with no detection, one without a true
    positive at the strict thresholds."""
    from detstudy.tasks.detection.evaluation.resampled_ap import ClassMatches, Matches

    rng = np.random.default_rng(seed)
    iou_thresholds = np.linspace(0.5, 0.95, 10)
    classes = []
    for k in range(n_classes):
        n = 0 if k == n_classes - 1 else int(rng.integers(20, 200))
        image = rng.integers(0, n_images, n)
        iou = rng.uniform(0.0, 0.9 if k == 1 else 1.0, n)
        score = rng.random(n)
        order = np.argsort(-score, kind="mergesort")
        image, iou, score = image[order], iou[order], score[order]
        true = iou[None, :] >= iou_thresholds[:, None]
        false = ~true & (rng.random(n) > 0.05)[None, :]  # a few ignored (matched to a crowd region)
        gt_counts = rng.integers(0, 3, n_images) * (rng.random(n_images) < 0.7)
        classes.append(ClassMatches(image=image, true=true, false=false, score=score, gt_counts=gt_counts,
                                    tied=False))
    return Matches(image_ids=list(range(1, n_images + 1)), category_ids=list(range(1, n_classes + 1)),
                   classes=classes, iou_thresholds=iou_thresholds, recall_thresholds=np.linspace(0, 1, 101))


@pytest.mark.kernel_sensitive
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_class_at_a_time_gives_the_all_at_once_numbers_to_the_bit(seed):
    """The statistics are built one class and IoU threshold at a time (the peak memory is one
    pair of [true positives x images] arrays, not all of them); resample by resample, class by
    class, the numbers equal those of every class held at once, on made-up matches and on
    COCOeval's (with a class accumulated copy by copy), in chunks of other sizes too."""
    cases = [_random_matches(seed),
             extract_matches(coco_evaluator(*scene(seed, n_images=40, n_classes=4, same_score_pairs=True)))]
    assert any(cls.tied for cls in cases[1].classes) and not any(cls.tied for cls in cases[0].classes)
    for matches in cases:
        weights = np.concatenate([np.ones((1, matches.n_images), dtype=np.int64),
                                  resample_weights(matches.n_images, 150, seed),
                                  1 - np.eye(matches.n_images, dtype=np.int64)])
        expected = _previous_resampled_statistics(matches, weights, chunk=64)
        for chunk in (64, 2000, 7):
            found = resampled_statistics(matches, weights, chunk=chunk)
            for want, got in zip(expected, found):
                assert want.shape == got.shape and np.array_equal(want, got, equal_nan=True), chunk


def test_the_peak_memory_is_one_class_and_threshold_not_all_classes():
    """The [true positives x images] counts are the statistics' largest arrays (800 MB each for
    20 000 true positives on 5 000 images). Held for every class and IoU threshold at once, the
    peak was about 12 of them for one class and 45 for four; built one class and threshold at a
    time it is about 3, whatever the number of classes (benchmarks/bootstrap_memory.py)."""
    import tracemalloc

    from detstudy.tasks.detection.evaluation.resampled_ap import ClassMatches, Matches

    n_images, positives, n_classes = 300, 400, 4
    rng = np.random.default_rng(0)
    iou_thresholds = np.linspace(0.5, 0.95, 10)
    classes = []
    for _ in range(n_classes):
        image = np.concatenate([rng.integers(0, n_images, positives), np.repeat(np.arange(n_images), 2)])
        iou = np.concatenate([rng.uniform(0.5, 1.0, positives), np.zeros(2 * n_images)])
        order = np.argsort(-rng.random(len(image)), kind="mergesort")
        true = iou[order][None, :] >= iou_thresholds[:, None]
        classes.append(ClassMatches(image=image[order], true=true, false=~true, score=np.sort(rng.random(len(image)))[::-1],
                                    gt_counts=np.bincount(image[:positives], minlength=n_images), tied=False))
    matches = Matches(image_ids=list(range(1, n_images + 1)), category_ids=list(range(1, n_classes + 1)),
                      classes=classes, iou_thresholds=iou_thresholds, recall_thresholds=np.linspace(0, 1, 101))
    weights = resample_weights(n_images, 20, 0)
    one_array = positives * n_images * 8  # [true positives at IoU 0.5 x images] float64
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        resampled_statistics(matches, weights)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak < 5 * one_array, f"peak {peak / one_array:.1f} arrays of {one_array / 2**20:.1f} MiB"
