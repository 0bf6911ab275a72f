"""Each rule's conda env lists what its script imports, pinned like pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml"}


def rules_with_env_and_script() -> list[tuple[str, str, str]]:
    found = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=rule \w+:)", smk.read_text()):
            name = re.match(r"rule (\w+):", block)
            conda = re.search(r"conda:\s*\n\s*\"([^\"]+)\"", block)
            script = re.search(r"script:\s*\n\s*\"([^\"]+)\"", block)
            if name:
                assert conda, f"rule {name.group(1)} in {smk.name} names no conda env"
                if script:
                    found.append((name.group(1), conda.group(1), script.group(1)))
    return found


def module_file(module: str) -> Path | None:
    base = ROOT / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def third_party_imports(path: Path, seen: set[Path] | None = None) -> set[str]:
    """Top-level third-party modules imported by a file and, transitively, by the package modules it uses."""
    seen = seen if seen is not None else set()
    if path in seen:
        return set()
    seen.add(path)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            top = name.split(".")[0]
            if top == "detstudy":
                parts = name.split(".")
                for end in range(1, len(parts) + 1):  # the package, its subpackages and the module itself
                    target = module_file(".".join(parts[:end]))
                    if target:
                        found |= third_party_imports(target, seen)
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(DISTRIBUTIONS.get(top, top).lower())
    return found


def env_packages(env_file: Path) -> dict[str, str]:
    """name -> pinned version of every conda and pip dependency."""
    packages = {}
    for entry in yaml.safe_load(env_file.read_text())["dependencies"]:
        for spec in entry["pip"] if isinstance(entry, dict) else [entry]:
            name, _, version = re.split(r"(==|=)", spec, maxsplit=1) if "=" in spec else (spec, "", "")
            packages[name.strip().lower()] = version.strip()
    return packages


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {name.lower(): version for name, version in (dep.split("==") for dep in project["dependencies"])}


RULES = rules_with_env_and_script()


def test_rules_were_found():
    assert {"train_cnn", "evaluate", "run_figures", "report", "check_dataset", "generate_synthetic_dataset"} <= {
        name for name, _, _ in RULES}


@pytest.mark.parametrize(("rule", "env", "script"), RULES, ids=[r[0] for r in RULES])
def test_env_lists_what_the_script_imports(rule, env, script):
    env_file = (ROOT / "rules" / env).resolve()
    imports = third_party_imports((ROOT / "rules" / script).resolve())
    missing = sorted(imports - set(env_packages(env_file)))
    assert not missing, f"rule {rule}: {env_file.name} lacks {missing} imported by {script} (or the package code it calls)"


@pytest.mark.parametrize("env_file", sorted((ROOT / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_pins_match_pyproject(env_file):
    pins = pyproject_pins()
    for name, version in env_packages(env_file).items():
        if name in ("python", "pip"):
            continue
        assert name in pins, f"{env_file.name}: {name} is not a dependency in pyproject.toml"
        assert version == pins[name], f"{env_file.name}: {name}=={version}, pyproject pins {pins[name]}"
