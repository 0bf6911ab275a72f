"""The multimodal chain in the tiny workflow: targets, what starts from what, exact reruns, bad config."""

from __future__ import annotations

import json
import re

import pytest

from conftest import Workflow

pytestmark = pytest.mark.workflow

RUN = "results/runs/deimv2/64px/{}/seed0"
CHAIN = ("joint_notext", "joint", "phase2_notext", "phase1", "phase2")  # the tiny config's
TEXT_RUNS = {"joint", "phase1", "phase2"}
FRESH = {"joint", "joint_notext"}  # trained from the model's initial weights: no start to validate


def test_the_chain_is_built(finished_workflow: Workflow):
    root = finished_workflow.root
    prompts = json.loads((root / "results/text/class_prompts.json").read_text())
    assert prompts["encoder"]["dim"] == 384 and prompts["encoder"]["pooling"] == "mean"
    assert prompts["categories"][2] == "ROTURA_FRACTURA" and prompts["prompts"][2].startswith("Deep crack")
    for phase in CHAIN:
        run = root / RUN.format(phase)
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["run"]["phase"] == phase and metrics["run"]["text"] == (phase in TEXT_RUNS)
        assert metrics["run"]["family"] == ("multimodal" if phase in TEXT_RUNS else "vit")
        assert ("text_similarity" in metrics) == (phase in TEXT_RUNS)
        assert (run / "figures" / "training_curves.png").exists()
        history = (run / "history.csv").read_text().splitlines()
        if phase in FRESH:
            assert history[1].startswith("1,") and len(history) == 2
        else:
            assert history[1].startswith("0,") and len(history) == 3  # epoch 0 validates the start
    for name in ("similarity.png", "pair_confusion.png"):
        assert (root / "results/multimodal/deimv2/64px/seed0" / name).read_bytes()[:4] == b"\x89PNG"
    tex = (root / "results/report/tables/multimodal.tex").read_text()
    assert "phase 1" in tex and "phase 2, no text" in tex and "joint, no text" in tex
    strategies = (root / "results/report/tables/strategies.tex").read_text()
    for name in ("2: joint, from the backbone", "3: progressive unfreezing", "the fusion, then + class heads",
                 r"\num{0} (CPU)", "backbone from scratch"):
        assert name in strategies
    html = (root / "results/report/index.html").read_text()
    assert "The three strategies, measured" in html and html.count("Strategy 2: joint, from the backbone (deimv2") == 1


def test_the_joint_run_has_three_learning_rates_and_its_control_two(finished_workflow: Workflow):
    """Read back from each run's provenance and log: the rates that reached the optimizer."""
    root = finished_workflow.root
    for phase, groups in (("joint", {"detector", "backbone", "fusion"}), ("joint_notext", {"detector", "backbone"})):
        log = (root / RUN.format(phase).replace("runs", "logs") / "train.log").read_text()
        found = {line.split("optimizer group ")[1].split(":")[0].removesuffix(" no decay")
                 for line in log.splitlines() if "optimizer group " in line}
        assert found == groups, phase
    metrics = json.loads((root / RUN.format("joint") / "metrics.json").read_text())
    assert metrics["run"]["strategy"] == "joint" and metrics["run"]["stage"] == 4
    assert metrics["provenance"]["config"]["phase"]["starts_from"] == "the model's initial weights"


@pytest.mark.parametrize("phase, start", [("phase1", "base"), ("phase2", "phase1"), ("phase2_notext", "base")])
def test_each_phase_starts_from_the_previous_best_checkpoint(finished_workflow: Workflow, phase, start):
    log = (finished_workflow.root / RUN.format(phase).replace("runs", "logs") / "train.log").read_text()
    assert f"starting from {RUN.format(start)}/best.pt" in log


EVERY_STRATEGY = {"fusion_only": {"epochs": 1, "lr": 1e-3}, "controls": ["notext", "shuffled"]}


def test_each_strategy_starts_where_the_plan_says(finished_workflow: Workflow):
    """With the three strategies and both controls, the DAG shows what each run starts from (a
    dry run lists each job's inputs): the joint runs from no checkpoint, the fusion-only runs and
    phase 1 from vanilla, later phases from the phase before; the class embeddings enter where
    the fusion is attached."""
    original = finished_workflow.config()
    config = json.loads(json.dumps(original))
    config["multimodal"].update(EVERY_STRATEGY)
    finished_workflow.write_config(config)
    try:
        output = finished_workflow.snakemake("-n", "--forceall", "--cores", "1").stdout
    finally:
        finished_workflow.write_config(original)
    blocks = {}
    for block in re.split(r"\n(?=(?:localrule|rule) )", output):
        match = re.search(r"wildcards: model=deimv2, resolution=64, phase=(\w+), seed=0", block)
        rule = re.match(r"(?:localrule|rule) (\w+):", block)
        if match and rule and rule.group(1) in ("train_phase", "train_joint"):
            blocks[match.group(1)] = (rule.group(1), re.search(r"input: (.*)", block).group(1))
    assert {phase for phase, (rule, _) in blocks.items() if rule == "train_joint"} == FRESH
    assert len(blocks) == 9  # fusion only + shuffled, joint + no text, phases 1-2 with both controls
    for phase, (_, inputs) in blocks.items():
        starts = re.findall(r"results/runs/deimv2/64px/(\w+)/seed0/best.pt", inputs)
        assert starts == ([] if phase in FRESH else [{"fusion_only": "base", "fusion_only_shuffled": "base",
                                                      "phase1": "base", "phase1_shuffled": "base",
                                                      "phase2": "phase1", "phase2_shuffled": "phase1_shuffled",
                                                      "phase2_notext": "base"}[phase]]), phase
        fuses = phase in {"joint", "fusion_only", "fusion_only_shuffled", "phase1", "phase1_shuffled"}
        assert ("class_embeddings" in inputs) == fuses, phase


def _planned(workflow: Workflow, edit) -> set[tuple[str, str, str]]:
    return workflow.planned_after(edit, phases=True)


def _downstream(*phases):
    jobs = {(rule, "deimv2", phase) for phase in phases
            for rule in ("train_joint" if phase in FRESH else "train_phase", "evaluate", "latency", "run_figures",
                         "run_statistics", "vit_attention")}
    return jobs | {("multimodal_figures", "deimv2", ""), ("comparisons", "", ""), ("statistics_figures", "", ""),
                   ("cross_run_figures", "", ""), ("report", "", ""), ("all", "", "")}


def test_edited_descriptions_rerun_the_embeddings_and_the_runs_with_text_only(finished_workflow: Workflow):
    path = finished_workflow.root / "config/class_descriptions.yaml"
    original = path.read_text()
    path.write_text(original.replace("deep crack or complete rupture", "deep open crack or complete rupture"))
    try:
        jobs = finished_workflow.planned_jobs(phases=True)
    finally:
        path.write_text(original)
    assert jobs == _downstream(*TEXT_RUNS) | {("text_embeddings", "", "")}


def test_changed_text_encoder_reruns_the_same_jobs(finished_workflow: Workflow):
    jobs = _planned(finished_workflow, lambda c: c["multimodal"]["text_encoder"].update(pooling="cls"))
    assert jobs == _downstream(*TEXT_RUNS) | {("text_embeddings", "", "")}


def test_changed_phase2_lr_reruns_the_phase2_runs_only(finished_workflow: Workflow):
    jobs = _planned(finished_workflow, lambda c: c["multimodal"]["phases"]["phase2"].update(lr=1e-4))
    assert jobs == _downstream("phase2", "phase2_notext")


def test_fusion_settings_rerun_the_chains_that_attach_the_fusion(finished_workflow: Workflow):
    jobs = _planned(finished_workflow, lambda c: c["multimodal"].setdefault("fusion", {}).update(temperature=0.05))
    assert jobs == _downstream(*TEXT_RUNS)


def test_added_strategies_and_controls_run_only_themselves(finished_workflow: Workflow):
    """Strategy 1 and the shuffled controls added to a finished grid: their runs, and no other training."""
    jobs = _planned(finished_workflow, lambda c: c["multimodal"].update(EVERY_STRATEGY))
    assert jobs == _downstream("fusion_only", "fusion_only_shuffled", "phase1_shuffled", "phase2_shuffled")


def test_each_strategys_settings_rerun_its_runs_only(finished_workflow: Workflow):
    jobs = _planned(finished_workflow, lambda c: c["multimodal"]["joint"]["training"].update(lr=5e-4))
    assert jobs == _downstream("joint", "joint_notext")
    # the fusion's own rate reaches only the run that has a fusion
    jobs = _planned(finished_workflow, lambda c: c["multimodal"]["joint"]["training"].update(fusion_lr=1e-3))
    assert jobs == _downstream("joint")
    # settings shared by the fine-tuning runs do not reach the joint runs, which train like vanilla
    jobs = _planned(finished_workflow, lambda c: c["multimodal"]["training"].update(batch_size=3))
    assert jobs == _downstream(*(set(CHAIN) - FRESH))
    # the plan's expectations are words in the report
    jobs = _planned(finished_workflow, lambda c: c["multimodal"].update(expected={"joint": {"gain": [0.0, 0.1]}}))
    assert jobs == {("report", "", ""), ("all", "", "")}


def test_phase3_extends_every_chain(finished_workflow: Workflow):
    jobs = _planned(finished_workflow, lambda c: c["multimodal"]["phases"].update(phase3={"epochs": 1}))
    assert {(rule, model, phase) for rule, model, phase in jobs if rule == "train_phase"} == {
        ("train_phase", "deimv2", p) for p in ("phase3", "phase3_notext")}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: c["multimodal"]["phases"].pop("phase1"), "multimodal.phases has phase2 without phase1"),
        (lambda c: c["multimodal"].update(models=["frcnn_resnet18"]), "multimodal.models: 'frcnn_resnet18'"),
        (lambda c: c["multimodal"].update(descriptions="config/missing.yaml"), "config/missing.yaml: class-descriptions file not found"),
        (lambda c: c["multimodal"].update(confusion_pair=["ROTURA_FRACTURA", "CRACK"]), "confusion_pair: 'CRACK'"),
        (lambda c: c["multimodal"].update(prompt="{description} {colour}"), "uses ['colour']"),
        (lambda c: c["multimodal"]["text_encoder"].update(pooling="max"), "pooling"),
        (lambda c: c["multimodal"].update(controls=["random"]), "controls"),
        (lambda c: c["multimodal"].pop("confusion_pair"), "confusion_pair"),
        (lambda c: c["multimodal"].update(confusion_pair=["NORMAL", "NORMAL"]), "names one class twice"),
    ],
    ids=["phase2-without-phase1", "multimodal-cnn", "missing-descriptions", "unknown-pair-class", "bad-prompt",
         "unknown-pooling", "unknown-control", "no-pair", "same-class-twice"],
)
def test_bad_multimodal_config_is_rejected(workflow: Workflow, edit, expected):
    config = workflow.config()
    edit(config)
    workflow.write_config(config)
    result = workflow.snakemake("-n", "--cores", "1", check=False)
    assert result.returncode != 0 and expected in result.stdout + result.stderr


def test_a_class_without_description_is_rejected_before_any_job(workflow: Workflow):
    path = workflow.root / "config/class_descriptions.yaml"
    text = path.read_text()
    path.write_text(text[:text.index("  PERFORACIONES:")])
    result = workflow.snakemake("-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "no description for the dataset's categories ['PERFORACIONES', 'CONTAMINACION']" in result.stdout + result.stderr
