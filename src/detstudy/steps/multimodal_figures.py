"""The ``multimodal_figures`` step: the multimodal extension's cross-run figures of one
(model, resolution, seed)."""

from __future__ import annotations

from typing import Any

from detstudy.tasks.detection.plots import plot_pair_confusion, plot_text_similarity
from detstudy.engine.io import read_json
from detstudy.study.grid import phase_label


def multimodal_figures(*, metrics_paths: list[str], phases: list[str], pair: list[str], similarity_png,
                       pair_confusion_png, style: dict[str, Any] | None = None) -> None:
    """Both cross-run figures of one (model, resolution, seed); ``metrics_paths[i]`` is the run of
    ``phases[i]``, in the order the figures show them (vanilla, controls, phases)."""
    if len(metrics_paths) != len(phases):
        raise ValueError(f"{len(metrics_paths)} metrics files for {len(phases)} phases {phases}: "
                         "the rule must give one metrics.json per phase, in the same order")
    runs = [(phase_label(phase), read_json(path)) for phase, path in zip(phases, metrics_paths)]
    style = {k: v for k, v in (style or {}).items() if k != "prediction_images"}
    first = runs[0][1]["run"] if runs else {}
    name = f"{first.get('model')} · {first.get('resolution')} px · seed {first.get('seed')}"
    plot_text_similarity([(label, m["text_similarity"]) for label, m in runs if m.get("text_similarity")],
                         similarity_png, style=style,
                         title=f"Query features vs class descriptions (test): {name}")
    plot_pair_confusion(runs, tuple(pair), pair_confusion_png, style=style,
                        title=f"{' / '.join(pair)} confusion: {name}")
