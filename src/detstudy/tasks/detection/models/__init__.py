"""Detector families behind one small interface (``DetectorAdapter``).

Training and evaluation only talk to the adapter, so a new family (DEIMv2, the
multimodal extension) plugs in by adding a builder to ``ARCHITECTURES``.
"""

from __future__ import annotations

from typing import Any, Callable

from detstudy.study.architectures import CNN_ARCHITECTURES, DEIMV2_ARCHITECTURES
from detstudy.tasks.detection.models.base import DetectorAdapter
from detstudy.tasks.detection.models.faster_rcnn import build_faster_rcnn


def build_deimv2(*args, **kwargs) -> DetectorAdapter:
    from detstudy.tasks.detection.models.deimv2 import build_deimv2 as build  # heavy: transformers, for ViT runs only

    return build(*args, **kwargs)


# architecture name -> builder(architecture, num_classes, resolution, **settings); the names and
# their families are the registry's (detstudy.study.architectures, read while the Snakefile parses)
BUILDERS: dict[str, Callable[..., DetectorAdapter]] = {
    **{name: build_faster_rcnn for name in CNN_ARCHITECTURES},
    **{name: build_deimv2 for name in DEIMV2_ARCHITECTURES},
}


def build_detector(architecture: str, num_classes: int, resolution: int, settings: dict[str, Any] | None = None,
                   ) -> DetectorAdapter:
    """Build the adapter for ``architecture`` with ``num_classes`` object classes (no background)."""
    if architecture not in BUILDERS:
        known = ", ".join(sorted(BUILDERS))
        raise ValueError(f"unknown architecture {architecture!r}. Fix: use one of {known}.")
    return BUILDERS[architecture](architecture, num_classes, resolution, **(settings or {}))


__all__ = ["BUILDERS", "DetectorAdapter", "build_detector"]
