"""`compute.device: auto` holds a GPU slot only where a GPU is seen (without torch)."""

from __future__ import annotations

from detstudy.study.devices import cuda_visible, gpu_slots


def machine(tmp_path, gpus: int):
    driver, devices = tmp_path / "driver", tmp_path / "dev"
    driver.mkdir(parents=True)
    devices.mkdir(parents=True)
    for k in range(gpus):
        (driver / f"0000:0{k}:00.0").mkdir()
        (devices / f"nvidia{k}").touch()
    (devices / "nvidiactl").touch()  # present with the driver, GPU or not: not a GPU
    return {"driver": driver, "devices": devices}


def test_auto_takes_a_slot_only_where_a_gpu_is_seen(tmp_path):
    none, one = machine(tmp_path / "cpu", 0), machine(tmp_path / "gpu", 1)
    assert not cuda_visible({}, **none) and cuda_visible({}, **one)
    assert gpu_slots("auto", environ={}, **none) == 0 and gpu_slots("auto", environ={}, **one) == 1
    assert gpu_slots("cpu", environ={}, **one) == 0
    assert gpu_slots("cuda", environ={}, **none) == 1 and gpu_slots("cuda:1", environ={}, **none) == 1


def test_cuda_visible_devices_can_hide_every_gpu(tmp_path):
    one = machine(tmp_path, 1)
    assert not cuda_visible({"CUDA_VISIBLE_DEVICES": ""}, **one)
    assert not cuda_visible({"CUDA_VISIBLE_DEVICES": "-1"}, **one)
    assert cuda_visible({"CUDA_VISIBLE_DEVICES": "0"}, **one)
    devices_only = {"driver": tmp_path / "missing", "devices": one["devices"]}
    assert cuda_visible({}, **devices_only)
