"""The training-settings check the Snakefile runs while it parses and each training job runs
again when it builds its settings (``engine.settings.TrainSettings``). A module of its own,
apart from ``study/config.py``: a training job's code inputs are the modules it imports, so
importing the whole config checker would make every task's checks (segmentation's,
classification's, ...) rerun triggers of every training of every task."""

from __future__ import annotations

from typing import Any


def check_training_combination(values: dict[str, Any]) -> None:
    """Training settings that are each valid but not together (the schema checks them one by one)."""
    if values.get("lr_schedule") == "flat_cosine" and "warmup_factor" in values:
        raise ValueError("flat_cosine warms up as the official FlatCosineLRScheduler does, lr x (i / warmup_iters)^2 "
                         "from 0; warmup_factor is for the other schedules. Fix: remove warmup_factor.")
    if values.get("amp_dtype", "float16") not in ("float16", "bfloat16"):
        raise ValueError(f"amp_dtype {values['amp_dtype']!r} is not one of float16, bfloat16")
