"""The chain of multimodal runs: the study's three strategies, their controls, and what each
run starts from.

Pure Python: the Snakefile builds its DAG from it while parsing (no torch import).

The thesis plan weighs three ways to add the text fusion to a trained DEIMv2 (``STRATEGIES``):

1. ``fusion_only``: from the vanilla run's best checkpoint, only the fusion module trains, for
   a run of its own length. Control ``fusion_only_shuffled`` (deranged descriptions).
2. ``joint``: a whole training from the model's initial weights (the pretrained backbone), the
   fusion attached from the first step, everything training at once with per-group learning
   rates (backbone, detector, fusion). Control ``joint_notext``: the same training without
   fusion (the model's recipe at the joint run's length and rates).
3. ``progressive``: ``phase1`` (the fusion) -> ``phase2`` (+ the class heads) -> ``phase3``
   (+ the whole detector except the DINOv3 backbone), each from the best checkpoint of the one
   before, phase 1 from the vanilla run (``base``). Controls ``phaseN_shuffled`` (the same chain
   with deranged descriptions: every class gets another class's text, so a gain that survives
   it is not due to what the text says) and ``phaseN_notext`` (phases 2-3 without fusion, same
   epochs and learning rates: what more fine-tuning alone buys; phase 1 has no counterpart, as
   without text it has nothing to train, so ``phase2_notext`` starts from ``base``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from detstudy.study.epochs import DEFAULT_EPOCHS, EpochWindows

PHASES = ("phase1", "phase2", "phase3")
CONTROLS = ("notext", "shuffled")  # report order: controls before the phases, plainest first
#: The plan's strategies in its order (1, 2, 3) -> their text runs.
STRATEGIES = {"fusion_only": ("fusion_only",), "joint": ("joint",), "progressive": PHASES}
#: The controls each kind of run has (phase 1: no no-text run, it would train nothing).
_RUN_CONTROLS = {"phase1": ("shuffled",), "phase2": CONTROLS, "phase3": CONTROLS, "fusion_only": ("shuffled",),
                 "joint": ("notext",)}
#: How far each text run unfreezes: 1 the fusion only, 2 + the class heads, 3 + the detector
#: except the backbone, 4 everything (the ``stage`` of a run's metrics).
_STAGES = {"phase1": 1, "phase2": 2, "phase3": 3, "fusion_only": 1, "joint": 4}
ALL_STAGES = 4


@dataclass(frozen=True)
class Phase:
    """One run of the chain: a text run (``treatment``) or one of its controls."""

    treatment: str  # phase1..3, fusion_only or joint
    control: str | None = None  # None: the real class descriptions

    @classmethod
    def parse(cls, name: str) -> "Phase":
        runs = "|".join(_RUN_CONTROLS)
        match = re.fullmatch(rf"({runs})(?:_(\w+))?", name)
        if not match or (match.group(2) and match.group(2) not in CONTROLS):
            raise ValueError(f"{name!r} is not a multimodal run: use {', '.join(_RUN_CONTROLS)}, optionally with "
                             f"_{' or _'.join(CONTROLS)}")
        phase = cls(match.group(1), match.group(2))
        if phase.control and phase.control not in _RUN_CONTROLS[phase.treatment]:
            raise ValueError(f"{name} does not exist: {phase.treatment} has the controls "
                             f"{list(_RUN_CONTROLS[phase.treatment])}"
                             + (" (without text, phase 1 has nothing to train)" if phase.treatment == "phase1" else ""))
        return phase

    @property
    def name(self) -> str:
        return self.treatment + (f"_{self.control}" if self.control else "")

    @property
    def strategy(self) -> str:
        return next(name for name, runs in STRATEGIES.items() if self.treatment in runs)

    @property
    def stage(self) -> int:
        """How far this run unfreezes the detector (1 fusion only ... 4 everything)."""
        return _STAGES[self.treatment]

    @property
    def uses_text(self) -> bool:
        return self.control != "notext"

    @property
    def previous(self) -> str | None:
        """The run this one starts from (its best checkpoint); ``None``: the model's initial
        weights, built from its config like a vanilla training (strategy 2)."""
        if self.treatment == "joint":
            return None
        if self.treatment == "fusion_only" or self.treatment == "phase1" or (
                self.control == "notext" and self.treatment == "phase2"):
            return "base"
        return Phase(f"phase{int(self.treatment[-1]) - 1}", self.control).name

    @property
    def attaches_fusion(self) -> bool:
        """Whether this run attaches the text fusion (later phases inherit it from their start)."""
        return self.uses_text and self.previous in ("base", None)


def check_phases(phases) -> None:
    """Each configured phase needs the one before it."""
    for earlier, later in zip(PHASES, PHASES[1:]):
        if later in phases and earlier not in phases:
            raise ValueError(f"multimodal.phases has {later} without {earlier}: each phase starts from the previous "
                             f"phase's best checkpoint. Fix: add {earlier}, or remove {later}.")


def configured_strategies(multimodal: dict | None) -> list[str]:
    """The strategies a ``multimodal`` config block runs, in the plan's order."""
    if not multimodal:
        return []
    # given, even empty (``fusion_only: {}`` trains with multimodal.training alone); the
    # progressive strategy needs at least one phase
    return [name for name, present in (("fusion_only", multimodal.get("fusion_only") is not None),
                                       ("joint", multimodal.get("joint") is not None),
                                       ("progressive", bool(multimodal.get("phases")))) if present]


def chain_names(multimodal: dict | None) -> list[str]:
    """Every run of the chain except ``base``, in report order: strategy by strategy (the
    plan's order), each strategy's controls before its text runs."""
    if not multimodal:
        return []
    phases, controls = multimodal.get("phases") or {}, multimodal.get("controls", [])
    check_phases(phases)
    names = []
    for strategy in configured_strategies(multimodal):
        runs = [p for p in PHASES if p in phases] if strategy == "progressive" else list(STRATEGIES[strategy])
        names += [f"{run}_{c}" for c in CONTROLS if c in controls for run in runs if c in _RUN_CONTROLS[run]]
        names += runs
    return names


def strategy_members(strategy: str, names) -> list[str]:
    """The text runs a strategy trains (whose training cost is the strategy's), among ``names``,
    in training order."""
    runs = [Phase.parse(n) for n in names]
    return [run.name for run in sorted(runs, key=lambda run: run.stage)
            if run.control is None and run.strategy == strategy]


def strategy_runs(names) -> dict[str, str]:
    """strategy -> the text run that ends it (its result), among the chain's ``names``:
    ``fusion_only``, ``joint``, the last phase of the progressive chain; in the plan's order."""
    found = {strategy: strategy_members(strategy, names) for strategy in STRATEGIES}
    return {strategy: members[-1] for strategy, members in found.items() if members}


# --- each run's settings ----------------------------------------------------------------------

# A phase inherits its model's training recipe, except its learning rates (a phase sets its
# own) and what describes the vanilla run's length: its epoch count and the epochs its
# schedule, stage-2 restart and augmentation windows are counted in.
NOT_INHERITED = ("epochs", "lr", "backbone_lr", "fusion_lr", "flat_epochs", "no_aug_epochs", "ema_restart")


def phase_training(model_training: dict | None, shared: dict | None, phase: dict | None) -> dict:
    """The training settings of a fine-tuning run (a phase, the fusion-only run): the model's
    recipe (EMA, clipping, AMP, optimiser, ..., so that vanilla -> phase differences are the
    phase's, not a lost EMA), then what ``multimodal.training`` sets, then the run's own (epochs, lr)."""
    inherited = {k: v for k, v in (model_training or {}).items() if k not in NOT_INHERITED}
    if isinstance(inherited.get("augmentation"), dict):
        inherited["augmentation"] = {k: v for k, v in inherited["augmentation"].items() if k != "epochs"}
    return {**inherited, **(shared or {}), **(phase or {})}


#: The epochs a recipe counts its stages in: a joint run of another length stretches them with it.
TRAINING_EPOCH_MARKS = ("flat_epochs", "no_aug_epochs")
MODEL_EPOCH_MARKS = ("matcher_change_epoch", "multiscale_stop_epoch")


def joint_settings(model: dict, joint: dict) -> tuple[dict, dict]:
    """(model settings, training settings) of strategy 2: the model's whole recipe (vanilla
    training: its schedule, EMA, stage-2 restart, augmentation) at the joint run's length, then
    ``multimodal.joint``'s own keys (``training``: epochs and the per-group learning rates
    ``lr``, ``backbone_lr``, ``fusion_lr``; ``model``). Every epoch the recipe counts in (the
    augmentation windows, given or derived, ``flat_epochs``, ``no_aug_epochs``, the matcher
    change and the multi-scale stop) is stretched by the ratio of the lengths, unless ``joint``
    gives it."""
    recipe, own = dict(model.get("training") or {}), dict((joint or {}).get("training") or {})
    factor = own.get("epochs", recipe.get("epochs", DEFAULT_EPOCHS)) / recipe.get("epochs", DEFAULT_EPOCHS)

    def stretch(settings: dict, keys) -> dict:
        return {k: round(v * factor) if k in keys and v is not None else v for k, v in settings.items()}

    training = stretch(recipe, TRAINING_EPOCH_MARKS)
    # the recipe's windows, given or derived from its length by the official rule, stretched like
    # the model's marks (re-deriving them at the new length would move them apart)
    augmentation = dict(training.get("augmentation") or {})
    windows = EpochWindows.resolve(recipe.get("epochs", DEFAULT_EPOCHS), augmentation.get("epochs"))
    training["augmentation"] = {**augmentation, "epochs": [round(e * factor) for e in windows.as_tuple()]}
    model_settings = stretch(dict(model.get("model") or {}), MODEL_EPOCH_MARKS)
    merged = {**training, **own}
    if isinstance(own.get("augmentation"), dict) and "epochs" not in own["augmentation"]:
        # an augmentation of its own replaces the recipe's, but its windows stay the stretched ones
        merged["augmentation"] = {**own["augmentation"], "epochs": training["augmentation"]["epochs"]}
    return {**model_settings, **((joint or {}).get("model") or {})}, merged


def chain_training(model: dict, multimodal: dict, name: str) -> dict:
    """The training settings of the chain run ``name`` of ``model`` (its ``models.<name>`` block)."""
    phase = Phase.parse(name)
    if phase.strategy == "joint":
        training = joint_settings(model, multimodal["joint"])[1]
    else:
        own = multimodal["fusion_only"] if phase.strategy == "fusion_only" else multimodal["phases"][phase.treatment]
        training = phase_training(model.get("training"), multimodal.get("training"), own)
    # a no-text control is the same training without fusion: no fusion, no fusion rate (which
    # would change nothing but its parameters, and so rerun it)
    return training if phase.uses_text else {k: v for k, v in training.items() if k != "fusion_lr"}
