"""The segmentation study's report: its tables (results with intervals and the difference to the
baseline, per-class IoU, costs) and figures filled into the templates of
``report/templates/segmentation`` as HTML (figures embedded), Markdown and LaTeX (booktabs +
siunitx). The tables are the detection report's generic ones (:func:`metric_table`): a value is
bold only where it is significantly the best of its column (paired bootstrap, Holm-adjusted)."""

from __future__ import annotations

from pathlib import Path

from detstudy.engine.io import read_json
from detstudy.report.figure_sections import Preview, figure_item
from detstudy.report.outputs import SEGMENTATION_LATEX_TABLES, SEGMENTATION_TEMPLATES
from detstudy.report.render import inference_view
from detstudy.report.task_tables import (SEGMENTATION_COLUMNS, MODEL_COST_COLUMNS, cell_table,
                                                 class_metric_table, load_task_runs)
from detstudy.report.significance import Significance
from detstudy.report.tables import cost_devices
from detstudy.report.task_report import check_task_templates, task_figures, write_task_report
from detstudy.report.views import metric_table, per_class_view
from detstudy.study.figure_kinds import SEGMENTATION_CROSS_RUN_FIGURE_KINDS, SEGMENTATION_FIGURE_KINDS
from detstudy.study.grid import run_label



def dataset_view(statistics: dict) -> dict:
    """Per class: pixel share and images per split, and the loss's weight."""
    splits = list(statistics["splits"])
    rows = []
    for k, name in enumerate(statistics["classes"]):
        rows.append({"name": name, "weight": f"{statistics['class_weights']['values'][k]:.3f}",
                     "splits": [{"share": f"{100 * statistics['splits'][s]['per_class'][k]['pixel_share']:.2f} %",
                                 "images": statistics["splits"][s]["per_class"][k]["images"]} for s in splits]})
    return {"splits": splits, "images": {s: statistics["splits"][s]["images"] for s in splits}, "rows": rows,
            "method": statistics["class_weights"]["method"], "warnings": statistics.get("warnings", [])}


def render_segmentation_report(*, metrics_paths: list, statistics_json, statistics_png, comparisons_json,
                               figures: dict[str, dict[str, str]], cross_run_figures: dict[str, str],
                               statistics_figures: dict[str, str], out_html, out_md, out_tables: dict[str, str],
                               templates_dir, title: str, preview: Preview = Preview()) -> None:
    """``figures``: run label -> {kind: png}; ``out_tables``: stem -> .tex path."""
    templates_dir = check_task_templates(templates_dir, "segmentation", SEGMENTATION_TEMPLATES)
    runs = load_task_runs(metrics_paths)
    significance = Significance.load(comparisons_json)
    results = cell_table(runs, SEGMENTATION_COLUMNS)
    costs = cell_table(runs, MODEL_COST_COLUMNS)
    classes = class_metric_table(runs, "IoU")
    tables = {
        "results": metric_table(results, SEGMENTATION_COLUMNS, key="results", caption="Test results",
                                significance=significance, baseline_metric="mIoU"),
        "per_class": per_class_view(classes, "IoU", significance),
        "costs": metric_table(costs, MODEL_COST_COLUMNS, key="costs", caption="Costs"),
    }
    protocol = runs[0]["protocol"] if runs else {}
    inference = inference_view(significance)

    shared = task_figures(figures=figures, cross_run_figures=cross_run_figures, statistics_figures=statistics_figures,
                          run_kinds=SEGMENTATION_FIGURE_KINDS, cross_run_kinds=SEGMENTATION_CROSS_RUN_FIGURE_KINDS)

    def figure_block(preview_: Preview | None, folder: Path) -> dict:
        return {**shared(preview_, folder),
                "dataset": figure_item("statistics", "Class balance", statistics_png, folder, preview_)}

    context = {"title": title, "tables": tables, "dataset": dataset_view(read_json(statistics_json)),
               "protocol": protocol, "inference": inference, "devices": cost_devices(runs),
               "multi_seed": bool(len(results)) and int(results["n_seeds"].max()) > 1,
               "run_labels": [run_label(r["run"]) for r in runs]}
    write_task_report(task="segmentation", templates_dir=templates_dir, context=context, figures=figure_block,
                      preview=preview, out_html=out_html, out_md=out_md, out_tables=out_tables,
                      latex_tables=SEGMENTATION_LATEX_TABLES)
