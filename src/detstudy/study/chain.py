"""The chain of multimodal runs: which phases and controls exist and what each starts from.

Pure Python: the Snakefile builds its DAG from it while parsing (no torch import).

* ``phase1``: only the fusion module trains; ``phase2``: + the classification heads;
  ``phase3``: + the whole detector except the DINOv3 backbone. Each phase starts from the
  best checkpoint of the one before, phase 1 from the vanilla run (``base``).
* ``phaseN_shuffled``: the same chain with deranged class descriptions (every class gets
  another class's text): a gain that survives it is not due to what the text says.
* ``phaseN_notext``: phases 2-3 without fusion, same epochs and learning rates: what more
  fine-tuning alone buys. Phase 1 has no counterpart: without text it has nothing to train
  and leaves the detector untouched, so ``phase2_notext`` starts from ``base``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PHASES = ("phase1", "phase2", "phase3")
CONTROLS = ("notext", "shuffled")  # report order: controls before the phases, plainest first


@dataclass(frozen=True)
class Phase:
    stage: int
    control: str | None = None  # None: the real class descriptions

    @classmethod
    def parse(cls, name: str) -> "Phase":
        match = re.fullmatch(r"phase([123])(?:_(\w+))?", name)
        if not match or (match.group(2) and match.group(2) not in CONTROLS):
            raise ValueError(f"{name!r} is not a phase: use phase1..3, optionally with _{' or _'.join(CONTROLS)}")
        phase = cls(int(match.group(1)), match.group(2))
        if phase.control == "notext" and phase.stage == 1:
            raise ValueError("phase1_notext does not exist: without text, phase 1 has nothing to train")
        return phase

    @property
    def name(self) -> str:
        return f"phase{self.stage}" + (f"_{self.control}" if self.control else "")

    @property
    def base_phase(self) -> str:
        """The phase whose settings (epochs, lr) this run uses."""
        return f"phase{self.stage}"

    @property
    def uses_text(self) -> bool:
        return self.control != "notext"

    @property
    def previous(self) -> str:
        """The run this phase starts from."""
        if self.stage == 1 or (self.control == "notext" and self.stage == 2):
            return "base"
        return Phase(self.stage - 1, self.control).name


def check_phases(phases) -> None:
    """Each configured phase needs the one before it."""
    for earlier, later in zip(PHASES, PHASES[1:]):
        if later in phases and earlier not in phases:
            raise ValueError(f"multimodal.phases has {later} without {earlier}: each phase starts from the previous "
                             f"phase's best checkpoint. Fix: add {earlier}, or remove {later}.")


def chain_names(phases, controls) -> list[str]:
    """Every run of the chain except ``base``, in report order: controls, then the phases."""
    check_phases(phases)
    configured = [p for p in PHASES if p in phases]
    names = [f"{p}_{c}" for c in CONTROLS if c in controls for p in configured
             if not (c == "notext" and p == "phase1")]
    return names + configured


# A phase inherits its model's training recipe, except its learning rates (a phase sets its
# own) and what describes the vanilla run's length: its epoch count and the epochs its
# schedule, stage-2 restart and augmentation windows are counted in.
NOT_INHERITED = ("epochs", "lr", "backbone_lr", "flat_epochs", "no_aug_epochs", "ema_restart")


def phase_training(model_training: dict | None, shared: dict | None, phase: dict | None) -> dict:
    """The training settings of a phase: the model's recipe (EMA, clipping, AMP, optimiser, ...,
    so that vanilla -> phase differences are the phase's, not a lost EMA), then what
    ``multimodal.training`` sets, then the phase's own (epochs, lr)."""
    inherited = {k: v for k, v in (model_training or {}).items() if k not in NOT_INHERITED}
    if isinstance(inherited.get("augmentation"), dict):
        inherited["augmentation"] = {k: v for k, v in inherited["augmentation"].items() if k != "epochs"}
    return {**inherited, **(shared or {}), **(phase or {})}


# How a reader names a run's phase (the report, the figures): it lives with the chain, so the
# figures need not import the report.
