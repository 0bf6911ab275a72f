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
* :mod:`detstudy.report.formatting`: numbers, LaTeX / Markdown escaping, table cells;
* :mod:`detstudy.report.views`: the metric tables' view models (runs, per class,
  operating points, multimodal phases);
* :mod:`detstudy.report.data_views`: the dataset's tables and the class prompts;
* :mod:`detstudy.report.appendix`: the training and provenance appendices;
* :mod:`detstudy.report.figure_sections`: which figures, in what order, embedded or linked;
* :mod:`detstudy.report.render`: :func:`render_report`, the templates filled in.

Everything public is re-exported here, so ``from detstudy.report import render_report``
and ``report.runs_table(...)`` keep working.
"""

from __future__ import annotations

from detstudy.multimodal.chain import is_phase_run, multimodal_label, phase_label, run_label
from detstudy.report.figure_sections import FIGURE_KINDS, MULTIMODAL_FIGURE_KINDS
from detstudy.report.formatting import DASH, fmt_number, latex_escape, markdown_escape
from detstudy.report.render import render_report, report
from detstudy.report.tables import (
    FAMILY_LABELS,
    FAMILY_ORDER,
    GROUP_KEYS,
    OPERATING_COLUMNS,
    RUN_COLUMNS,
    class_names,
    family_label,
    family_rank,
    load_runs,
    multimodal_table,
    operating_points_table,
    pair_confusion,
    per_class_table,
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
    "report",
    "run_label",
    "runs_table",
]
