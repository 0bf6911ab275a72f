"""The multimodal extension in the report: phase table with deltas, cross-run figures, the section."""

from __future__ import annotations

import json
import logging
import math
import runpy
import sys
import warnings
from html import unescape

import pytest
from test_report import CLASSES, ROOT, TEMPLATES, TINY_PNG, _metrics, compile_latex

from detstudy import report
from detstudy.report.outputs import LATEX_TABLES
from detstudy.tasks.detection.plots import plot_pair_confusion, plot_text_similarity
from detstudy.steps.multimodal_figures import multimodal_figures

PAIR = ["ROTURA_FRACTURA", "RAYONES_ARANAZOS"]
# Written out of report order on purpose: the table orders vanilla, no text, shuffled, phases.
PHASES = ["phase3", "phase1", "phase2_notext", "base", "phase1_shuffled", "phase2"]


def _confusion(swap_ab: int, swap_ba: int) -> dict:
    """GT rows, predicted columns, background last: 10 boxes per class, the pair swapping some."""
    n = len(CLASSES)
    matrix = [[0] * (n + 1) for _ in range(n + 1)]
    for i in range(n):
        matrix[i][i] = 9
        matrix[i][n] = 1  # one missed box per class
    a, b = CLASSES.index(PAIR[0]), CLASSES.index(PAIR[1])
    matrix[a][a], matrix[a][b] = 9 - swap_ab, swap_ab
    matrix[b][b], matrix[b][a] = 9 - swap_ba, swap_ba
    matrix[b][0] = 1  # one RAYONES_ARANAZOS box detected as NORMAL: "other"
    matrix[b][b] -= 1
    return {"labels": CLASSES + ["background"], "matrix": matrix, "score_threshold": 0.3, "iou_threshold": 0.5}


def _similarity() -> dict:
    return {"classes": CLASSES, "matched": [5, 0, 7, 6], "gate": 0.1, "temperature": 0.07, "iou_threshold": 0.5,
            "matrix": [[0.8 if i == j else -0.1 for j in range(len(CLASSES))] if i != 1 else [None] * len(CLASSES)
                       for i in range(len(CLASSES))]}


def _phase_run(phase: str, seed: int, *, resolution=256) -> dict:
    """deimv2_s runs of one chain: AP50 rises 0.05 per stage from 0.60, controls a little less."""
    stage = 0 if phase == "base" else int(phase[5])
    control = phase.split("_")[1] if "_" in phase else None
    text = stage > 0 and control != "notext"
    ap50 = 0.60 + 0.05 * stage - (0.03 if control else 0.0) + 0.01 * seed
    run = _metrics("deimv2_s", "multimodal" if text else "vit", seed, ap50, resolution=resolution, phase=phase,
                   per_class_ap50=[0.9, 0.5, 0.3 + 0.1 * stage, 0.4])
    run["run"].update(stage=stage, control=control, text=text)
    run["confusion"] = _confusion(swap_ab=max(0, 4 - stage), swap_ba=3)
    if text:
        run["text_similarity"] = _similarity()
    return run


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture()
def phase_paths(tmp_path):
    runs = {f"{phase}_s{seed}": _phase_run(phase, seed) for phase in PHASES for seed in (0, 1)}
    runs["frcnn"] = _metrics("frcnn_r18", "cnn", 0, 0.5)  # no phases: not in the multimodal table
    runs["vit320"] = _metrics("deimv2_s", "vit", 0, 0.7, resolution=320)  # vanilla only: not either
    return [_write(tmp_path / "runs" / name / "metrics.json", data) for name, data in runs.items()]


# ---------------------------------------------------------------------------------------------- tables
def test_phase_label():
    assert [report.phase_label(p) for p in ("base", "phase1", "phase2_notext", "phase3_shuffled", "other")] == [
        "vanilla", "phase 1", "phase 2, no text", "phase 3, shuffled text", "other"]


def test_multimodal_table_rows_and_deltas(phase_paths):
    table = report.multimodal_table(report.load_runs(phase_paths), pair=PAIR)
    assert table["phase"].tolist() == ["base", "phase2_notext", "phase1_shuffled", "phase1", "phase2", "phase3"]
    assert table["phase_label"].tolist()[:2] == ["vanilla", "phase 2, no text"]
    assert set(table["resolution"]) == {256} and set(table["model"]) == {"deimv2_s"}
    rows = table.set_index("phase")
    assert rows.at["base", "AP50"] == pytest.approx(0.605)  # mean of seeds 0.60, 0.61
    assert rows.at["base", "AP50_std"] == pytest.approx(math.sqrt(0.00005))
    assert math.isnan(rows.at["base", "AP50_delta"])
    assert rows.at["phase3", "AP50_delta"] == pytest.approx(0.15)
    assert rows.at["phase2_notext", "AP50_delta"] == pytest.approx(0.07)
    assert rows.at["phase3", "ROTURA_FRACTURA_delta"] == pytest.approx(0.3)
    assert rows.at["phase3", "ROTURA_FRACTURA→RAYONES_ARANAZOS"] == 1
    assert rows.at["phase3", "ROTURA_FRACTURA→RAYONES_ARANAZOS_delta"] == -3
    assert rows.at["phase3", "RAYONES_ARANAZOS→ROTURA_FRACTURA_delta"] == 0
    assert table.attrs["classes"] == CLASSES and table.attrs["pair"] == PAIR


def test_multimodal_table_empty_without_phases(phase_paths):
    runs = [r for r in report.load_runs(phase_paths) if not report.is_phase_run(r)]
    assert report.multimodal_table(runs).empty


def test_pair_confusion_counts_and_unknown_class():
    counts = report.pair_confusion(_confusion(swap_ab=2, swap_ba=3), PAIR)
    assert counts["ROTURA_FRACTURA"] == {"ROTURA_FRACTURA": 7, "RAYONES_ARANAZOS": 2, "missed": 1, "other": 0}
    assert counts["RAYONES_ARANAZOS"] == {"RAYONES_ARANAZOS": 5, "ROTURA_FRACTURA": 3, "missed": 1, "other": 1}
    with pytest.raises(ValueError, match=r"'FISURA'.*NORMAL, DEFORMACIONES.*multimodal\.confusion_pair"):
        report.pair_confusion(_confusion(1, 1), ["FISURA", "RAYONES_ARANAZOS"])


# ---------------------------------------------------------------------------------------------- figures
def test_multimodal_figure_functions(tmp_path):
    runs = [(report.phase_label(p), _phase_run(p, 0)) for p in ("base", "phase2_notext", "phase1")]
    plot_text_similarity([("phase 1", _similarity()), ("phase 2", _similarity())], tmp_path / "sim.png",
                         style={"dpi": 60})
    plot_text_similarity([], tmp_path / "none.png", style={"dpi": 60})  # still a declared output
    plot_pair_confusion(runs, tuple(PAIR), tmp_path / "pair.png", style={"dpi": 60})
    for name in ("sim.png", "none.png", "pair.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="multimodal.confusion_pair"):
        plot_pair_confusion(runs, ("ROTURA_FRACTURA", "FISURA"), tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_multimodal_figures_step(tmp_path):
    phases = ["base", "phase2_notext", "phase1_shuffled", "phase1"]
    paths = [str(_write(tmp_path / p / "metrics.json", _phase_run(p, 0))) for p in phases]
    out = tmp_path / "multimodal"
    multimodal_figures(metrics_paths=paths, phases=phases, pair=PAIR, similarity_png=out / "similarity.png",
                       pair_confusion_png=out / "pair_confusion.png", style={"dpi": 60, "prediction_images": 4})
    assert (out / "similarity.png").stat().st_size > 0 and (out / "pair_confusion.png").stat().st_size > 0
    with pytest.raises(ValueError, match="one metrics.json per phase"):
        multimodal_figures(metrics_paths=paths[:2], phases=phases, pair=PAIR, similarity_png=out / "s.png",
                           pair_confusion_png=out / "p.png")


# ---------------------------------------------------------------------------------------------- report
@pytest.fixture()
def prompts_json(tmp_path):
    return _write(tmp_path / "text" / "class_prompts.json", {
        "categories": CLASSES, "prompts": [f"a {c.lower()} | defect\non a plate" for c in CLASSES],
        "template": "{description}. {contrast}.", "encoder": {"model": "tiny-clip", "pooling": "projection", "dim": 32}})


def _render(paths, out, **kwargs):
    report.render_report(metrics_paths=paths, figures={}, out_html=out / "index.html", out_md=out / "report.md",
                         out_tables_dir=out / "tables", templates_dir=TEMPLATES, **kwargs)


def test_report_multimodal_section(phase_paths, prompts_json, tmp_path):
    figures_dir = tmp_path / "multimodal" / "deimv2_s" / "256px" / "seed0"
    figures_dir.mkdir(parents=True)
    for kind in report.MULTIMODAL_FIGURE_KINDS:
        (figures_dir / f"{kind}.png").write_bytes(TINY_PNG)
    label = report.multimodal_label({"model": "deimv2_s", "resolution": 256, "seed": 0})
    assert label == "deimv2_s 256px seed 0"
    out = tmp_path / "results" / "report"
    _render(phase_paths, out, text_prompts_json=prompts_json, confusion_pair=PAIR,
            multimodal_figures={label: {k: str(figures_dir / f"{k}.png") for k in report.MULTIMODAL_FIGURE_KINDS}})

    html = (out / "index.html").read_text()
    section = html[html.index('<section id="multimodal">'):html.index('<section id="appendix">')]
    for text in ("Multimodal extension", "phase 2, no text", "phase 1, shuffled text", "vanilla",
                 "0.605", "(+0.150)", 'class="delta better"', "ROTURA_FRACTURA → RAYONES_ARANAZOS", "(-3)",
                 "tiny-clip", "projection", "a rotura_fractura | defect on a plate", label, "data:image/png;base64,"):
        assert text in section, text
    assert section.index("vanilla") < section.index("phase 2, no text") < section.index("phase 1, shuffled text")
    assert "<tr><td class=\"txt\">frcnn_r18" not in section

    md = (out / "report.md").read_text()
    assert "## Multimodal extension" in md and "### Text prompts" in md
    assert "| 0.655 ± 0.007 (+0.050) |" in md  # phase 1 AP50 over two seeds, vs vanilla
    assert "a rotura\\_fractura \\| defect on a plate" not in md and "a rotura_fractura \\| defect on a plate" in md
    assert "](../../multimodal/deimv2_s/256px/seed0/similarity.png)" in md

    tex = (out / "tables" / "multimodal.tex").read_text()
    for token in (r"\begin{table}", r"\label{tab:multimodal}", r"\toprule", r"\bottomrule", r"deimv2\_s",
                  r"ROTURA\_FRACTURA$\to$RAYONES\_ARANAZOS", r"(\num[retain-explicit-plus]{+0.150})", "phase 2, no text"):
        assert token in tex, token
    assert "→" not in tex and "–" not in tex
    assert not [line for line in tex.split(r"\resizebox")[1].splitlines() if not line.strip()]  # no \par in a box
    compile_latex(out / "tables")


def test_report_without_phase_runs(phase_paths, tmp_path):
    paths = [p for p in phase_paths if "phase" not in p.parent.name]
    out = tmp_path / "plain"
    _render(paths, out, out_multimodal_tex=tmp_path / "elsewhere" / "mm.tex")
    assert "Multimodal extension" not in (out / "index.html").read_text()
    assert "Multimodal extension" not in (out / "report.md").read_text()
    tex = (tmp_path / "elsewhere" / "mm.tex").read_text()
    assert "No multimodal runs" in tex and all(line.startswith("%") for line in tex.splitlines() if line.strip())
    assert not (out / "tables" / "multimodal.tex").exists()


# ---------------------------------------------------------------------------------------------- script
@pytest.fixture()
def isolated_logging(monkeypatch):
    """scripts/report.py sends stderr and logging to its log: put both back afterwards."""
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with warnings.catch_warnings():
        yield
    root.handlers[:], root.level = handlers, level
    logging.captureWarnings(False)


@pytest.mark.parametrize("with_multimodal", [True, False])
def test_report_script(phase_paths, prompts_json, tmp_path, isolated_logging, with_multimodal):
    from snakemake.iocontainers import Namedlist

    out = tmp_path / "results" / "report"
    # the rule's shape with and without the multimodal extension: empty lists, one table path
    inputs = {"metrics": [str(p) for p in phase_paths], "statistics": None, "statistics_figure": None,
              "templates": [str(TEMPLATES / "index.html.j2")], "multimodal_figures": [], "text_prompts": [],
              "comparisons": None, "statistics_figures": [], "cross_run_figures": []}
    params = {"title": "T", "runs": [], "multimodal": [], "confusion_pair": [], "preview_width": 1000, "jpeg_quality": 80,
              "expected": {}}
    outputs = {"html": str(out / "index.html"), "markdown": str(out / "report.md"),
               "tables": [str(out / "tables" / f"{stem}.tex") for stem in LATEX_TABLES]}
    if with_multimodal:
        inputs.update(text_prompts=[str(prompts_json)])
        params.update(multimodal=[{"model": "deimv2_s", "resolution": 256, "seed": 0,
                                   "dir": str(tmp_path / "mm" / "deimv2_s" / "256px" / "seed0") + "/"}],
                      confusion_pair=PAIR)
    snakemake = type("Snakemake", (), {"input": Namedlist(fromdict=inputs), "params": Namedlist(fromdict=params),
                                       "output": Namedlist(fromdict=outputs), "log": [str(tmp_path / "report.log")]})
    runpy.run_path(str(ROOT / "scripts" / "report.py"), init_globals={"snakemake": snakemake})
    html = (out / "index.html").read_text()
    assert "Multimodal extension" in html
    assert ("tiny-clip" in html) == with_multimodal
    assert ("figure not found" in html) == with_multimodal  # the figures' folder from params.multimodal
    for stem in LATEX_TABLES:  # every table the rule lists as an output is written
        assert (out / "tables" / f"{stem}.tex").read_text().strip(), stem
    assert r"\label{tab:multimodal}" in (out / "tables" / "multimodal.tex").read_text()


# ------------------------------------------------------------------------------------- strategies
def _value(estimate, low=None, high=None, p_holm=None, seed_sd=None):
    low = estimate - 0.05 if low is None else low
    high = estimate + 0.05 if high is None else high
    return {"estimate": estimate, "low": low, "high": high, "p": p_holm, "p_holm": p_holm, "seed_sd": seed_sd}


def _strategy_comparisons(model="m") -> dict:
    """Hand-made comparisons of one (model, resolution): vanilla, strategy 1 with its shuffled
    control, strategy 2 with its no-text control, strategy 3's phases 1-2 with both controls."""
    label = f"{model} · 256 px · {{}}".format
    phases = ["base", "fusion_only", "fusion_only_shuffled", "joint", "joint_notext", "phase1", "phase2",
              "phase2_notext", "phase1_shuffled", "phase2_shuffled"]
    ap50 = {"base": 0.60, "fusion_only": 0.62, "fusion_only_shuffled": 0.61, "joint": 0.70, "joint_notext": 0.62,
            "phase1": 0.61, "phase2": 0.64, "phase2_notext": 0.63, "phase1_shuffled": 0.60, "phase2_shuffled": 0.62}
    cells = [{"model": model, "resolution": 256, "phase": p, "label": label(p), "seeds": [0, 1, 2],
              "metrics": {"AP50": _value(ap50[p], seed_sd=0.01 * (1 + i % 3)), "AP": _value(ap50[p] - 0.2)},
              "per_class": {}} for i, p in enumerate(phases)]

    def row(a, b, estimate, p_holm, per_class=None):
        found = {"a": label(a), "b": label(b), "metrics": {"AP50": _value(estimate, p_holm=p_holm)}}
        return {**found, "per_class": per_class} if per_class is not None else found

    # joint: +0.10 over vanilla, beats its control; forgets class B (significant) and dips on C (not)
    forgets = {"A": _value(0.02, p_holm=0.9), "B": _value(-0.12, -0.2, -0.04, p_holm=0.004),
               "C": _value(-0.03, -0.1, 0.04, p_holm=0.6)}
    flat = {name: _value(0.0, p_holm=1.0) for name in "ABC"}
    rows = [row("fusion_only", "base", 0.02, 0.3, flat), row("fusion_only_shuffled", "base", 0.01, 0.5, flat),
            row("fusion_only", "fusion_only_shuffled", 0.01, 0.7),
            row("joint", "base", 0.10, 0.001, forgets), row("joint_notext", "base", 0.02, 0.4, flat),
            row("joint", "joint_notext", 0.08, 0.01),
            row("phase2", "base", 0.04, 0.02, flat), row("phase2", "phase2_notext", 0.01, 0.5),
            row("phase2", "phase2_shuffled", 0.02, 0.04)]
    return {"settings": {"level": 0.95, "method": "basic", "resamples": 1000, "alpha": 0.05, "baseline": None},
            "cells": cells, "best": {}, "tables": {"baseline": [], "multimodal": rows, "extra": []}}


def test_the_strategies_table_measures_the_plans_criteria():
    from detstudy.report.significance import Significance
    from detstudy.report.strategies import strategies_view, strategy_records, strategy_sentence

    significance = Significance(_strategy_comparisons())
    costs = {("m", 256, phase, seed): seconds for seed in (0, 1, 2) for phase, seconds in
             {"base": 600, "fusion_only": 120, "joint": 1800, "phase1": 60, "phase2": 90}.items()}
    costs.pop(("m", 256, "joint", 2))  # a run without its benchmark file: the others are timed
    costs[("m", 256, "joint", 1)] = 2400
    gpus = {key: 1 for key in costs}
    records = {r["strategy"]: r for r in strategy_records(significance, costs, gpus)}
    assert list(records) == ["fusion_only", "joint", "progressive"]  # the plan's order
    joint, progressive = records["joint"], records["progressive"]
    assert progressive["run"] == "phase2" and progressive["trains"] == "the fusion, then + class heads"
    assert [c["phase"] for c in progressive["controls"]] == ["phase2_notext", "phase2_shuffled"]
    assert joint["gain"]["estimate"] == 0.10 and joint["controls"][0]["difference"]["p_holm"] == 0.01
    # forgetting: the most negative class difference, and only the significant drops counted
    assert joint["forgetting"]["class"] == "B" and joint["forgetting"]["dropped"] == ["B"]
    assert records["fusion_only"]["forgetting"]["dropped"] == []
    assert joint["seed_sd"] == 0.01 and records["fusion_only"]["seed_sd"] == 0.02  # stability
    # cost: the strategy's own training per seed (phases summed), the vanilla run it starts from
    # added where it starts from one; the seeds timed, and GPU hours over them
    assert progressive["train_seconds"] == 150 and progressive["train_seconds_with_vanilla"] == 750
    assert joint["timed_seeds"] == [0, 1] and joint["train_seconds"] == 2100
    assert joint["train_seconds_with_vanilla"] is None and joint["gpu_hours"] == pytest.approx(4200 / 3600)
    view = strategies_view(list(records.values()))
    texts = {row["cells"][2]["text"]: [c["text"] for c in row["cells"]] for row in view["rows"]}
    assert texts["2: joint, from the backbone"][9:14] == ["B -0.120 (p 0.004)", "1 of 3", "0.010 (3 seeds)",
                                                          "35.0 min; 2 of 3 seeds timed", "1.2"]
    assert texts["3: progressive unfreezing"][8] == "no text +0.010 (p 0.500); shuffled text +0.020 (p 0.040)"
    assert texts["3: progressive unfreezing"][12] == "2.5 min (12.5 min with vanilla)"
    said = {s: strategy_sentence(r, 0.05) for s, r in records.items()}
    assert "above vanilla by +0.100" in said["joint"] and "exceeds its control significantly" in said["joint"]
    # its control has no text and no fusion: beating it does not single out what the text says
    assert "with no shuffled-text control, the descriptions' content is not told apart" in said["joint"]
    assert "what the text says" not in said["joint"]
    # it never had vanilla's weights: its classes below vanilla are not forgotten ones
    assert "below vanilla: 1 of 3 classes drop significantly (B; largest B -0.120)" in said["joint"]
    assert "does not significantly exceed the no-text control (+0.010, Holm p 0.500; the control alone – over" \
        in said["progressive"] and "shuffled-text" not in said["progressive"]  # beaten: p 0.04
    assert "no class is below vanilla" in said["fusion_only"]
    # phase 2 beating its no-text and its shuffled-text controls: then the words are the cause
    comparisons = _strategy_comparisons()
    for row in comparisons["tables"]["multimodal"]:
        if row["b"].endswith("phase2_notext"):
            row["metrics"]["AP50"].update(p=0.01, p_holm=0.01)
    progressive = strategy_records(Significance(comparisons), costs)[2]
    assert "exceeds all 2 controls significantly: what the text says adds to what the training alone gives" \
        in strategy_sentence(progressive, 0.05)
    cpu = strategies_view(strategy_records(significance, costs, starts={"m": "initial weights, backbone from scratch"}))
    assert cpu["rows"][1]["cells"][13]["text"] == "0 (CPU)"
    assert [row["cells"][3]["text"] for row in cpu["rows"]] == [
        "vanilla best checkpoint", "initial weights, backbone from scratch", "vanilla best checkpoint"]
    assert view["rows"][1]["cells"][3]["text"] == "initial weights, pretrained backbone"
    # an imported vanilla run has no training job: the strategies' own time still shows
    del costs[("m", 256, "base", 0)], costs[("m", 256, "base", 1)], costs[("m", 256, "base", 2)]
    progressive = strategy_records(significance, costs)[2]
    assert progressive["train_seconds"] == 150 and progressive["train_seconds_with_vanilla"] is None


def test_the_plans_expectations_stand_beside_the_measured_gain_and_time():
    from detstudy.report.significance import Significance
    from detstudy.report.strategies import strategies_view, strategy_records, strategy_sentence

    significance = Significance(_strategy_comparisons())
    costs = {("m", 256, phase, seed): seconds for seed in (0, 1, 2) for phase, seconds in
             {"base": 600, "fusion_only": 120, "joint": 2100, "phase1": 60, "phase2": 90}.items()}
    # measured gains (intervals): fusion only +0.02 [-0.03, 0.07], joint +0.10 [0.05, 0.15],
    # progressive +0.04 [-0.01, 0.09]; times 2.0 min, 35.0 min, 2.5 min
    expected = {"fusion_only": {"gain": [-0.10, -0.04], "hours": [0.03, 0.04]},
                "joint": {"gain": [-0.04, 0.10], "hours": [16, 20]},
                "progressive": {"gain": [0.10, 0.12], "hours": [0.01, 0.02]}}
    records = {r["strategy"]: r for r in strategy_records(significance, costs, expected=expected)}
    said = {s: strategy_sentence(r, 0.05) for s, r in records.items()}
    assert "its interval [-0.030, 0.070] lies above the plan's expected -0.100 to -0.040" in said["fusion_only"]
    assert "its interval [0.050, 0.150] overlaps the plan's expected -0.040 to +0.100" in said["joint"]
    assert "its interval [-0.010, 0.090] lies below the plan's expected +0.100 to +0.120" in said["progressive"]
    assert said["fusion_only"].endswith("2.0 min of training, within the plan's 0.03-0.04 h.")
    assert said["joint"].endswith("35.0 min of training, under the plan's 16-20 h.")
    assert said["progressive"].endswith("2.5 min of training, over the plan's 0.01-0.02 h.")
    view = strategies_view(list(records.values()))
    assert view["columns"][-1]["label"] == "Plan: ΔAP50; time"
    assert view["rows"][1]["cells"][-1]["text"] == "ΔAP50 -0.040 to +0.100; 16-20 h"
    # a strategy without expectations: a dash in the plan's column, nothing about a plan said
    del expected["progressive"], expected["fusion_only"]["hours"]
    records = strategy_records(significance, costs, expected=expected)
    cells = [row["cells"][-1]["text"] for row in strategies_view(records)["rows"]]
    assert cells == ["ΔAP50 -0.100 to -0.040", "ΔAP50 -0.040 to +0.100; 16-20 h", "–"]
    assert "plan" not in strategy_sentence(records[2], 0.05)
    assert strategy_sentence(records[0], 0.05).endswith("2.0 min of training.")
    # without any expectation, no plan column at all
    assert "Plan: ΔAP50; time" not in [c["label"] for c in strategies_view(strategy_records(significance, costs))["columns"]]


def test_gpu_hours_count_the_runs_whose_provenance_names_a_cuda_device():
    from detstudy.report.render import strategies_context
    from detstudy.report.significance import Significance

    phases = ("base", "fusion_only", "joint", "phase1", "phase2")
    costs = {("m", 256, phase, seed): 3600.0 for seed in (0, 1, 2) for phase in phases}
    # seed 0 on the second GPU (compute.device cuda:1), the others on the CPU
    runs = [{"run": {"model": "m", "resolution": 256, "phase": phase, "seed": seed},
             "provenance": {"config": {"device": "cuda:1" if seed == 0 else "cpu"}}}
            for seed in (0, 1, 2) for phase in phases]
    view = strategies_context(Significance(_strategy_comparisons()), costs, None, runs)["strategies"]
    assert [row["cells"][13]["text"] for row in view["rows"]] == ["1.0", "1.0", "2.0"]  # phases 1 + 2: two jobs
    for run in runs:
        run["provenance"]["config"]["device"] = "cpu"
    view = strategies_context(Significance(_strategy_comparisons()), costs, None, runs)["strategies"]
    assert {row["cells"][13]["text"] for row in view["rows"]} == {"0 (CPU)"}


def test_where_a_joint_run_starts_is_read_from_its_model_settings():
    from detstudy.report.strategies import joint_start

    assert joint_start({"backbone_weights": "weights/vittplus_distill.pt"}) == "initial weights, pretrained backbone"
    assert joint_start({"weights": "coco.pth", "backbone_weights": None}) == "initial weights, pretrained detector"
    assert joint_start({"backbone_weights": None}) == joint_start(None) == "initial weights, backbone from scratch"


def test_the_strategies_section_in_every_format(phase_paths, tmp_path):
    comparisons = _write(tmp_path / "comparisons.json", _strategy_comparisons("deimv2_s"))
    out = tmp_path / "results" / "report"
    _render(phase_paths, out, comparisons_json=comparisons, train_gpus={("deimv2_s", 256, "joint", 0): 1},
            train_costs={("deimv2_s", 256, "joint", 0): 7200.0, ("deimv2_s", 256, "base", 0): 3600.0},
            expected={"joint": {"gain": [-0.04, 0.10], "hours": [16, 20]}})
    html = (out / "index.html").read_text()
    start = html.index('id="strategies"')
    section = unescape(html[start:html.index("</section>", start)])
    for text in ("2: joint, from the backbone", "B -0.120 (p 0.004)", "2.0 h", "Plan: ΔAP50; time",
                 "overlaps the plan's expected -0.040 to +0.100", "2.0 h of training, under the plan's 16-20 h",
                 "Strategy 2: joint, from the backbone"
                 " (deimv2_s · 256 px): AP50 0.700 [0.650, 0.750], above vanilla by +0.100 (Holm p 0.001)"):
        assert text in section, text
    assert "<em>Plan</em> is what the config's <code>multimodal.expected</code> says" in section
    md = (out / "report.md").read_text()
    assert "### The three strategies, measured" in md and "| 3: progressive unfreezing |" in md
    assert "*Plan*: what `multimodal.expected` says the plan expected" in md
    tex = (out / "tables" / "strategies.tex").read_text()
    for token in (r"\label{tab:strategies}", "2: joint, from the backbone", r"the fusion, then + class heads",
                  r"$\Delta$AP50 \num{-0.040} to \num[retain-explicit-plus]{+0.100}"):
        assert token in tex, token
    assert "→" not in tex and "–" not in tex
    compile_latex(out / "tables")


def test_benchmark_seconds_reads_snakemakes_file(tmp_path):
    from detstudy.report.strategies import benchmark_seconds

    path = tmp_path / "train.tsv"
    path.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                    "375.12\t0:06:15\t853.82\t3691.93\t832.23\t841.65\t0.07\t25.09\t72.21\t370.2\n")
    assert benchmark_seconds(path) == pytest.approx(375.12)
    assert benchmark_seconds(tmp_path / "missing.tsv") is None
