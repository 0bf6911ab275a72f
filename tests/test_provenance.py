"""Provenance: the git state, versions, device and dataset checksums recorded with every metrics JSON."""

from __future__ import annotations

import re

import torch

from detstudy.tasks.detection.data.coco import SplitPaths, split_checksum
from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
from detstudy.steps.check_split import check_split
from detstudy.engine.provenance import collect, git_state, versions


def test_git_state_of_a_checkout_and_of_a_plain_folder(tmp_path):
    state = git_state()
    if state is not None:  # CI runs in a checkout; a source tarball has none
        assert re.fullmatch(r"[0-9a-f]{40}", state["commit"]) and isinstance(state["dirty"], bool)
    assert git_state(tmp_path) is None


def test_versions_name_the_libraries_behind_the_numbers():
    found = versions()
    assert found["torch"] == torch.__version__.split("+")[0]
    assert {"python", "torchvision", "transformers", "snakemake", "pycocotools"} <= set(found)


def test_split_checksum_sees_one_changed_image(tmp_path):
    split = SplitPaths.of(**generate_synthetic_dataset(tmp_path, seed=1, split_sizes={"train": 1, "val": 1, "test": 3},
                                             image_size=64)["test"])
    before = split_checksum(split)
    assert before["images"] == 3 and re.fullmatch(r"[0-9a-f]{64}", before["annotations_sha256"])
    image = sorted(split.images.iterdir())[0]
    image.write_bytes(image.read_bytes() + b"\0")
    after = split_checksum(split)
    assert after["images_sha256"] != before["images_sha256"]
    assert after["annotations_sha256"] == before["annotations_sha256"]


def test_collect_records_config_device_and_every_split_checksum(tmp_path):
    paths = generate_synthetic_dataset(tmp_path, seed=1, split_sizes={"train": 1, "val": 1, "test": 1}, image_size=64)
    checks = {}
    for name, split in paths.items():
        checks[name] = tmp_path / "checks" / f"{name}.json"
        check_split(name, split, check_json=checks[name],
                    reference=None if name == "train" else ("train", paths["train"]["annotations"]))
    record = collect(run_config={"model": {"architecture": "x"}}, device=torch.device("cpu"), checks=checks)
    assert record["config"] == {"model": {"architecture": "x"}} and record["device"]["type"] == "cpu"
    assert record["dataset"] == {name: split_checksum(SplitPaths.of(**split)) for name, split in paths.items()}
