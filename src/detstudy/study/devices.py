"""Whether a job should hold a GPU slot, known without torch (the Snakefile asks while it parses).

``compute.device: auto`` trains on CUDA where there is a GPU and on the CPU elsewhere; its jobs
take a unit of the ``gpu`` resource only on a machine that shows an NVIDIA GPU, so that on a
CPU-only machine ``--resources gpu=1`` does not run the trainings one at a time. The machine
asked is the one Snakemake plans on: on a cluster whose submit host has no GPU, set
``compute.device: cuda`` (the study configs do).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Mapping


def torch_built_with_cuda(torch_dir: Path | None = None) -> bool | None:
    """Whether the installed torch is a CUDA build, read from its ``version.py`` (``cuda = None``
    in a CPU-only build) without importing it; ``None`` where no torch is found (the Snakefile's
    environment may lack it while the jobs' conda environments have it)."""
    if torch_dir is None:
        spec = importlib.util.find_spec("torch")
        if spec is None or not spec.origin:
            return None
        torch_dir = Path(spec.origin).parent
    try:
        text = (Path(torch_dir) / "version.py").read_text()
    except OSError:
        return None
    found = re.search(r"(?m)^cuda\s*(?::[^=]*)?=\s*(.+)$", text)
    return None if found is None else found.group(1).strip() != "None"


def cuda_visible(environ: Mapping[str, str] = os.environ, devices: Path = Path("/dev"),
                 torch_dir: Path | None = None) -> bool:
    """Whether this machine's processes can open an NVIDIA GPU: a GPU device node
    (``/dev/nvidia<N>``: the driver's GPU list under /proc can be visible in a container given no
    GPU), unless ``CUDA_VISIBLE_DEVICES`` hides every GPU or the installed torch is a CPU-only
    build (its jobs could not use the GPU: ``auto`` means the CPU there)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return any(devices.glob("nvidia[0-9]*")) and torch_built_with_cuda(torch_dir) is not False


def resolved_device(device: str, **where) -> str:
    """The device the jobs run on, as their rules' parameter: ``auto`` becomes ``cuda`` where
    :func:`cuda_visible` (``where``: its arguments), else ``cpu``, so that moving a study between a
    CPU and a GPU machine reruns what the device changes; the others stay as given."""
    if device == "auto":
        return "cuda" if cuda_visible(**where) else "cpu"
    return device


def gpu_slots(device: str, **where) -> int:
    """The ``gpu`` resource units a training or evaluation job on ``device`` takes: none on the
    CPU, one on CUDA (``auto``: as :func:`resolved_device` resolves it)."""
    return 0 if resolved_device(device, **where) == "cpu" else 1
