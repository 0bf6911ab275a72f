"""Detector families behind one small interface (``DetectorAdapter``).

Training and evaluation only talk to the adapter, so a new family (DEIMv2, the
multimodal extension) plugs in by adding a builder to ``ARCHITECTURES``.
"""

from __future__ import annotations

from typing import Any, Callable

from detstudy.models.base import DetectorAdapter
from detstudy.models.deimv2_variants import DEIMV2_ARCHITECTURES
from detstudy.models.faster_rcnn import FASTER_RCNN_ARCHITECTURES, build_faster_rcnn
from detstudy.spec import FAMILIES


def build_deimv2(*args, **kwargs) -> DetectorAdapter:
    from detstudy.models.deimv2 import build_deimv2 as build  # transformers is imported for ViT runs only

    return build(*args, **kwargs)


# architecture name -> (family, builder(architecture, num_classes, resolution, **settings)); the
# families are the spec's (detstudy.spec.FAMILIES, read while the Snakefile parses)
ARCHITECTURES: dict[str, tuple[str, Callable[..., DetectorAdapter]]] = {
    **{name: (FAMILIES[name], build_faster_rcnn) for name in FASTER_RCNN_ARCHITECTURES},
    **{name: (FAMILIES[name], build_deimv2) for name in DEIMV2_ARCHITECTURES},
}


def build_detector(architecture: str, num_classes: int, resolution: int, settings: dict[str, Any] | None = None,
                   ) -> DetectorAdapter:
    """Build the adapter for ``architecture`` with ``num_classes`` object classes (no background)."""
    if architecture not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {architecture!r}. Fix: use one of {known}.")
    _, builder = ARCHITECTURES[architecture]
    return builder(architecture, num_classes, resolution, **(settings or {}))


def family_of(architecture: str) -> str:
    return ARCHITECTURES[architecture][0]


__all__ = ["ARCHITECTURES", "DetectorAdapter", "build_detector", "family_of"]
