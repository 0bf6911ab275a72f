"""Safe loading: no pickle code runs from a checkpoint, and no config string reaches a shell."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

from detstudy.tasks.detection.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sorted([*(ROOT / "src" / "detstudy").rglob("*.py"), *(ROOT / "scripts").glob("*.py")])


def _calls(path: Path):
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return f"{getattr(func.value, 'id', '?')}.{func.attr}"
    return getattr(func, "id", "?")


@pytest.mark.parametrize("path", PYTHON, ids=[p.relative_to(ROOT).as_posix() for p in PYTHON])
def test_torch_load_is_weights_only_and_nothing_runs_a_shell(path):
    for call in _calls(path):
        keywords = {k.arg: k.value for k in call.keywords}
        where = f"{path.relative_to(ROOT)}:{call.lineno}"
        if _name(call) == "torch.load":
            flag = keywords.get("weights_only")
            assert isinstance(flag, ast.Constant) and flag.value is True, f"{where}: torch.load without weights_only=True"
        assert _name(call) not in {"os.system", "os.popen"}, f"{where}: a shell command"
        shell = keywords.get("shell")
        assert not (isinstance(shell, ast.Constant) and shell.value), f"{where}: subprocess with shell=True"


def test_rules_run_scripts_not_shell_commands():
    for rules in [ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk")]:
        assert not re.search(r"^\s+(shell|run):", rules.read_text(), re.M), f"{rules.name}: a shell/run directive"


def test_a_checkpoint_carrying_code_is_refused(tmp_path):
    class Payload:  # unpickling this would import and build an arbitrary object
        def __reduce__(self):
            return (print, ("code ran",))

    path = tmp_path / "best.pt"
    torch.save({"format": 1, "payload": Payload()}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported global"):
        load_checkpoint(path, torch.device("cpu"))
