"""Sentences the report generates from the comparisons: per phase of the multimodal extension,
whether the text fusion's gain over vanilla exceeds every control's gain significantly."""

from __future__ import annotations

from detstudy.study.grid import cell_label, chain_run, phase_label
from detstudy.report.formatting import p_text
from detstudy.report.significance import Significance

CONTROL_NAMES = {"shuffled": "shuffled-text control", "notext": "no-text control"}


def _signed(value) -> str:
    return "–" if value is None else f"{value:+.3f}"


def multimodal_findings(significance: Significance | None, metric: str = "AP50") -> list[str]:
    """One sentence per (model, resolution, run with text) that has a control, in cell order."""
    if significance is None:
        return []
    sentences = []
    cells = list(significance.cells.values())
    for cell in cells:
        run = chain_run(cell["phase"])
        if run is None or run.control is not None:
            continue
        model, resolution = cell["model"], cell["resolution"]
        vanilla = cell_label(model, resolution, "base")
        gain = significance.difference(cell["label"], vanilla, metric, "multimodal")
        controls = [other for other in cells if (other["model"], other["resolution"]) == (model, resolution)
                    and getattr(chain_run(other["phase"]), "treatment", None) == run.treatment
                    and other["label"] != cell["label"]]
        if gain is None or not controls:
            continue
        pieces, verdicts = [], []
        for control in controls:
            control_gain = significance.difference(control["label"], vanilla, metric, "multimodal")
            versus = significance.difference(cell["label"], control["label"], metric, "multimodal") or {}
            significant = versus.get("p_holm") is not None and versus["p_holm"] < significance.alpha
            verdicts.append(significant and (versus.get("estimate") or 0) > 0)
            name = CONTROL_NAMES.get(chain_run(control["phase"]).control, control["phase"])
            interval = "" if versus.get("low") is None else f" [{versus['low']:+.3f}, {versus['high']:+.3f}]"
            pieces.append(f"the {name}'s {_signed((control_gain or {}).get('estimate'))} (difference "
                          f"{_signed(versus.get('estimate'))}{interval}, Holm p {p_text(versus.get('p_holm'))})")
        verdict = ("exceeds" if all(verdicts) else "does not significantly exceed") + \
                  (" both controls' gains" if len(controls) == 2 else " the control's gain" if len(controls) == 1
                   else f" all {len(controls)} controls' gains")
        sentences.append(f"{model} · {resolution} px, {phase_label(cell['phase'])}: the text fusion's {metric} gain "
                         f"over vanilla ({_signed(gain.get('estimate'))}) {verdict} at α = {significance.alpha:g}: "
                         + "; ".join(pieces) + ".")
    return sentences
