"""The thesis plan's table of the three multimodal strategies, measured.

One row per (model, resolution, strategy) the grid ran: where it starts and what trains, AP50
and mAP with their intervals, the difference to vanilla and to each of the strategy's controls
(Holm-adjusted p-values of the comparisons' multimodal table), what it forgets (the largest
per-class AP50 drop against vanilla, with its interval, and how many classes dropped
significantly, Holm across the classes), how stable it is (the sd of AP50 over seeds) and what
it costs (the training jobs' wall time from their Snakemake benchmark files, and GPU hours: that
time on the runs trained on a GPU, one GPU per job, as the workflow gives them); where the
config gives the plan's expectations (``multimodal.expected``), the plan's gain and time beside
them. Then one sentence per strategy saying what the numbers support, the plan's range included.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from detstudy.report.findings import CONTROL_NAMES
from detstudy.report.formatting import DASH, cell, fmt_number, interval_text, p_text
from detstudy.report.significance import Significance
from detstudy.study.chain import Phase, strategy_members, strategy_runs
from detstudy.study.grid import STRATEGY_LABELS, cell_label, phase_label

#: Where each strategy starts and what it trains, as the plan's table says it.
STARTS = {"fusion_only": "vanilla best checkpoint", "joint": "initial weights, pretrained backbone",
          "progressive": "vanilla best checkpoint"}
#: Where a joint run starts, by the weights its model settings load (:func:`joint_start`).
JOINT_STARTS = {"weights": "initial weights, pretrained detector", "backbone_weights": STARTS["joint"],
                None: "initial weights, backbone from scratch"}
TRAINS = {"fusion_only": "the fusion only", "joint": "everything, per-group rates"}
PHASE_TRAINS = {"phase1": "the fusion", "phase2": "+ class heads", "phase3": "+ detector but backbone"}


def joint_start(model_settings: dict | None) -> str:
    """Where a joint run starts, from its model settings (its provenance): a whole pretrained
    detector (``weights``), a pretrained backbone (``backbone_weights``) or neither (the demo)."""
    settings = model_settings or {}
    return JOINT_STARTS[next((key for key in ("weights", "backbone_weights") if settings.get(key)), None)]


def benchmark_seconds(path) -> float | None:
    """The wall time (``s``) of a Snakemake benchmark file; ``None`` when it is not there."""
    if not Path(path).is_file():
        return None
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return sum(float(row["s"]) for row in rows) if rows else None


def _format_duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return DASH
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _difference(significance: Significance, a: str, b: str, metric: str = "AP50") -> dict | None:
    found = significance.difference(a, b, metric, "multimodal")
    return found if found and found.get("estimate") is not None else None


def _significant(found: dict | None, alpha: float) -> bool:
    return bool(found and found.get("p_holm") is not None and found["p_holm"] < alpha)


def forgetting(significance: Significance, run: str, vanilla: str) -> dict | None:
    """The largest per-class drop of ``run`` against ``vanilla`` and how many classes dropped
    significantly (the comparisons' per-class differences, Holm across the classes)."""
    row = significance.pairs.get("multimodal", {}).get((run, vanilla))
    classes = (row or {}).get("per_class") or {}
    found = {name: value for name, value in classes.items() if value.get("estimate") is not None}
    if not found:
        return None
    worst = min(found, key=lambda name: found[name]["estimate"])
    dropped = [name for name, value in found.items() if value["estimate"] < 0 and _significant(value, significance.alpha)]
    return {"class": worst, **found[worst], "dropped": dropped, "classes": len(found)}


def strategy_records(significance: Significance, costs: dict[tuple, float], gpus: dict[tuple, int] | None = None,
                     starts: dict[str, str] | None = None, expected: dict[str, dict] | None = None) -> list[dict]:
    """One record per (model, resolution, strategy) of the comparisons' cells, in the plan's order.

    ``costs``: training wall seconds by (model, resolution, phase, seed); ``gpus``: the GPUs each
    of those runs trained on (0 on a CPU; missing: 0); ``starts``: where a model's joint run
    starts (:func:`joint_start`; missing: a pretrained backbone); ``expected``: the plan's
    ``gain`` and ``hours`` ranges by strategy (``multimodal.expected``). The time is the mean over
    the seeds whose training jobs all have their benchmark file, and says so when some do not."""
    gpus = gpus or {}
    groups: dict[tuple, list[str]] = {}
    for cell_record in significance.cells.values():
        if cell_record["phase"] != "base":
            groups.setdefault((cell_record["model"], cell_record["resolution"]), []).append(cell_record["phase"])
    records = []
    for (model, resolution), names in groups.items():
        vanilla = cell_label(model, resolution, "base")
        if vanilla not in significance.cells:
            continue
        for strategy, run in strategy_runs(names).items():
            label = cell_label(model, resolution, run)
            own = significance.cells[label]
            members = strategy_members(strategy, names)
            controls = sorted(n for n in names if Phase.parse(n).control and Phase.parse(n).treatment == run)
            seeds = own["seeds"]
            # one set of seeds for every cost figure: those whose jobs all left their benchmark file
            timed = [seed for seed in seeds if all((model, resolution, m, seed) in costs for m in members)]
            # the vanilla run it starts from, where that was trained here (not an imported one)
            from_vanilla = Phase.parse(members[0]).previous == "base" and bool(timed) and all(
                (model, resolution, "base", seed) in costs for seed in timed)

            def mean(phases: list[str]) -> float | None:
                return sum(costs[model, resolution, p, seed] for p in phases for seed in timed) / len(timed) \
                    if timed else None

            records.append({
                "model": model, "resolution": resolution, "strategy": strategy, "label": STRATEGY_LABELS[strategy],
                "run": run, "cell": label, "vanilla": vanilla, "seeds": seeds, "timed_seeds": timed,
                "start": (starts or {}).get(model, STARTS["joint"]) if strategy == "joint" else STARTS[strategy],
                "trains": TRAINS[strategy] if strategy != "progressive" else
                ", then ".join(PHASE_TRAINS[m] for m in members),
                "AP50": own["metrics"].get("AP50"), "mAP": own["metrics"].get("AP"),
                "gain": _difference(significance, label, vanilla),
                "controls": [{"phase": c, "name": phase_label(c).split(", ", 1)[-1],
                              "control_gain": _difference(significance, cell_label(model, resolution, c), vanilla),
                              "difference": _difference(significance, label, cell_label(model, resolution, c))}
                             for c in controls],
                "forgetting": forgetting(significance, label, vanilla),
                "seed_sd": (own["metrics"].get("AP50") or {}).get("seed_sd"),
                "train_seconds": mean(members),
                "train_seconds_with_vanilla": mean(members + ["base"]) if from_vanilla else None,
                "gpu_hours": sum(costs[model, resolution, m, seed] * gpus.get((model, resolution, m, seed), 0)
                                 for m in members for seed in timed) / 3600 if timed else None,
                "expected": (expected or {}).get(strategy) or {},
                "on_gpu": any(gpus.get((model, resolution, m, seed), 0) for m in members for seed in timed),
            })
    order = list(STRATEGY_LABELS)
    records.sort(key=lambda r: (str(r["model"]), float(r["resolution"]), order.index(r["strategy"])))
    return records


def _range(values: list[float], signed: bool) -> str:
    low, high = values
    return f"{low:+.3f} to {high:+.3f}" if signed else f"{low:g}-{high:g} h"


def plan_cell(expected: dict) -> str:
    """The plan's expectations of one strategy, as the table shows them."""
    parts = [f"ΔAP50 {_range(expected['gain'], True)}" if "gain" in expected else None,
             _range(expected["hours"], False) if "hours" in expected else None]
    return "; ".join(p for p in parts if p) or DASH


def plan_gain_verdict(record: dict) -> str | None:
    """Where the measured gain's interval lies against the plan's expected range (``None``
    without an expected gain)."""
    if "gain" not in record["expected"]:
        return None
    plan = f"the plan's expected {_range(record['expected']['gain'], True)}"
    low, high = record["expected"]["gain"]
    gain = record["gain"]
    if not gain or gain.get("low") is None:
        return f"{plan} not tested (no interval of the gain)"
    measured = interval_text((gain["low"], gain["high"]))
    if gain["high"] < low:
        return f"its interval {measured} lies below {plan}"
    if gain["low"] > high:
        return f"its interval {measured} lies above {plan}"
    return f"its interval {measured} overlaps {plan}"


def _cost_text(record: dict) -> str:
    seconds = record["train_seconds"]
    text = _format_duration(seconds) + " of training"
    if "hours" in record["expected"] and seconds is not None:
        low, high = record["expected"]["hours"]
        hours = seconds / 3600
        where = "within" if low <= hours <= high else "under" if hours < low else "over"
        text += f", {where} the plan's {_range([low, high], False)}"
    return text


def _signed(found: dict | None, decimals: int = 3) -> str:
    return DASH if not found else f"{found['estimate']:+.{decimals}f}"


def _difference_cell(found: dict | None) -> dict:
    if not found:
        return cell(DASH, numeric=True)
    return cell(f"{found['estimate']:+.3f} (p {p_text(found.get('p_holm'))})", numeric=True,
                interval=interval_text((found["low"], found["high"])) if found.get("low") is not None else None)


def strategies_view(records: list[dict]) -> dict:
    """The plan's table as a generic report table (HTML, Markdown and LaTeX lay it out alike)."""
    columns = [("Model", "Model", False), ("Res. (px)", "Res.", True), ("Strategy", "Strategy", False),
               ("Starts from", "Starts from", False), ("Trains", "Trains", False),
               ("AP50", r"AP$_{50}$", True), ("mAP", "mAP", True),
               ("ΔAP50 vs vanilla (Holm p)", r"$\Delta$AP$_{50}$ vs vanilla", True),
               ("ΔAP50 vs its controls (Holm p)", r"$\Delta$AP$_{50}$ vs controls", False),
               ("Largest class drop (Holm p)", "Largest class drop", True),
               ("Classes dropped", "Dropped", True), ("Seed sd of AP50", "Seed sd", True),
               ("Training time", "Training", True), ("GPU hours", "GPU h", True)]
    with_plan = any(record["expected"] for record in records)
    if with_plan:
        columns.append(("Plan: ΔAP50; time", "Plan", True))
    rows, previous = [], None
    for record in records:
        worst = record["forgetting"]
        controls = "; ".join(f"{c['name']} {_signed(c['difference'])} (p {p_text((c['difference'] or {}).get('p_holm'))})"
                             for c in record["controls"]) or DASH
        seeds = len(record["seeds"])
        time_text = _format_duration(record["train_seconds"])
        if record["train_seconds_with_vanilla"] is not None:
            time_text += f" ({_format_duration(record['train_seconds_with_vanilla'])} with vanilla)"
        missing = len(record["seeds"]) - len(record["timed_seeds"])
        if record["timed_seeds"] and missing:
            time_text += f"; {len(record['timed_seeds'])} of {len(record['seeds'])} seeds timed"
        gpu = DASH if record["gpu_hours"] is None else \
            ("0 (CPU)" if not record["on_gpu"] else f"{record['gpu_hours']:.1f}")
        values = [record["AP50"] or {}, record["mAP"] or {}]
        cells = [cell(record["model"]), cell(record["resolution"], numeric=True), cell(record["label"]),
                 cell(record["start"]), cell(record["trains"])]
        cells += [cell(fmt_number(v.get("estimate")), numeric=True,
                       interval=interval_text((v["low"], v["high"])) if v.get("low") is not None else None)
                  for v in values]
        cells += [_difference_cell(record["gain"]), cell(controls)]
        if worst:
            none = "none, smallest change " if worst["estimate"] >= 0 else ""
            cells.append(cell(f"{none}{worst['class']} {worst['estimate']:+.3f} (p {p_text(worst.get('p_holm'))})",
                              numeric=True, interval=interval_text((worst["low"], worst["high"]))
                              if worst.get("low") is not None else None))
            cells.append(cell(f"{len(worst['dropped'])} of {worst['classes']}", numeric=True))
        else:
            cells += [cell(DASH, numeric=True), cell(DASH, numeric=True)]
        cells.append(cell(f"{record['seed_sd']:.3f} ({seeds} seeds)" if record["seed_sd"] is not None
                          else f"{DASH} (1 seed)" if seeds == 1 else DASH, numeric=True))
        cells += [cell(time_text, numeric=True), cell(gpu, numeric=True)]
        if with_plan:
            cells.append(cell(plan_cell(record["expected"]), numeric=True))
        group = (record["model"], record["resolution"])
        rows.append({"cells": cells, "family_start": group != previous, "first_row": previous is None,
                     "family": record["model"]})
        previous = group
    return {"key": "strategies", "caption": "The three multimodal strategies, measured",
            "columns": [{"label": label, "tex": tex, "numeric": numeric} for label, tex, numeric in columns],
            "rows": rows, "n_key_columns": 3, "group_headers": None, "group_first_column": True,
            "plan": with_plan}


def strategy_sentence(record: dict, alpha: float) -> str:
    """What the numbers of one strategy support, in one sentence."""
    gain, value = record["gain"], record["AP50"] or {}
    where = f"{record['model']} · {record['resolution']} px"
    head = (f"Strategy {record['label']} ({where}): AP50 {fmt_number(value.get('estimate'))}"
            + (f" {interval_text((value['low'], value['high']))}" if value.get("low") is not None else ""))
    if not gain:
        verdict = "no comparison with vanilla"
    elif _significant(gain, alpha):
        verdict = (f"{'above' if gain['estimate'] > 0 else 'below'} vanilla by {gain['estimate']:+.3f} "
                   f"(Holm p {p_text(gain['p_holm'])})")
    else:
        verdict = f"not significantly different from vanilla ({gain['estimate']:+.3f}, Holm p {p_text(gain.get('p_holm'))})"
    controls = record["controls"]
    beaten = [c for c in controls if _significant(c["difference"], alpha) and c["difference"]["estimate"] > 0]
    if not controls:
        text = "it has no control to tell whether the text is the cause"
    elif len(beaten) == len(controls):
        text = "it exceeds " + ("its control" if len(controls) == 1 else f"all {len(controls)} controls") + \
               " significantly: "
        if any(Phase.parse(c["phase"]).control == "shuffled" for c in beaten):
            text += "what the text says adds to what the training alone gives"
        else:  # a no-text control differs by the fusion itself (its parameters, its rate), not by the words
            text += ("the fusion with the text adds to the same training without it; with no shuffled-text "
                     "control, the descriptions' content is not told apart from the fusion's own capacity")
    else:
        missed = [f"the {CONTROL_NAMES.get(Phase.parse(c['phase']).control, c['name'])} "
                  f"({_signed(c['difference'])}, Holm p {p_text((c['difference'] or {}).get('p_holm'))}; "
                  f"the control alone {_signed(c['control_gain'])} over vanilla)" for c in controls if c not in beaten]
        text = f"it does not significantly exceed {' or '.join(missed)}, so the data do not show that the text " \
               "is the cause"
    worst = record["forgetting"]
    if worst is None:
        forgets = "forgetting not measured"
    elif worst["dropped"]:
        # a joint run never had vanilla's weights: its classes below vanilla are not forgotten
        lead = "below vanilla" if record["strategy"] == "joint" else "it forgets"
        forgets = (f"{lead}: {len(worst['dropped'])} of {worst['classes']} classes drop significantly "
                   f"({', '.join(worst['dropped'])}; largest {worst['class']} {worst['estimate']:+.3f})")
    elif worst["estimate"] >= 0:
        forgets = f"no class is below vanilla (smallest change {worst['class']} {worst['estimate']:+.3f})"
    else:
        forgets = (f"no class drops significantly (largest drop {worst['class']} {worst['estimate']:+.3f}"
                   + (f" {interval_text((worst['low'], worst['high']))}" if worst.get("low") is not None else "") + ")")
    seeds = len(record["seeds"])
    stability = (f"seed sd {record['seed_sd']:.3f} over {seeds} seeds" if record["seed_sd"] is not None
                 else "one seed, so no stability estimate")
    plan = plan_gain_verdict(record)
    verdict += f", and {plan}" if plan else ""
    return f"{head}, {verdict}; {text}; {forgets}; {stability}; {_cost_text(record)}."
