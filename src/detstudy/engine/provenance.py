"""What produced a number: the run's resolved configuration, the code's git commit, the library
versions, the CPU kernels, the device and the checksums of each dataset split, recorded in every
metrics JSON. ``device`` holds everything that describes the machine rather than the run (its
CPU, the kernel paths in use there); with portable kernels the rest is the same on every machine."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from detstudy.engine.io import read_json
from detstudy.engine.kernels import KERNEL_VARIABLES, cpu_flags, cpu_model, pinned

PACKAGES = ("detstudy", "torch", "torchvision", "transformers", "snakemake", "pycocotools", "numpy")
CODE_ROOT = Path(__file__).resolve().parents[3]  # the checkout: src/detstudy/engine/ -> repository root


def git_state(root: Path = CODE_ROOT) -> dict[str, Any] | None:
    """Commit and dirty flag of the workflow's checkout; None outside a git checkout or without git."""
    def git(*args: str) -> str:  # an argument list, never a shell string
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def kernel_record() -> dict[str, Any]:
    """The CPU kernels and thread count a run computes with (both change its last bits), as its
    provenance and resume fingerprint record them: the same on every machine the pin covers."""
    return {**pinned(), "threads": torch.get_num_threads()}


def machine_kernels() -> dict[str, Any]:
    """The machine side of the kernels: the CPU, the paths in use on it, the variables that steer them."""
    flags = cpu_flags() or set()
    return {"cpu": cpu_model(), "machine": platform.machine(),
            "flags": sorted(flag for flag in flags if flag in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")),
            "aten_capability": torch.backends.cpu.get_cpu_capability(), "onednn": torch.backends.mkldnn.enabled,
            "environment": {name: os.environ[name] for name in KERNEL_VARIABLES if name in os.environ}}


def device_info(device: torch.device) -> dict[str, Any]:
    """The machine fields: the device, and the CPU side every job has (a GPU job's data pipeline)."""
    info: dict[str, Any] = {"type": device.type, "threads": torch.get_num_threads()}
    if device.type == "cuda":
        info.update(name=torch.cuda.get_device_name(device), cuda=torch.version.cuda)
    else:
        info["name"] = platform.processor() or platform.machine()
    return {**info, "cpu_kernels": machine_kernels()}


def collect(*, run_config: dict[str, Any], checks: dict[str, str | Path], device: torch.device) -> dict[str, Any]:
    """The provenance block; ``checks`` maps each split to its dataset-check JSON, which holds the
    split's checksums (computed once by the check, not again by every evaluation)."""
    return {"config": run_config, "git": git_state(), "versions": versions(), "kernels": kernel_record(),
            "device": device_info(device),
            "dataset": {name: read_json(path)["checksum"] for name, path in checks.items()}}
