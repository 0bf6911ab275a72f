"""The ``segmentation_report`` step: the segmentation study's HTML, Markdown and LaTeX report (``detstudy.report.segmentation_report``)."""

from __future__ import annotations

from detstudy.report.figure_sections import Preview
from detstudy.report.segmentation_report import render_segmentation_report


def segmentation_report(*, preview_width: int | None = 1000, jpeg_quality: int = 80, **report) -> None:
    render_segmentation_report(preview=Preview(preview_width, jpeg_quality), **report)
