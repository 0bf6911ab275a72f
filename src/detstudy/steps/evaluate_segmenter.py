"""The ``evaluate_segmenter`` step: one protocol for every segmentation run (one confusion matrix
over the test split, ``detstudy.tasks.segmentation.evaluation``), with the run's training summary
and provenance in its metrics JSON."""

from __future__ import annotations

from typing import Any

import torch

from detstudy.engine.provenance import collect
from detstudy.engine.runtime import resolve_device
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.evaluation import evaluate


def evaluate_segmenter(*, checkpoint, history, test_split: dict[str, str], run: dict[str, Any], metrics_path,
                       confusions_path, samples_path, inference: str, palette=None, precision: str = "fp32",
                       device: str = "auto", threads: int | None = None, run_config: dict | None = None,
                       checks: dict[str, str] | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    extra = {"provenance": collect(run_config=run_config or {}, checks=checks or {}, device=resolve_device(device))}
    return evaluate(checkpoint=checkpoint, test_split=MaskSplit.of(**test_split), run=run, metrics_path=metrics_path,
                    confusions_path=confusions_path, samples_path=samples_path, history=history, inference=inference,
                    palette=palette, precision=precision, device=device, extra=extra)
