"""Portable CPU kernels (compute.portable_kernels): what the pin sets, and that pinned runs give
the same bytes when the libraries would otherwise choose other code paths.

One machine cannot be another CPU, but it can make each library believe it runs on one:
ATen, MKL and oneDNN each take a variable that lowers the instruction set they dispatch to.
Under those emulated CPUs an unpinned run computes other bytes (the check is not vacuous) and a
pinned run the same bytes as without them. The exactness-sensitive tests of the suite
(``-m kernel_sensitive``) are run again under the same emulated CPUs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, Workflow, copy_workflow
from detstudy.engine.kernels import PORTABLE_ENVIRONMENT, kernel_settings, pin_kernels, unsupported_reason

# Each library's dispatch moved off this machine's, all three at once: an older CPU (ATen's
# non-vectorised kernels, MKL's SSE4.2 branch, oneDNN's SSE4.1 kernels). The AVX2-only CPU
# emulated until issue 27 is a smaller departure, and under the pin it asks for the pin's own ISA
# (docs/reproducibility.md).
EMULATED_CPUS = {
    "older_cpu": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "DNNL_MAX_CPU_ISA": "SSE41"},
}
SUPPORTED = unsupported_reason() is None
needs_x86_avx2 = pytest.mark.skipif(not SUPPORTED, reason=f"portable kernels not available: {unsupported_reason()}")

PIN_AND_REPORT = """
import json, logging, os, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from detstudy.engine.kernels import kernel_settings, pin_kernels
record = pin_kernels(kernel_settings(sys.argv[1] == "portable"))
import torch
print(json.dumps({"record": record, "aten": torch.backends.cpu.get_cpu_capability(),
                  "onednn": torch.backends.mkldnn.enabled, "env": {k: os.environ.get(k) for k in sys.argv[2:]}}))
"""


def pinned_process(mode: str, extra_env: dict[str, str]) -> tuple[dict, str]:
    names = [*PORTABLE_ENVIRONMENT, *extra_env]
    result = subprocess.run([sys.executable, "-c", PIN_AND_REPORT, mode, *names], capture_output=True, text=True,
                            env={**os.environ, **extra_env}, check=True)
    return json.loads(result.stdout), result.stderr


@needs_x86_avx2
def test_the_pin_overrides_the_environment_before_torch_loads():
    report, log = pinned_process("portable", {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"})
    assert report["record"] == {"portable": True, "applied": True}
    assert report["aten"] == "AVX2"
    assert {k: report["env"][k] for k in PORTABLE_ENVIRONMENT} == PORTABLE_ENVIRONMENT
    assert report["env"]["MKL_ENABLE_INSTRUCTIONS"] == "SSE4_2"  # an instruction limit is left to the machine
    assert "ATEN_CPU_CAPABILITY=default in the environment replaced by avx2" in log


def test_unpinned_runs_keep_the_machines_own_kernels():
    report, _ = pinned_process("native", {"ATEN_CPU_CAPABILITY": "default"})
    assert report["record"] == {"portable": False, "applied": False}
    assert report["aten"] == "DEFAULT" and report["onednn"] is True
    assert report["env"]["MKL_CBWR"] is None


def test_pinning_after_torch_is_loaded_is_refused():
    assert "torch" in sys.modules  # as in any process that imported it first
    with pytest.raises(RuntimeError, match="after torch and numpy had been imported.*Fix: call it at the top"):
        pin_kernels(kernel_settings(True), environ={})


def test_other_cpus_get_a_reason_and_no_pin():
    assert "aarch64" in unsupported_reason("aarch64")
    assert "lacks avx2" in unsupported_reason("x86_64", {"sse4_2", "fma"})
    assert unsupported_reason("x86_64", {"avx2", "fma"}) is None
    run = ("import logging, sys; logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s');"
           "from detstudy.engine.kernels import kernel_settings, pin_kernels; environ = {};"
           "print(pin_kernels(kernel_settings(True), environ=environ, machine='aarch64'), environ)")
    result = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, check=True)
    assert "WARNING compute.portable_kernels: this is a aarch64 CPU" in result.stdout
    assert "{'portable': True, 'applied': False} {}" in result.stdout  # nothing set, and it did not fail


@pytest.mark.workflow
def test_switching_the_pin_reruns_every_job_that_computes(finished_workflow: Workflow):
    config = finished_workflow.config()
    everything = finished_workflow.planned_jobs("--forceall")
    try:
        pinned = config["compute"].get("portable_kernels", False)
        finished_workflow.write_config({**config, "compute": {**config["compute"], "portable_kernels": not pinned}})
        jobs = finished_workflow.planned_jobs()
    finally:
        finished_workflow.write_config(config)
    assert jobs == everything  # the generator's NumPy too, so everything after it


@pytest.mark.slow
@pytest.mark.parametrize("cpu", sorted(EMULATED_CPUS))
def test_the_exactness_sensitive_tests_pass_under_an_emulated_cpu(cpu):
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "kernel_sensitive",
                             str(ROOT / "tests")], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, **EMULATED_CPUS[cpu], "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1] and "failed" not in result.stdout.splitlines()[-1]


# --- pinned runs end to end --------------------------------------------------------------
CELLS = ("frcnn_resnet18/64px/base", "deimv2/64px/base", "deimv2/64px/phase1")


def run_grid(root: Path, portable: bool, extra_env: dict[str, str], cells=CELLS) -> dict[str, object]:
    """A tiny grid (a CNN, the ViT, a text phase) from generated data to metrics; what it computed."""
    workflow = copy_workflow(root)
    config = workflow.config()
    config["grid"]["models"] = ["frcnn_resnet18", "deimv2"]
    config["multimodal"].update(phases={"phase1": {"epochs": 1, "lr": 1e-3}}, controls=[])
    config["compute"]["portable_kernels"] = portable
    workflow.write_config(config)
    targets = [f"results/runs/{cell}/seed0/metrics.json" for cell in cells]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONHASHSEED="0", **extra_env)
    result = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "2"], cwd=root, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    computed: dict[str, object] = {}
    for cell in cells:
        run = root / "results" / "runs" / cell / "seed0"
        metrics = json.loads((run / "metrics.json").read_text())
        computed[f"{cell} machine"] = metrics["provenance"].pop("device")  # the machine fields
        computed[f"{cell} metrics"] = metrics
        computed[f"{cell} detections"] = (run / "detections.json").read_bytes()
        weights = torch.load(run / "best.pt", weights_only=True)["state_dict"]
        computed[f"{cell} weights"] = {key: value.numpy().tobytes() for key, value in weights.items()}
    computed["data"] = (root / "results/data/checks/train.json").read_bytes()
    return computed


def differences(a: dict[str, object], b: dict[str, object]) -> list[str]:
    return [key for key in a if not key.endswith("machine") and a[key] != b[key]]


@needs_x86_avx2
@pytest.mark.workflow
def test_pinned_runs_compute_the_same_bytes_under_emulated_cpus(tmp_path):
    pinned = run_grid(tmp_path / "pinned", True, {})
    machine = pinned[f"{CELLS[1]} machine"]["cpu_kernels"]
    assert machine["aten_capability"] == "AVX2" and machine["environment"]["MKL_CBWR"] == "COMPATIBLE"
    assert pinned[f"{CELLS[1]} metrics"]["provenance"]["kernels"] == {"portable": True, "applied": True, "threads": 1}
    env = EMULATED_CPUS["older_cpu"]
    emulated = run_grid(tmp_path / "older_cpu", True, env)
    assert emulated[f"{CELLS[1]} machine"]["cpu_kernels"]["environment"]["MKL_ENABLE_INSTRUCTIONS"] == \
        env["MKL_ENABLE_INSTRUCTIONS"]  # the emulation reached the jobs
    assert differences(pinned, emulated) == []


@needs_x86_avx2
@pytest.mark.workflow
def test_unpinned_runs_compute_other_bytes_under_an_emulated_cpu(tmp_path):
    """The control: without the pin, the older emulated CPU moves the ViT's numbers."""
    cells = ("deimv2/64px/base",)
    native = run_grid(tmp_path / "native", False, {}, cells)
    emulated = run_grid(tmp_path / "older", False, EMULATED_CPUS["older_cpu"], cells)
    assert native[f"{cells[0]} metrics"]["provenance"]["kernels"]["portable"] is False
    assert f"{cells[0]} weights" in differences(native, emulated)
