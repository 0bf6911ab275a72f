"""How the report writes things: numbers, escaping for LaTeX and Markdown, and table cells.

Every view model (:mod:`detstudy.report.views`, :mod:`detstudy.report.data_views`,
:mod:`detstudy.report.appendix`) is made of :func:`cell` dicts, so the three templates lay out
any table alike.
"""

from __future__ import annotations

import re

from detstudy.report.tables import is_missing

DASH = "–"  # what a missing number (None / NaN) renders as


def fmt_number(value, decimals: int = 3) -> str:
    if is_missing(value):
        return DASH
    text = f"{float(value):.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.000"


def latex_escape(text) -> str:
    """Escape LaTeX's special characters (``ROTURA_FRACTURA`` -> ``ROTURA\\_FRACTURA``)."""
    text = str(text)
    replacements = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
        "<": r"\textless{}",
        ">": r"\textgreater{}",
        DASH: "--",
        "·": r"$\cdot$",
        "±": r"$\pm$",
        "Δ": r"$\Delta$",
    }
    return "".join(replacements.get(ch, ch) for ch in text)


_NUMBER = re.compile(r"(?<![\w.])([+-]?\d+(?:\.\d+)?)(?![\w.])")


def latex_numbers(text, bold: bool = False) -> str:
    """``text`` escaped for LaTeX with every number in it set by siunitx's ``\\num``.

    So a thesis typesets the tables' numbers as its own (``\\sisetup{output-decimal-marker={,}}``
    gives decimal commas); an explicit sign is kept (``+0.012`` is a difference, not a value).
    ``bold``: siunitx 3 resets the font series, so a bold number asks it to keep it.
    """
    def number(match):
        token = match.group(1)
        explicit_plus = ["retain-explicit-plus"] if token.startswith("+") else []
        return rf"\num{_options(explicit_plus, bold)}{{{token}}}"

    text = _NUMBER.sub(number, latex_escape(text))
    return rf"\textbf{{{text}}}" if bold else text


def latex_value(text, std=None, bold: bool = False) -> str:
    """A table value with its spread for LaTeX: ``\\num[uncertainty-mode=separate]{0.412 +- 0.021}``
    (siunitx's own uncertainty form, set as 0.412 ± 0.021), or :func:`latex_numbers` of the value
    and of the spread."""
    if std and _NUMBER.fullmatch(str(text)) and _NUMBER.fullmatch(str(std)):  # "0.412 ± 0.021", not 0.412(21)
        value = rf"\num{_options(['uncertainty-mode=separate'], bold)}{{{text} +- {std}}}"
        return rf"\textbf{{{value}}}" if bold else value
    value = latex_numbers(text, bold)
    return f"{value} $\\pm$ {latex_numbers(std)}" if std else value


def _options(options: list, bold: bool) -> str:
    if bold:
        options = options + ["reset-text-series=false", "text-series-to-math"]
    return f"[{', '.join(options)}]" if options else ""


def markdown_escape(text) -> str:
    """Escape what would break a GitHub Markdown table cell or turn into emphasis/HTML."""
    text = str(text)
    for ch, rep in (("\\", "\\\\"), ("|", "\\|"), ("*", "\\*"), ("`", "\\`"), ("<", "&lt;"), (">", "&gt;")):
        text = text.replace(ch, rep)
    return text


def markdown_code(text) -> str:
    """``text`` as a Markdown code span for a table cell: backticks in it get a longer fence, ``|`` is escaped."""
    text = str(text).replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()
    return slug or "section"


def cell(text, *, std=None, best=False, numeric=False, delta=None, delta_class="", interval=None,
         tied=False) -> dict:
    """One table cell of a view model, laid out alike by the HTML, Markdown and LaTeX templates.

    ``delta``: the difference to a reference row, shown after the value; ``delta_class``:
    ``"better"`` / ``"worse"``; ``interval``: its confidence interval as shown (``[0.371, 0.455]``);
    ``best``: significantly the best of its column; ``tied``: tied for best.
    """
    return {"text": str(text), "std": std, "best": bool(best), "numeric": bool(numeric),
            "delta": delta, "delta_class": delta_class, "interval": interval, "tied": bool(tied)}


def interval_text(bounds, decimals: int = 3) -> str | None:
    """``[0.371, 0.455]``, or ``None`` without an interval."""
    if bounds is None:
        return None
    return f"[{fmt_number(bounds[0], decimals)}, {fmt_number(bounds[1], decimals)}]"


def p_text(p) -> str:
    """A p-value as a table shows it: three decimals, ``< 0.001`` below."""
    if p is None or is_missing(p):
        return DASH
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


SPLIT_ORDER = ("train", "val", "test")


def split_rank(name) -> tuple:
    """Sort key of a split name: train, val, test, then any other alphabetically."""
    return (SPLIT_ORDER.index(name) if name in SPLIT_ORDER else len(SPLIT_ORDER), name)
