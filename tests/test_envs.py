"""Each rule's conda env lists what its script imports, pinned like pyproject.toml."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from detstudy.study.codegraph import imported_names, source_files

ROOT = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "mlflow": "mlflow-skinny"}


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


def third_party_imports(script: Path) -> set[str]:
    """Top-level third-party modules imported by a script and by the package modules it runs."""
    found = set()
    for path in source_files(script, ROOT / "src"):
        for name in imported_names(path):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top not in ("__future__", "detstudy"):
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
    """The pins of the dependencies and of the optional extras (tracking, slurm, test)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [dep for group in project.get("optional-dependencies", {}).values() for dep in group]
    return {name.lower(): version for name, version in (dep.split("==") for dep in project["dependencies"] + extras)}


RULES = rules_with_env_and_script()


def test_rules_were_found():
    assert {"train_cnn", "evaluate", "run_figures", "report", "check_split", "dataset_statistics",
            "generate_synthetic_dataset"} <= {
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


def test_package_files_reached_only_through_relative_imports_are_watched(tmp_path):
    """``from .b import x`` and ``from ..c import y`` are code the script runs: editing it must
    rerun the job, so the rules must list it."""
    src = tmp_path / "src"
    files = {"detstudy/__init__.py": "", "detstudy/sub/__init__.py": "from . import helpers\n",
             "detstudy/sub/helpers.py": "", "detstudy/sub/a.py": "def f():\n    from .b import g\n",
             "detstudy/sub/b.py": "from ..c import h\n", "detstudy/c.py": "import json\n",
             "detstudy/unused.py": ""}
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    script = tmp_path / "script.py"
    script.write_text("from detstudy.sub.a import f\n")
    found = {path.relative_to(tmp_path).as_posix() for path in source_files(script, src)}
    assert found == {"script.py", "src/detstudy/sub/__init__.py", "src/detstudy/sub/helpers.py",
                     "src/detstudy/sub/a.py", "src/detstudy/sub/b.py", "src/detstudy/c.py"}


#: the family training rules share one script and one step (train_phase has its own)
SHARED_STEP = {"train_cnn": "train"}


@pytest.mark.parametrize(("rule", "env", "script"), RULES, ids=[r[0] for r in RULES])
def test_rule_script_and_step_share_one_name(rule, env, script):
    """Rule X runs scripts/X.py, which calls the package function X: the producer of any results
    file is found from the Snakefile by name."""
    step = SHARED_STEP.get(rule, rule)
    assert Path(script).name == f"{step}.py", f"rule {rule} runs {script}, not scripts/{step}.py"
    text = (ROOT / "rules" / script).resolve().read_text()
    imported = re.search(rf"^from (detstudy[\w.]*) import .*\b{step}\b", text, re.M)
    assert imported, f"{script} imports no package step named {step}"
    assert re.search(rf"^{step}\(", text, re.M), f"{script} does not call {step}(...)"
    module = __import__(imported.group(1), fromlist=[step])
    assert callable(getattr(module, step)), f"{imported.group(1)}.{step} is not a function"
