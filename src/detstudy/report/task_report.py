"""What the segmentation and classification reports share: their templates checked, their
figures laid out per output (embedded previews in the HTML, links in the Markdown) and the three
formats written from one context (the detection report, older and larger, has its own in
:mod:`detstudy.report.render`)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from detstudy.report.figure_sections import Preview, figure_item
from detstudy.report.render import check_templates, environments, write_rendered

#: The partials every task's templates include.
SHARED_TEMPLATES = ["_style.css.j2", "_table.html.j2", "_table.md.j2", "_table.tex.j2"]


def check_task_templates(templates_dir, task: str, names) -> Path:
    """The templates folder, refused with the missing files named (:func:`check_templates`)."""
    return check_templates(templates_dir, [f"{task}/{name}" for name in names] + SHARED_TEMPLATES)


def task_figures(*, figures: dict[str, dict[str, str]], cross_run_figures: dict[str, str],
                 statistics_figures: dict[str, str], run_kinds: dict[str, str], cross_run_kinds: dict[str, str]
                 ) -> Callable[[Preview | None, Path], dict]:
    """``(preview, folder) -> {"cross_run", "statistics", "runs"}``: the report's figures as seen
    from ``folder`` (the output's), embedded at ``preview`` size or linked when it is ``None``."""
    def block(preview: Preview | None, folder: Path) -> dict:
        return {
            "cross_run": [figure_item(kind, cross_run_kinds[kind], path, folder, preview)
                          for kind, path in cross_run_figures.items()],
            "statistics": [figure_item(kind, kind.capitalize(), path, folder, preview)
                           for kind, path in statistics_figures.items()],
            "runs": [{"label": label, "figures": [figure_item(kind, run_kinds.get(kind, kind), path, folder, preview)
                                                  for kind, path in kinds.items()]}
                     for label, kinds in figures.items()],
        }
    return block


def write_task_report(*, task: str, templates_dir: Path, context: dict, figures: Callable[[Preview | None, Path], dict],
                      preview: Preview, out_html, out_md, out_tables: dict[str, str],
                      latex_tables: dict[str, str]) -> None:
    """``<task>/index.html.j2`` (figures embedded), ``<task>/report.md.j2`` (figures linked) and
    each LaTeX table, every one written atomically."""
    out_html, out_md = Path(out_html), Path(out_md)
    html, markdown, latex = environments(templates_dir)
    write_rendered(out_html, html.get_template(f"{task}/index.html.j2").render(
        **context, figures=figures(preview, out_html.parent)))
    write_rendered(out_md, markdown.get_template(f"{task}/report.md.j2").render(
        **context, figures=figures(None, out_md.parent)))
    for stem, template in latex_tables.items():
        write_rendered(out_tables[stem], latex.get_template(f"{task}/{template}").render(**context))
