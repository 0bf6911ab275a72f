"""Preparing a multimodal run's detector: text fusion attached (or not) and the run's parameters
unfrozen; the two steps that train them (``train_phase``: from the checkpoint of the run before,
``train_joint``: from the model's initial weights).

The chain itself (strategies, phases, controls, what starts from what) is ``detstudy.study.chain``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from detstudy.tasks.detection.data.coco import CategoryMap
from detstudy.tasks.detection.models.base import DetectorAdapter
from detstudy.study.chain import ALL_STAGES, Phase
from detstudy.tasks.detection.multimodal.embeddings import read_class_embeddings
from detstudy.tasks.detection.multimodal.fusion import FUSION_PREFIX, attach_text_fusion, derangement, text_fusion_of
from detstudy.engine.io import file_digest
from detstudy.tasks.detection.training import train

log = logging.getLogger("detstudy.phases")

# the modules that produce class scores: every decoder layer's class head, the location-quality
# estimators that add to those scores, and the encoder's query-selection head
CLASS_HEADS = ("model.decoder.class_embed.", "model.decoder.lqe_layers.", "model.enc_score_head.")


def is_trainable(name: str, stage: int, backbone_prefix: str) -> bool:
    """Whether a parameter trains at ``stage`` (1 the fusion, 2 + the class heads, 3 + the detector
    except the backbone, 4 everything)."""
    if stage >= ALL_STAGES or name.startswith(FUSION_PREFIX):
        return True
    if stage >= 2 and name.startswith(CLASS_HEADS):
        return True
    return stage >= 3 and not name.startswith(backbone_prefix)


def set_trainable(adapter: DetectorAdapter, stage: int) -> dict[str, int]:
    """``requires_grad`` for exactly the parameters of ``stage`` (constants the architecture
    never trains, such as DEIMv2's ``reg_scale``, stay frozen); returns parameter counts."""
    counts = {"trainable": 0, "frozen": 0}
    for name, parameter in adapter.model.named_parameters():
        parameter.requires_grad_(parameter.requires_grad and is_trainable(name, stage, adapter.backbone_prefix))
        counts["trainable" if parameter.requires_grad else "frozen"] += parameter.numel()
    if not counts["trainable"]:
        raise ValueError(f"stage {stage} (phase1 and fusion_only: the fusion; 2: + class heads; 3: + detector; 4: "
                         "everything) leaves nothing to train in this detector. Fix: run it on a DEIMv2 detector "
                         "with its text fusion attached")
    return counts


@dataclass(frozen=True)
class PhaseSetup:
    """Turns the detector a multimodal run starts from (the checkpoint of the run before it, or a
    freshly built one for the joint runs) into the detector it trains."""

    phase: Phase
    embeddings: str | Path | None = None  # the text_embeddings artefact (the runs that attach the fusion)
    temperature: float = 0.07
    shuffle_seed: int = 0

    def identity(self) -> dict:
        """What this setup brings into a run beyond its settings (the class embeddings' bytes, the
        shuffle): part of the resume fingerprint, so a state saved with other text is not resumed."""

        return {"phase": self.phase.name, "temperature": self.temperature,
                "embeddings": file_digest(self.embeddings) if self.embeddings is not None else None,
                "shuffle_seed": self.shuffle_seed if self.phase.control == "shuffled" else None}

    def __call__(self, adapter: DetectorAdapter, categories: CategoryMap) -> None:
        fused = text_fusion_of(adapter.model) is not None
        if self.phase.uses_text and not fused:
            if self.embeddings is None:
                raise ValueError(f"{self.phase.name} starts from a detector without text fusion and was given no "
                                 "class embeddings")
            embeddings = read_class_embeddings(self.embeddings, list(categories.names))
            order = list(range(len(categories)))
            if self.phase.control == "shuffled":
                order = derangement(len(categories), self.shuffle_seed)
                log.info("shuffled control: class i gets the description of class order[i], order %s", order)
                embeddings = embeddings[order]
            attach_text_fusion(adapter.model, embeddings, self.temperature)
            adapter.settings["text_fusion"] = {"dim": int(embeddings.shape[1]), "temperature": self.temperature,
                                               "description_order": order}  # kept by every later phase
        elif fused != self.phase.uses_text:
            raise ValueError(f"{self.phase.name} cannot start from a detector {'with' if fused else 'without'} "
                             "text fusion")
        counts = set_trainable(adapter, self.phase.stage)
        log.info("%s: %s parameters train, %s are frozen", self.phase.name, f"{counts['trainable']:,}",
                 f"{counts['frozen']:,}")



def train_phase(*, phase: str, start_from, embeddings=None, fusion: dict | None = None, **arguments) -> dict:
    """The train_phase step: the detector of ``phase`` (a phase, the fusion-only run or a control
    of them) prepared from the best checkpoint of the run it starts from (:class:`PhaseSetup`),
    then trained like any run (:func:`detstudy.tasks.detection.training.train`, which takes
    ``arguments``). ``fusion`` holds the temperature and shuffle seed of the runs that attach the
    text fusion."""
    setup = PhaseSetup(Phase.parse(phase), embeddings=embeddings, **(fusion or {}))
    if setup.phase.previous is None:
        raise ValueError(f"{phase} starts from the model's initial weights: train it with train_joint")
    return train(start_from=start_from, prepare=setup, **arguments)


def train_joint(*, phase: str, embeddings=None, fusion: dict | None = None, **arguments) -> dict:
    """The train_joint step: strategy 2 (``joint``, or its control ``joint_notext``), a detector
    built from ``architecture`` and ``model_settings`` like a vanilla run (its pretrained
    backbone loaded), the fusion attached before the first step, everything trained at once;
    ``train_settings`` give the backbone, the detector and the fusion their own learning rates."""
    setup = PhaseSetup(Phase.parse(phase), embeddings=embeddings, **(fusion or {}))
    if setup.phase.previous is not None:
        raise ValueError(f"{phase} starts from {setup.phase.previous}'s checkpoint: train it with train_phase")
    return train(prepare=setup, **arguments)
