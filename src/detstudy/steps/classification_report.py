"""The ``classification_report`` step: the classification study's HTML, Markdown and LaTeX report (``detstudy.report.classification_report``)."""

from __future__ import annotations

from detstudy.report.classification_report import render_classification_report
from detstudy.report.figure_sections import Preview


def classification_report(*, preview_width: int | None = 1000, jpeg_quality: int = 80, **report) -> None:
    render_classification_report(preview=Preview(preview_width, jpeg_quality), **report)
