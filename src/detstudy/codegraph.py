"""Which package source files a workflow script runs: the files Snakemake must watch.

Snakemake reruns a job when its script changes, but cannot see the package code the script
imports. The rules list these files as inputs, so editing e.g. ``figures.py`` reruns the
figures and the report, and nothing that does not run it. Pure Python (ast), used while the
Snakefile is parsed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "detstudy"


def imported_names(path: Path) -> set[str]:
    """Dotted names of every absolute import in a file, at any depth (lazy imports count)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module_file(src: Path, dotted: str) -> Path | None:
    base = src.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def source_files(script: Path, src: Path) -> list[Path]:
    """The script and every package module it imports, transitively, sorted. The top-level
    ``__init__`` (docstring and version only) is left out: a version bump reruns nothing."""
    seen: set[Path] = set()
    pending = [script.resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            parts = name.split(".")
            if parts[0] != PACKAGE:
                continue
            for end in range(2, len(parts) + 1):  # subpackages and the module itself
                found = _module_file(src, ".".join(parts[:end]))
                if found is not None:
                    pending.append(found.resolve())
    return sorted(seen)
