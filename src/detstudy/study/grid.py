"""The grid, enumerated once: every run (model, resolution, phase, seed) and cell of a config,
what identifies a run, and the labels runs and cells are shown under. Pure Python: the
Snakefile enumerates its targets from it while parsing, and the statistics and the report
name runs with the same functions."""

from __future__ import annotations

from detstudy.study.architectures import family_of
from detstudy.study.chain import Phase, chain_names

def import_cells(config: dict, name: str) -> dict[str, str]:
    """{"<res>px/seed<seed>": file} for every grid cell of an imported model. A file is one
    training run, so it stands for the grid's only cell, never for several seeds or resolutions."""
    given = config["models"][name]["import_checkpoint"]
    cells = [f"{r}px/seed{s}" for r in config["grid"]["resolutions"] for s in config["grid"]["seeds"]]
    key = f"config models.{name}.import_checkpoint"
    if isinstance(given, str):
        if len(cells) > 1:
            raise ValueError(
                f"{key}: one file for the {len(cells)} grid cells {cells}: it would stand for every seed and "
                "resolution, with no variance between them. Fix: give one file per cell, e.g. "
                f"import_checkpoint: {{{cells[0]!r}: best_stg1.pth, ...}}, or a grid of one resolution and seed.")
        return {cells[0]: given}
    missing = [cell for cell in cells if cell not in given]
    extra = [cell for cell in given if cell not in cells]
    if missing or extra:
        raise ValueError(f"{key}: cells {missing} of the grid have no file" + (f", {extra} are not grid cells" if extra
                         else "") + f". Fix: give one file for each of {cells}.")
    return dict(given)


# --- labels: how runs and cells are named in figures, tables and the report -----------------

_CONTROL_LABELS = {None: "", "shuffled": ", shuffled text", "notext": ", no text"}
_TREATMENT_LABELS = {"fusion_only": "fusion only", "joint": "joint"}
#: How the report names the plan's strategies.
STRATEGY_LABELS = {"fusion_only": "1: fusion only", "joint": "2: joint, from the backbone",
                   "progressive": "3: progressive unfreezing"}


def chain_run(phase) -> Phase | None:
    """The parsed chain run of a phase name; None for ``base`` and anything else."""
    try:
        return Phase.parse(str(phase))
    except ValueError:
        return None


def phase_parts(phase) -> tuple[int, str | None] | None:
    """(stage, control) of a phase name: ``base`` -> (0, None), ``phase2_notext`` -> (2, "notext"),
    ``joint`` -> (4, None); None for anything else."""
    if str(phase) == "base":
        return 0, None
    parsed = chain_run(phase)
    return None if parsed is None else (parsed.stage, parsed.control)


def phase_label(phase) -> str:
    """A phase as a reader says it: ``base`` -> "vanilla", ``phase2_notext`` -> "phase 2, no text",
    ``phase1_shuffled`` -> "phase 1, shuffled text", ``phase3`` -> "phase 3", ``joint_notext`` ->
    "joint, no text", ``fusion_only`` -> "fusion only"; other names unchanged."""
    if str(phase) == "base":
        return "vanilla"
    parsed = chain_run(phase)
    if parsed is None:
        return str(phase)
    name = _TREATMENT_LABELS.get(parsed.treatment) or f"phase {parsed.treatment[-1]}"
    return name + _CONTROL_LABELS.get(parsed.control, f", {parsed.control}")


def run_label(run: dict) -> str:
    """The label a run's figures are filed under, e.g. ``frcnn_r18 · 256 px · base · seed 0``.

    Accepts a metrics dict (with a ``run`` block) or the ``run`` block itself.
    """
    meta = run.get("run", run)
    phase = meta.get("phase", "base") + (" (imported)" if meta.get("imported") else "")
    return f"{meta.get('model')} · {meta.get('resolution')} px · {phase} · seed {meta.get('seed')}"


def is_phase_run(run: dict) -> bool:
    """A run of the multimodal extension (a strategy's run or a control), not the vanilla run."""
    parts = phase_parts(run.get("run", run).get("phase", "base"))
    return parts is not None and parts[0] >= 1


def multimodal_label(run: dict) -> str:
    """The label the cross-run multimodal figures of one (model, resolution, seed) are filed under,
    e.g. ``deimv2_demo 192px seed 0`` (a metrics dict, its ``run`` block or the rule's params entry)."""
    meta = run.get("run", run)
    return f"{meta.get('model')} {meta.get('resolution')}px seed {meta.get('seed')}"


def cell_label(model, resolution, phase) -> str:
    """A cell of the grid, its seeds pooled: ``deimv2_demo · 192 px · phase1``."""
    return f"{model} · {resolution} px · {phase}"


# --- the grid's runs ----------------------------------------------------------------------------

def chain_phases(config: dict) -> list[str]:
    """The multimodal runs of each extended model (strategy by strategy, controls first); none
    without a ``multimodal`` block."""
    return chain_names(config.get("multimodal"))


def grid_runs(config: dict) -> list[dict]:
    """Every (model, resolution, phase, seed) run: the grid's vanilla runs, then the multimodal
    phases and controls of the extended models. The one enumeration: the Snakefile's targets,
    the statistics' cells and the report's rows all follow it."""
    runs = [{"model": model, "resolution": resolution, "phase": "base", "seed": seed}
            for model in config["grid"]["models"]
            for resolution in config["grid"]["resolutions"]
            for seed in config["grid"]["seeds"]]
    extended = (config.get("multimodal") or {}).get("models") or []
    return runs + [{**run, "phase": phase} for run in runs if run["model"] in extended for phase in chain_phases(config)]


def grid_cells(config: dict) -> list[tuple[str, int, str]]:
    """Every (model, resolution, phase) of the grid (its seeds pooled), in :func:`grid_runs` order."""
    return list(dict.fromkeys((run["model"], int(run["resolution"]), run["phase"]) for run in grid_runs(config)))


def run_identity(config: dict, model: str, resolution, phase: str, seed) -> dict:
    """What identifies a run in its metrics JSON and the report: its cell and seed, family
    (``multimodal`` for a run with text), strategy, stage (how far it unfreezes: 0 vanilla,
    1 the fusion ... 4 everything) and control in the chain, whether imported."""
    parsed = None if phase == "base" else Phase.parse(phase)
    text = parsed is not None and parsed.uses_text
    settings = config["models"][model]
    return {
        "model": model,
        "family": "multimodal" if text else family_of(settings["architecture"]),
        "architecture": settings["architecture"],
        "resolution": int(resolution),
        "phase": phase,
        "seed": int(seed),
        "strategy": parsed.strategy if parsed else None,
        "stage": parsed.stage if parsed else 0,
        "control": parsed.control if parsed else None,
        "text": text,
        "imported": parsed is None and bool(settings.get("import_checkpoint")),
    }
