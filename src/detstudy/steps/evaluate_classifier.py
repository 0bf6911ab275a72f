"""The ``evaluate_classifier`` step: one protocol for every classification run (every test image's
probabilities, every metric from them: ``detstudy.tasks.classification.evaluation``), with the
run's training summary and provenance in its metrics JSON."""

from __future__ import annotations

from typing import Any

import torch

from detstudy.engine.provenance import collect
from detstudy.engine.runtime import resolve_device
from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.classification.evaluation import evaluate


def evaluate_classifier(*, checkpoint, history, test_split: str, run: dict[str, Any], metrics_path, predictions_path,
                        batch_size: int = 64, precision: str = "fp32", device: str = "auto", threads: int | None = None,
                        run_config: dict | None = None, checks: dict[str, str] | None = None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    extra = {"provenance": collect(run_config=run_config or {}, checks=checks or {}, device=resolve_device(device))}
    return evaluate(checkpoint=checkpoint, test_split=ImageSplit.of(test_split), run=run, metrics_path=metrics_path,
                    predictions_path=predictions_path, history=history, batch_size=batch_size, precision=precision,
                    device=device, extra=extra)
