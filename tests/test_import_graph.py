"""The package's import graph keeps its layers: study <- engine <- tasks <- statistics/figures/report
<- steps. Every import counts, lazy ones (inside functions) too, read with the project's own
code graph (``detstudy.study.codegraph``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from detstudy.study.codegraph import Import, import_graph, package_modules  # noqa: E402

GRAPH = import_graph(SRC)
MODULES = set(package_modules(SRC))

#: Lazy imports of the package's own modules that stay lazy, each for a heavy optional dependency.
LAZY_ALLOWED = {
    ("detstudy.tasks.detection.models", "detstudy.tasks.detection.models.deimv2"),  # transformers: ViT runs only
    ("detstudy.tasks.detection.multimodal.embeddings",
     "detstudy.tasks.detection.multimodal.text_encoder"),  # transformers: the text job only
    ("detstudy.cli", "detstudy.tasks.detection.predict"),  # torch: `detstudy --help` stays instant
    ("detstudy.cli", "detstudy.tasks.prediction"),  # numpy and Pillow, the same
    ("detstudy.cli", "detstudy.tasks.segmentation"),  # the package (its checkpoint format), the same
    ("detstudy.cli", "detstudy.tasks.segmentation.predict"),  # the same
    ("detstudy.cli", "detstudy.tasks.classification"),  # the same
    ("detstudy.cli", "detstudy.tasks.classification.predict"),  # the same
}
#: Third-party packages the torch-free study layer must never reach (it is read while the Snakefile parses).
HEAVY = {"torch", "torchvision", "transformers", "numpy", "pandas", "matplotlib", "scipy", "pycocotools"}


def own_imports(module: str) -> list[Import]:
    return [imp for imp in GRAPH[module] if imp.module in MODULES and imp.module != module]


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def closure(module: str) -> set[str]:
    seen, pending = set(), [module]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(imp.module for imp in own_imports(current))
    return seen


def find_cycle() -> list[str] | None:
    """One import cycle between modules (a package's ``__init__`` counts as its own module)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for imp in own_imports(module):
            target = imp.module
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(MODULES):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read_from_every_import():
    """The walker sees lazy imports and resolves relative ones (a check of the checker)."""
    embeddings = GRAPH["detstudy.tasks.detection.multimodal.embeddings"]
    assert any(imp.lazy and imp.module.endswith("text_encoder") for imp in embeddings)
    assert "detstudy.engine.io" in {imp.module for imp in GRAPH["detstudy.engine.history"]}


def test_no_cycle():
    cycle = find_cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_lazy_import_of_own_modules_except_heavy_ones():
    lazy = sorted((module, imp.module, imp.line) for module in MODULES for imp in own_imports(module)
                  if imp.lazy and (module, imp.module) not in LAZY_ALLOWED)
    assert not lazy, f"imports inside functions (move them to the top, or list a heavy dependency): {lazy}"


def test_no_private_name_taken_from_another_module():
    private = sorted((module, imp.module, name) for module in MODULES for imp in own_imports(module)
                     for name in imp.names if name.startswith("_") and not name.startswith("__"))
    assert not private, f"private names imported across modules (make them public where they belong): {private}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if layer(m) == "study"))
def test_study_is_torch_free_and_self_contained(module):
    reached = closure(module)
    outside = sorted(m for m in reached if layer(m) not in ("study", ""))
    assert not outside, f"{module} reaches {outside}: study/ imports only study/"
    heavy = sorted({imp.module.split(".")[0] for m in reached for imp in GRAPH[m]} & HEAVY)
    assert not heavy, f"{module} reaches {heavy}: study/ is read while the Snakefile parses, without them"


ALLOWED = {
    "study": {"study"},
    "engine": {"study", "engine"},
    "tasks": {"study", "engine", "tasks"},
    "statistics": {"study", "engine", "tasks", "statistics"},
    "figures": {"study", "engine", "tasks", "statistics", "figures", "report"},
    "report": {"study", "engine", "tasks", "statistics", "report"},
    "steps": {"study", "engine", "tasks", "statistics", "figures", "report", "steps"},
}


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_layers(part):
    wrong = sorted((module, imp.module) for module in MODULES if layer(module) == part
                   for imp in own_imports(module) if layer(imp.module) not in ALLOWED[part] | {""})
    assert not wrong, f"{part}/ may import only {sorted(ALLOWED[part])}: {wrong}"


def test_no_task_training_code_above_the_tasks():
    """statistics/, figures/ and report/ read results; they never import a task's training code."""
    training = ("training", "models", "checkpoint", "data.augment", "multimodal.phases")
    wrong = sorted((module, imp.module) for module in MODULES if layer(module) in ("statistics", "figures", "report")
                   for imp in own_imports(module)
                   if layer(imp.module) == "tasks" and any(f".{t}" in imp.module for t in training))
    assert not wrong, wrong


def test_steps_one_module_per_script():
    """rule X -> scripts/X.py -> detstudy.steps.X.X (the two family training rules share train)."""
    steps = {m.rsplit(".", 1)[1] for m in MODULES if layer(m) == "steps" and m.count(".") == 2}
    scripts = {p.stem for p in (ROOT / "scripts").glob("*.py")}
    assert steps == scripts
    for name in scripts:
        text = (ROOT / "scripts" / f"{name}.py").read_text()
        assert f"from detstudy.steps.{name} import {name}" in text, name


def _code_inputs(script: str) -> set[str]:
    """The package modules a rule's job lists as code inputs (what ``package_code`` gives the rule)."""
    from detstudy.study.codegraph import source_files

    files = source_files(ROOT / "scripts" / script, SRC)
    return {p.resolve().relative_to(SRC / "detstudy").as_posix() for p in files if SRC in p.resolve().parents}


LOOP = {"engine/training.py", "tasks/detection/training.py", "engine/schedules.py", "engine/ema.py"}


@pytest.mark.parametrize("script", ["evaluate.py", "latency.py", "vit_attention.py", "run_figures.py",
                                    "run_statistics.py", "multimodal_figures.py"])
def test_editing_the_training_loop_reruns_no_evaluation(script):
    """Jobs that read a trained checkpoint do not run the loop: editing it retrains, and only the
    retrained checkpoints' consumers rerun after them (a dry run plans those either way)."""
    assert not _code_inputs(script) & LOOP


#: Each task's training loop: a job that only reads checkpoints must not list it.
TASK_LOOPS = {"classification": {"engine/training.py", "tasks/classification/training.py"},
              "segmentation": {"engine/training.py", "tasks/segmentation/training.py"}}


@pytest.mark.parametrize(("script", "task"), [("evaluate_classifier.py", "classification"),
                                              ("classifier_latency.py", "classification"),
                                              ("evaluate_segmenter.py", "segmentation"),
                                              ("segmenter_latency.py", "segmentation")])
def test_editing_a_tasks_training_loop_reruns_none_of_its_evaluations(script, task):
    assert not _code_inputs(script) & TASK_LOOPS[task]


#: The config checks each task alone runs while the Snakefile parses.
TASK_CHECKS = {"detection": "study/config.py", "segmentation": "study/segmentation.py",
               "classification": "study/classification.py"}


@pytest.mark.parametrize(("script", "task"), [("train.py", "detection"), ("train_phase.py", "detection"),
                                              ("train_joint.py", "detection"), ("train_segmenter.py", "segmentation"),
                                              ("train_classifier.py", "classification")])
def test_editing_a_tasks_config_checks_retrains_no_other_tasks_runs(script, task):
    """Training jobs import the training-settings check, not the config checker: editing one
    task's checks reruns no training of another task (a task's own study module, which holds its
    augmentation and metric names, stays an input of its trainings), nor the parse-time
    config checks any training."""
    inputs = _code_inputs(script)
    assert "study/training_checks.py" in inputs and "study/config.py" not in inputs
    assert not inputs & {path for other, path in TASK_CHECKS.items() if other != task}


@pytest.mark.parametrize("script", ["train.py", "train_phase.py", "evaluate.py"])
def test_editing_the_checkpoint_import_step_reruns_only_the_imports(script):
    assert "tasks/detection/checkpoint_import.py" not in _code_inputs(script)
    assert "tasks/detection/checkpoint_import.py" in _code_inputs("import_checkpoint.py")


def test_training_reads_its_validation_protocol():
    """The best checkpoint is picked by the validation AP: editing the COCO protocol retrains."""
    assert "tasks/detection/evaluation/metrics.py" in _code_inputs("train.py")
    assert LOOP <= _code_inputs("train.py")


@pytest.mark.parametrize("script", ["train.py", "train_phase.py", "train_joint.py"])
def test_editing_the_error_breakdown_or_the_latency_code_retrains_nothing(script):
    """TIDE and the latency/FLOPs measurement are read by the evaluation and latency jobs only."""
    inputs = _code_inputs(script)
    assert not inputs & {"tasks/detection/evaluation/errors.py", "tasks/detection/evaluation/error_kinds.py",
                         "engine/cost.py"}
    assert "tasks/detection/evaluation/errors.py" in _code_inputs("evaluate.py")
    assert "engine/cost.py" in _code_inputs("latency.py")
