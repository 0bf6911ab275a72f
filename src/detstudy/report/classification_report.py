"""The classification study's report: its tables (results with intervals and the difference to
the baseline, the seed study's train / val / test table, the paired tests against the baseline
with McNemar's exact test, per-class F1, costs) and figures filled into the templates of
``report/templates/classification`` as HTML (figures embedded), Markdown and LaTeX (booktabs +
siunitx). A value is bold only where it is significantly the best of its column (paired
bootstrap, Holm-adjusted)."""

from __future__ import annotations

from detstudy.engine.io import read_json
from detstudy.report.figure_sections import Preview
from detstudy.report.formatting import cell, interval_text, p_text
from detstudy.report.outputs import CLASSIFICATION_LATEX_TABLES, CLASSIFICATION_TEMPLATES
from detstudy.report.render import inference_view
from detstudy.report.significance import Significance
from detstudy.report.tables import cost_devices
from detstudy.report.task_report import check_task_templates, task_figures, write_task_report
from detstudy.report.task_tables import (CLASSIFICATION_COLUMNS, MODEL_COST_COLUMNS, TRAIN_VAL_TEST_COLUMNS,
                                         cell_table, class_metric_table, load_task_runs)
from detstudy.report.views import metric_table, per_class_view
from detstudy.study.figure_kinds import CLASSIFICATION_CROSS_RUN_FIGURE_KINDS, CLASSIFICATION_FIGURE_KINDS
from detstudy.study.grid import run_label


def dataset_view(checks: dict[str, str]) -> dict:
    """Images per class and split, from the splits' check reports."""
    reports = {split: read_json(path) for split, path in checks.items()}
    splits = list(reports)
    classes = reports[splits[0]]["counts"]["classes"] if splits else []
    counts = {split: {e["name"]: e["images"] for e in r["counts"]["per_class"]} for split, r in reports.items()}
    return {"splits": splits, "images": {s: reports[s]["counts"]["images"] for s in splits},
            "rows": [{"name": name, "images": [counts[s].get(name, 0) for s in splits]} for name in classes],
            "warnings": [f"{split}: {w}" for split, r in reports.items() for w in r.get("warnings", [])]}


def tests_view(significance: Significance | None) -> dict | None:
    """Every cell against the baseline: the accuracy difference with its interval and Holm p, and
    McNemar's exact test (images only one of the two got right, Holm p)."""
    if significance is None:
        return None
    rows = significance.record["tables"].get("baseline", [])
    if not rows:
        return None
    columns = [{"label": "Cell", "long": "Cell", "tex": "Cell", "numeric": False},
               {"label": "Baseline", "long": "Baseline", "tex": "Baseline", "numeric": False},
               {"label": "ΔAccuracy", "long": "Δaccuracy [interval]", "tex": r"$\Delta$Acc.", "numeric": True},
               {"label": "Bootstrap p (Holm)", "long": "bootstrap p (Holm)", "tex": r"$p_\text{boot}$", "numeric": True},
               {"label": "Only cell right", "long": "images only the cell got right", "tex": r"$n_{10}$", "numeric": True},
               {"label": "Only baseline right", "long": "images only the baseline got right", "tex": r"$n_{01}$",
                "numeric": True},
               {"label": "McNemar p (Holm)", "long": "McNemar exact p (Holm)", "tex": r"$p_\text{McN}$", "numeric": True}]
    view = []
    for row in rows:
        accuracy, test = row["metrics"].get("accuracy", {}), row.get("mcnemar") or {}
        better = (accuracy.get("p_holm") is not None and accuracy["p_holm"] < significance.alpha
                  and accuracy.get("estimate", 0) > 0)
        view.append({"cells": [cell(row["a"]), cell(row["b"]),
                               cell(f"{accuracy['estimate']:+.3f}" if accuracy.get("estimate") is not None else "–",
                                    numeric=True, best=better,
                                    interval=interval_text((accuracy["low"], accuracy["high"]))
                                    if accuracy.get("low") is not None else None),
                               cell(p_text(accuracy.get("p_holm")), numeric=True),
                               cell(str(test.get("a_only", "–")), numeric=True),
                               cell(str(test.get("b_only", "–")), numeric=True),
                               cell(p_text(test.get("p_holm")), numeric=True,
                                    best=test.get("p_holm") is not None and test["p_holm"] < significance.alpha
                                    and test["a_only"] > test["b_only"])],
                     "family_start": False, "first_row": not view, "family": ""})
    return {"key": "tests", "caption": "Paired tests against the baseline", "columns": columns, "rows": view,
            "n_key_columns": 2, "group_headers": None, "group_first_column": False}


def train_val_test_view(runs: list[dict], significance: Significance | None) -> dict:
    """The seed study's table: the best epoch, its train and validation loss and accuracy, the
    test's, under one group header each (the key columns first, as many as the table has)."""
    table = metric_table(cell_table(runs, TRAIN_VAL_TEST_COLUMNS), TRAIN_VAL_TEST_COLUMNS, key="train_val_test",
                         caption="Train, validation and test", significance=significance)
    table["group_headers"] = [{"label": "", "span": table["n_key_columns"]}, {"label": "best epoch", "span": 1},
                              {"label": "train", "span": 2}, {"label": "validation", "span": 2},
                              {"label": "test", "span": 2}]
    return table


def preprocessing_view(runs: list[dict]) -> list[dict]:
    """What each model's input was (one line per model): the mean/std and the channel order."""
    seen = {}
    for run in runs:
        p = run["protocol"].get("preprocessing") or {}
        seen.setdefault(run["run"].get("model"), {
            "model": run["run"].get("model"), "channel_order": p.get("channel_order", "RGB"),
            "mean": ", ".join(f"{v:g}" for v in p.get("mean", ())), "std": ", ".join(f"{v:g}" for v in p.get("std", ()))})
    return list(seen.values())


def render_classification_report(*, metrics_paths: list, checks: dict[str, str], comparisons_json,
                                 figures: dict[str, dict[str, str]], cross_run_figures: dict[str, str],
                                 statistics_figures: dict[str, str], out_html, out_md, out_tables: dict[str, str],
                                 templates_dir, title: str, preview: Preview = Preview()) -> None:
    """``figures``: run label -> {kind: png}; ``checks``: split -> its check report; ``out_tables``: stem -> .tex."""
    templates_dir = check_task_templates(templates_dir, "classification", CLASSIFICATION_TEMPLATES)
    runs = load_task_runs(metrics_paths)
    significance = Significance.load(comparisons_json)
    results = cell_table(runs, CLASSIFICATION_COLUMNS)
    columns = [c for c in CLASSIFICATION_COLUMNS if results[c.key].notna().any()]  # top-5: more than 5 classes
    tables = {
        "results": metric_table(results, columns, key="results", caption="Test results", significance=significance,
                                baseline_metric="accuracy"),
        "train_val_test": train_val_test_view(runs, significance),
        "tests": tests_view(significance),
        "per_class": per_class_view(class_metric_table(runs, "F1"), "F1", significance),
        "costs": metric_table(cell_table(runs, MODEL_COST_COLUMNS), MODEL_COST_COLUMNS, key="costs", caption="Costs"),
    }
    protocol = runs[0]["protocol"] if runs else {}

    figure_block = task_figures(figures=figures, cross_run_figures=cross_run_figures,
                                statistics_figures=statistics_figures, run_kinds=CLASSIFICATION_FIGURE_KINDS,
                                cross_run_kinds=CLASSIFICATION_CROSS_RUN_FIGURE_KINDS)

    context = {"title": title, "tables": tables, "dataset": dataset_view(checks), "protocol": protocol,
               "preprocessing": preprocessing_view(runs),
               "inference": inference_view(significance), "devices": cost_devices(runs),
               "multi_seed": bool(len(results)) and int(results["n_seeds"].max()) > 1,
               "run_labels": [run_label(r["run"]) for r in runs]}
    write_task_report(task="classification", templates_dir=templates_dir, context=context, figures=figure_block,
                      preview=preview, out_html=out_html, out_md=out_md, out_tables=out_tables,
                      latex_tables=CLASSIFICATION_LATEX_TABLES)
