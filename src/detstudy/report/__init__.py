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

Everything public is re-exported here, lazily, so ``from detstudy.report import render_report``
and ``report.runs_table(...)`` work without one module importing all the others.
"""

from __future__ import annotations

import importlib

#: Where each public name lives: imported on first use (PEP 562), so that importing one
#: module of the package (the tables, say) does not run the others; the workflow's code
#: inputs (``detstudy.study.codegraph``) then list exactly what a job runs.
_EXPORTS = {
    "DASH": "detstudy.report.formatting",
    "FAMILY_LABELS": "detstudy.report.tables",
    "FAMILY_ORDER": "detstudy.report.tables",
    "FIGURE_KINDS": "detstudy.report.figure_sections",
    "GROUP_KEYS": "detstudy.report.tables",
    "MULTIMODAL_FIGURE_KINDS": "detstudy.report.figure_sections",
    "OPERATING_COLUMNS": "detstudy.report.tables",
    "RUN_COLUMNS": "detstudy.report.tables",
    "class_names": "detstudy.report.tables",
    "family_label": "detstudy.report.tables",
    "family_rank": "detstudy.report.tables",
    "fmt_number": "detstudy.report.formatting",
    "is_phase_run": "detstudy.study.grid",
    "latex_escape": "detstudy.report.formatting",
    "load_runs": "detstudy.report.tables",
    "markdown_escape": "detstudy.report.formatting",
    "multimodal_label": "detstudy.study.grid",
    "multimodal_table": "detstudy.report.tables",
    "operating_points_table": "detstudy.report.tables",
    "pair_confusion": "detstudy.report.tables",
    "per_class_table": "detstudy.report.tables",
    "phase_label": "detstudy.study.grid",
    "render_report": "detstudy.report.render",
    "report": "detstudy.report.render",
    "run_label": "detstudy.study.grid",
    "runs_table": "detstudy.report.tables",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
