"""Whether a job should hold a GPU slot, known without torch (the Snakefile asks while it parses).

``compute.device: auto`` trains on CUDA where there is a GPU and on the CPU elsewhere; its jobs
take a unit of the ``gpu`` resource only on a machine that shows an NVIDIA GPU, so that on a
CPU-only machine ``--resources gpu=1`` does not run the trainings one at a time. The machine
asked is the one Snakemake plans on: on a cluster whose submit host has no GPU, set
``compute.device: cuda`` (the study configs do).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping


def cuda_visible(environ: Mapping[str, str] = os.environ, driver: Path = Path("/proc/driver/nvidia/gpus"),
                 devices: Path = Path("/dev")) -> bool:
    """Whether this machine shows an NVIDIA GPU to its processes: the driver lists one (or its
    device files exist), unless ``CUDA_VISIBLE_DEVICES`` hides every GPU."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    try:
        listed = driver.is_dir() and any(driver.iterdir())
    except OSError:
        listed = False
    return listed or any(devices.glob("nvidia[0-9]*"))


def gpu_slots(device: str, **where) -> int:
    """The ``gpu`` resource units a training or evaluation job on ``device`` takes: none on the
    CPU, one on CUDA, and for ``auto`` one where :func:`cuda_visible` (``where``: its arguments)."""
    if device == "cpu":
        return 0
    if device == "auto":
        return int(cuda_visible(**where))
    return 1
