"""Which package source files a workflow script runs: the files Snakemake must watch.

Snakemake reruns a job when its script changes, but cannot see the package code the script
imports. The rules list these files as inputs, so editing e.g. ``figures.py`` reruns the
figures and the report, and nothing that does not run it. Pure Python (ast), used while the
Snakefile is parsed.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "detstudy"


def imported_names(path: Path, package: str | None = None) -> set[str]:
    """Dotted names of every import in a file, at any depth (lazy imports count). Relative
    imports (``from .x import y``) resolve against ``package``, the dotted package the file
    belongs to; without it they are skipped."""
    path = Path(path)
    stat = path.stat()
    return set(_parsed_imports(str(path.resolve()), stat.st_mtime_ns, stat.st_size, package))


@functools.lru_cache(maxsize=None)
def _parsed_imports(path: str, mtime_ns: int, size: int, package: str | None) -> frozenset[str]:
    """:func:`imported_names` of one version of a file: every rule asks for the same modules, and
    parsing each once keeps ``snakemake -n`` fast (the file's date and size key the cache)."""
    path = Path(path)
    names: set[str] = set()
    for node in _statements(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module
            elif package and node.level - 1 < len(package.split(".")):
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                continue
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


def _statements(tree: ast.AST):
    """Every statement of a module, nested ones (in functions, classes, if/try/with/for) too:
    imports are statements, so the expressions (most of a file's nodes) are never visited."""
    pending = [tree]
    while pending:
        node = pending.pop()
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(node, field, ()) or ():
                if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                    pending.append(child)
        if isinstance(node, ast.stmt):
            yield node


def _package_of(path: Path, src: Path) -> str | None:
    """The dotted package a file under ``src`` belongs to (``None`` outside it)."""
    try:
        parts = list(path.resolve().relative_to(src.resolve()).with_suffix("").parts)
    except ValueError:
        return None
    return ".".join(parts[:-1]) or None  # a module's package; an __init__'s is its own folder


def _module_file(src: Path, dotted: str) -> Path | None:
    base = src.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def source_files(script: Path, src: Path) -> list[Path]:
    """The script and every package module it imports, transitively, sorted. The top-level
    ``__init__`` (docstring and version only) is left out: a version bump reruns nothing."""
    src = Path(src).resolve()
    seen: set[Path] = set()
    pending = [Path(script).resolve()]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending.extend(_imported_files(path, src))
    return sorted(seen)


def _imported_files(path: Path, src: Path) -> list[Path]:
    """The package files one file imports directly (the modules and the packages above them)."""
    stat = path.stat()
    return list(_imported_files_of(path, stat.st_mtime_ns, stat.st_size, src))


@functools.lru_cache(maxsize=None)
def _imported_files_of(path: Path, mtime_ns: int, size: int, src: Path) -> tuple[Path, ...]:
    found = []
    for name in imported_names(path, _package_of(path, src)):
        parts = name.split(".")
        if parts[0] != PACKAGE:
            continue
        for end in range(2, len(parts) + 1):  # subpackages and the module itself
            module = _module_file(src, ".".join(parts[:end]))
            if module is not None:
                found.append(module.resolve())
    return tuple(found)


# --- the package's import graph (tests/test_import_graph.py keeps its layers) ---------------------

def package_modules(src: Path) -> dict[str, Path]:
    """Every module of the package under ``src``: dotted name -> file (a package by its ``__init__``)."""
    src = Path(src)
    modules = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


@dataclass(frozen=True)
class Import:
    """One import statement's target: the module it names, whether it sits inside a function,
    and the names it takes (``from m import a, b``)."""

    module: str
    lazy: bool
    names: tuple[str, ...]
    line: int


def imports_of(path: Path, package: str | None) -> list[Import]:
    """Every import of a file, lazy ones (inside functions) marked, relative ones resolved."""
    tree = ast.parse(Path(path).read_text(), filename=str(path))
    found: list[Import] = []

    def visit(node, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, lazy, (), child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level == 0:
                    base = child.module
                else:
                    anchor = (package or "").split(".")[:len((package or "").split(".")) - (child.level - 1)]
                    base = ".".join(anchor + ([child.module] if child.module else []))
                found.append(Import(base, lazy, tuple(alias.name for alias in child.names), child.lineno))
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def import_graph(src: Path) -> dict[str, list[Import]]:
    """module -> its imports, for every module of the package (the package's own modules named
    exactly: ``from detstudy.x import y`` names module ``detstudy.x.y`` where that is a module)."""
    modules = package_modules(src)
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        resolved = []
        for imp in imports_of(path, package):
            submodules = [f"{imp.module}.{n}" for n in imp.names if f"{imp.module}.{n}" in modules]
            resolved.append(imp)
            resolved.extend(Import(sub, imp.lazy, (), imp.line) for sub in submodules)
        graph[name] = resolved
    return graph
