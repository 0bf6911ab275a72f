"""The ``report`` step: the report rendered (HTML, Markdown, LaTeX) (``detstudy.report.render``)."""

from detstudy.report.render import report

__all__ = ["report"]
