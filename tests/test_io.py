"""Atomic outputs: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from detstudy.engine.io import atomic_path, save_figure, write_csv, write_json  # noqa: E402
from detstudy.engine.weights import save_torch  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src" / "detstudy"
# calls that write a file; each must happen inside `with atomic_path(...)`
WRITERS = {"savefig", "write_text", "write_bytes", "save", "save_file", "dump", "copyfile", "copy2"}
# the job log is a stream read while the job runs, the GPU slots are lock files: neither is a result
NOT_RESULTS = {"logs.py", "gpu_slots.py"}
# receivers whose own save() is atomic (detstudy.engine.resume.TrainingState, checked in this test too)
ATOMIC_SAVERS = {"resume"}


def test_the_old_file_stays_until_the_new_one_is_complete(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"AP": 0.1})
    with atomic_path(path) as tmp:
        tmp.write_text('{"AP": 0.')
        assert json.loads(path.read_text()) == {"AP": 0.1}  # a reader now still sees the old file
        tmp.write_text('{"AP": 0.2}')
    assert json.loads(path.read_text()) == {"AP": 0.2}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"AP": 0.1})
    with pytest.raises(TypeError):
        write_json(path, {"AP": object()})  # not serialisable: fails half way
    assert json.loads(path.read_text()) == {"AP": 0.1}
    with pytest.raises(ValueError):
        write_csv(tmp_path / "history.csv", [{"epoch": 1}], fieldnames=["lr"])  # a key the header lacks
    figure = plt.figure()
    plt.plot([0, 1])
    with pytest.raises(TypeError):
        save_figure(figure, tmp_path / "curves.png", dpi="high")  # fails while rendering
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_the_same_tensors_saved_twice_give_the_same_bytes(tmp_path):
    """A checkpoint's bytes hold no trace of the temporary file it was written through (torch
    would name the archive's inner folder after it), so two identical runs give identical files."""
    state = {"weight": torch.arange(6.0).reshape(2, 3), "epoch": 3}
    save_torch(state, tmp_path / "best.pt")
    save_torch(state, tmp_path / "copy" / "best.pt")
    assert (tmp_path / "best.pt").read_bytes() == (tmp_path / "copy" / "best.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "best.pt", weights_only=True)["weight"], state["weight"])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def _atomic_blocks(tree: ast.AST) -> list[ast.With]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.With) and any(
        isinstance(item.context_expr, ast.Call) and getattr(item.context_expr.func, "id", None) == "atomic_path"
        for item in node.items)]


def _is_write(node: ast.Call) -> bool:
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    if name == "save" and getattr(node.func.value, "id", None) in ATOMIC_SAVERS:
        return False
    if node.args and getattr(node.args[0], "id", None) == "buffer":  # an io.BytesIO: memory, not a file
        return False
    if name in WRITERS:
        return True
    if name == "open" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
        return any(mode in str(node.args[1].value) for mode in "wax")
    return False


@pytest.mark.parametrize("module", sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")
                                           if p.name not in NOT_RESULTS))
def test_every_file_the_package_writes_goes_through_atomic_path(module):
    tree = ast.parse((SRC / module).read_text())
    inside = {id(node) for block in _atomic_blocks(tree) for node in ast.walk(block)}
    bare = [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Call) and _is_write(node) and id(node) not in inside]
    assert not bare, f"src/detstudy/{module}: lines {bare} write a file outside `with atomic_path(...)`"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_mode_of_a_plain_open(tmp_path, umask):
    """mkstemp makes 0600 files; a result on a shared cluster must be readable as the umask says."""
    import os
    import stat

    previous = os.umask(umask)
    try:
        write_json(tmp_path / "metrics.json", {"AP": 0.1})
        (tmp_path / "plain.txt").write_text("")
    finally:
        os.umask(previous)
    modes = {stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("metrics.json", "plain.txt")}
    assert modes == {0o666 & ~umask}


def test_the_file_and_then_its_folder_reach_the_disk_before_the_write_returns(tmp_path, monkeypatch):
    import os

    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or fsync(fd))
    write_json(tmp_path / "metrics.json", {"AP": 0.1})
    assert len(synced) == 2
    assert Path(synced[0]).name.startswith(".metrics.json.")  # the new file, before the rename
    assert synced[1] == str(tmp_path)  # then the folder holding the rename
