"""The report: every run's metrics in one HTML page, one Markdown file and LaTeX tables.

Input is the per-run ``metrics.json`` described in ``docs/metrics_schema.md`` (one file
per model x resolution x phase x seed, all evaluated with the same protocol), the dataset
statistics JSON and the per-run figures. Output:

* ``index.html``: one self-contained page (figures embedded as ``data:`` URIs, inline CSS,
  no external assets, no JavaScript);
* ``report.md``: the same tables in GitHub Markdown, figures linked relative to the file;
* ``runs.tex``, ``per_class_ap50.tex`` and ``multimodal.tex`` (the phases and controls of the
  multimodal extension against their vanilla run, or a LaTeX comment when there are none):
  booktabs ``table`` environments to ``\\input`` into a thesis.

The numbers are computed here (pandas); the layout lives in Jinja templates
(``report/templates``) that only know about generic tables, so new models, phases or
controls need no template change.

The package has one job per module:

* :mod:`detstudy.report.tables`: loading the metrics JSONs and building the DataFrames
  (seed aggregation, sort order, run labels);
* :mod:`detstudy.report.render`: number formatting, LaTeX / Markdown escaping, the view
  models the templates lay out, and :func:`render_report`.

Everything public is re-exported here, so ``from detstudy.report import render_report``
and ``report.runs_table(...)`` keep working.
"""

from __future__ import annotations

from detstudy.report.render import (
    DASH,
    FIGURE_KINDS,
    MULTIMODAL_FIGURE_KINDS,
    _metric_table,
    fmt_number,
    latex_escape,
    markdown_escape,
    render_report,
)
from detstudy.report.tables import (
    FAMILY_LABELS,
    FAMILY_ORDER,
    GROUP_KEYS,
    OPERATING_COLUMNS,
    RUN_COLUMNS,
    class_names,
    family_label,
    family_rank,
    is_phase_run,
    load_runs,
    multimodal_label,
    multimodal_table,
    operating_points_table,
    pair_confusion,
    per_class_table,
    phase_label,
    run_label,
    runs_table,
)

__all__ = [
    "DASH",
    "FAMILY_LABELS",
    "FAMILY_ORDER",
    "FIGURE_KINDS",
    "GROUP_KEYS",
    "MULTIMODAL_FIGURE_KINDS",
    "OPERATING_COLUMNS",
    "RUN_COLUMNS",
    "class_names",
    "family_label",
    "family_rank",
    "fmt_number",
    "is_phase_run",
    "latex_escape",
    "load_runs",
    "markdown_escape",
    "multimodal_label",
    "multimodal_table",
    "operating_points_table",
    "pair_confusion",
    "per_class_table",
    "phase_label",
    "render_report",
    "run_label",
    "runs_table",
]
