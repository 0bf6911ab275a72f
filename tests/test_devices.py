"""`compute.device: auto` resolves on the machine Snakemake plans on (without torch): CUDA and a
GPU slot only where a GPU device node is seen."""

from __future__ import annotations

from detstudy.study.devices import cuda_visible, gpu_slots, resolved_device


def machine(tmp_path, gpus: int):
    devices = tmp_path / "dev"
    devices.mkdir(parents=True)
    for k in range(gpus):
        (devices / f"nvidia{k}").touch()
    (devices / "nvidiactl").touch()  # present with the driver, GPU or not: not a GPU
    return {"devices": devices}


def test_auto_resolves_to_cuda_and_takes_a_slot_only_where_a_gpu_is_seen(tmp_path):
    none, one = machine(tmp_path / "cpu", 0), machine(tmp_path / "gpu", 1)
    assert not cuda_visible({}, **none) and cuda_visible({}, **one)
    assert resolved_device("auto", environ={}, **none) == "cpu" and resolved_device("auto", environ={}, **one) == "cuda"
    assert resolved_device("cuda:1", environ={}, **none) == "cuda:1" and resolved_device("cpu", environ={}, **one) == "cpu"
    assert gpu_slots("auto", environ={}, **none) == 0 and gpu_slots("auto", environ={}, **one) == 1
    assert gpu_slots("cpu", environ={}, **one) == 0
    assert gpu_slots("cuda", environ={}, **none) == 1 and gpu_slots("cuda:1", environ={}, **none) == 1


def test_cuda_visible_devices_can_hide_every_gpu(tmp_path):
    one = machine(tmp_path, 1)
    assert not cuda_visible({"CUDA_VISIBLE_DEVICES": ""}, **one)
    assert not cuda_visible({"CUDA_VISIBLE_DEVICES": "-1"}, **one)
    assert cuda_visible({"CUDA_VISIBLE_DEVICES": "0"}, **one)


def test_a_cpu_only_torch_makes_auto_the_cpu_even_beside_a_gpu(tmp_path):
    """A GPU node with a CPU-only torch build: the jobs could not use it, so auto takes no slot."""
    from detstudy.study.devices import torch_built_with_cuda

    one = machine(tmp_path, 1)
    builds = {}
    for name, line in (("cpu", "cuda: Optional[str] = None"), ("cuda", "cuda: Optional[str] = '12.8'"),
                       ("old", "cuda = '11.8'")):
        builds[name] = tmp_path / name / "torch"
        builds[name].mkdir(parents=True)
        (builds[name] / "version.py").write_text(f"__version__ = '2.14.1'\n{line}\ngit_version = 'x'\n")
    assert torch_built_with_cuda(builds["cpu"]) is False
    assert torch_built_with_cuda(builds["cuda"]) is True and torch_built_with_cuda(builds["old"]) is True
    assert torch_built_with_cuda(tmp_path / "nowhere") is None
    assert not cuda_visible({}, torch_dir=builds["cpu"], **one)
    assert cuda_visible({}, torch_dir=builds["cuda"], **one)
    assert cuda_visible({}, torch_dir=tmp_path / "nowhere", **one)  # no torch here: the node decides
    assert gpu_slots("auto", environ={}, torch_dir=builds["cpu"], **one) == 0
    assert torch_built_with_cuda() is not None  # this environment's own torch is found
