"""Pinned CPU kernels (``compute.portable_kernels``, off by default): fewer ways for two CPUs to round apart.

torch's CPU libraries pick their code paths from the CPU they run on, and each path rounds
differently: ATen its vectorised kernels (default, AVX2 or AVX-512: the vector width decides
the order of a sum), MKL its matrix-multiply branch (by instruction set, vendor, cache sizes
and alignment), oneDNN its JIT convolutions, NumPy its SIMD loops. One ulp in a step becomes
another model after a few hundred steps. With ``compute.portable_kernels: true`` each job that
computes fixes these choices before torch or NumPy is imported (both read them once):

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's AVX2 kernels on every CPU, AVX-512 ones included.
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional numerical reproducibility on its SSE2 branch, the
  one branch Intel documents as reproducible on Intel and non-Intel CPUs alike (the AVX2
  branch is Intel-only: on an AMD CPU MKL falls back to its own dispatch). CNR also fixes the
  cache sizes MKL blocks for. It needs a fixed thread count: ``MKL_DYNAMIC``/``OMP_DYNAMIC``
  off, and the job sets its threads from the config.
- ``DNNL_MAX_CPU_ISA=AVX2``: oneDNN's AVX2 convolutions on every CPU. oneDNN promises identical
  results on one platform only (its kernels may block by cache size); turning it off instead
  sends convolutions to ATen's im2col + MKL, which was measured 10x slower for EfficientNet's
  depthwise convolutions (ATen has no fast grouped convolution on the CPU), so it stays on.
- ``NPY_DISABLE_CPU_FEATURES``: NumPy's AVX-512 loops off (the demo data and the augmentations).

What it does not fix is oneDNN's blocking by cache size: two AVX2 hosts with other caches can
still train another from-scratch CNN (measured, docs/reproducibility.md). The pin costs speed on
every CPU job, so it is off by default; without it a run repeats byte for byte on its own machine.

On other CPUs (ARM, or x86-64 without AVX2 and FMA) the setting changes nothing: the job logs
a warning, runs with the machine's own kernels, and its provenance says the pin was not
applied. This module imports neither torch nor NumPy: the Snakefile uses it while it parses,
and jobs call :func:`pin_kernels` before anything imports them (it loads torch itself, where
installed, once the environment is set). What a run records of its kernels is in
``detstudy.engine.provenance``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import sys
from typing import Any, MutableMapping

log = logging.getLogger("detstudy.kernels")

PORTABLE_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "COMPATIBLE",
    "MKL_DYNAMIC": "FALSE",
    "OMP_DYNAMIC": "FALSE",
    "DNNL_MAX_CPU_ISA": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
# Every variable that steers a kernel choice, pinned or not: recorded with the machine fields,
# since they describe the environment a run met (a cluster may set some of them).
KERNEL_VARIABLES = (*PORTABLE_ENVIRONMENT, "MKL_ENABLE_INSTRUCTIONS", "NPY_ENABLE_CPU_FEATURES",
                    "OMP_NUM_THREADS", "MKL_NUM_THREADS")
REQUIRED_FLAGS = ("avx2", "fma")  # ATen's AVX2 kernels are compiled with FMA

_applied: dict[str, Any] | None = None  # what pin_kernels did in this process


def kernel_settings(portable: bool, threads: int | None = None) -> dict[str, Any]:
    """The kernels a run asks for, and its intra-op thread count (both change the last bits of
    its sums), as a rule parameter: changing them reruns every job that computes. The count is
    the config's (compute.threads), not the one Snakemake lowers to --cores, so a run computes
    the same whatever the scheduler gave it."""
    return {"portable": bool(portable), "environment": dict(PORTABLE_ENVIRONMENT) if portable else {},
            "threads": threads}


def _cpuinfo(field: str) -> str | None:
    """The first ``field`` line of /proc/cpuinfo (Linux), or None where there is none."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.split(":", 1)[0].strip() == field:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags, or None where they cannot be read."""
    flags = _cpuinfo("flags")
    return set(flags.split()) if flags is not None else None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def unsupported_reason(machine: str | None = None, flags: set[str] | None = None) -> str | None:
    """Why this CPU cannot run the portable kernels, or None when it can."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return (f"this is a {machine} CPU: the setting pins x86-64 kernels and changes nothing here, so results "
                "are reproducible on this machine but not across CPUs")
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return None  # no /proc/cpuinfo (macOS, Windows): every x86-64 Mac or PC of the last decade has AVX2
    missing = [flag for flag in REQUIRED_FLAGS if flag not in flags]
    if missing:
        return f"this x86-64 CPU lacks {'/'.join(missing)}, which the portable kernels need"
    return None


def pin_kernels(settings: dict[str, Any], *, environ: MutableMapping[str, str] = os.environ,
                machine: str | None = None, flags: set[str] | None = None) -> dict[str, Any]:
    """Apply a run's kernel settings to this process; call it before torch or NumPy is imported.

    Returns (and keeps, for the provenance) what was applied. A variable already set to
    another value is replaced, and the log says so: the config decides, not the shell.
    """
    global _applied
    if settings.get("portable"):
        imported = [name for name in ("torch", "numpy") if name in sys.modules]
        if imported:
            raise RuntimeError(
                f"pin_kernels() was called after {' and '.join(imported)} had been imported, which read their kernel "
                "settings once at load. Fix: call it at the top of the script, before any import of torch, NumPy "
                "or detstudy modules that use them.")
        reason = unsupported_reason(machine, flags)
        if reason:
            log.warning("compute.portable_kernels: %s. The run uses this machine's own kernels and its provenance "
                        "records the pin as not applied.", reason)
        else:
            for name, value in settings["environment"].items():
                if environ.get(name, value) != value:
                    log.info("compute.portable_kernels: %s=%s in the environment replaced by %s", name,
                             environ[name], value)
                environ[name] = value
        _applied = {"portable": True, "applied": reason is None}
    else:
        _applied = {"portable": False, "applied": False}
    if _applied["applied"] and importlib.util.find_spec("torch") is not None:  # optional: the data env has none
        torch = importlib.import_module("torch")  # only now: the environment above is what it reads
        capability = torch.backends.cpu.get_cpu_capability()
        if capability != "AVX2":
            raise RuntimeError(f"compute.portable_kernels: ATen runs its {capability} kernels although "
                               "ATEN_CPU_CAPABILITY=avx2 was set: this torch build does not honour it. Fix: "
                               "install the pinned torch from pyproject.toml, or set compute.portable_kernels: false.")
    log.info("CPU kernels: %s", describe())
    return dict(_applied)


def pinned() -> dict[str, Any]:
    """What :func:`pin_kernels` did in this process; not pinned when no job called it (a library caller)."""
    return dict(_applied or {"portable": False, "applied": False})


def describe() -> str:
    record = pinned()
    if not record["portable"]:
        return "this machine's own (compute.portable_kernels: false)"
    if not record["applied"]:
        return "this machine's own (compute.portable_kernels could not be applied here)"
    return "portable (" + ", ".join(f"{k}={v}" for k, v in PORTABLE_ENVIRONMENT.items()) + ")"
