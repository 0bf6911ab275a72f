"""Classification data: the demo's crops in ImageFolder layout (torchvision reads them alike),
the CSV layout, and every problem of a split named with its file and fix (leakage included)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from detstudy.tasks.classification.data.checks import check_split
from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.classification.data.synthetic import class_names, generate_classification_dataset
from detstudy.tasks.dataset_errors import DatasetError, DatasetWarning


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("crops")
    return generate_classification_dataset(root, seed=0, split_sizes={"train": 60, "val": 24, "test": 24},
                                           image_size=96, crop_size=32)


def test_the_demo_is_an_image_folder_of_the_six_classes(demo, tmp_path):
    reference = ImageFolder(demo["train"])
    assert reference.classes == class_names() and len(reference) == 60
    split = ImageSplit.of(demo["train"])
    assert [(str(p), reference.classes.index(c)) for p, c in split.samples()] == [(p, y) for p, y in reference.samples]
    again = generate_classification_dataset(tmp_path, seed=0, split_sizes={"train": 60, "val": 24, "test": 24},
                                            image_size=96, crop_size=32)
    first = sorted(p.read_bytes() for p in ImageSplit.of(demo["test"]).source.rglob("*.png"))
    assert first == sorted(p.read_bytes() for p in ImageSplit.of(again["test"]).source.rglob("*.png"))
    counts = check_split(split, "train").images_per_class
    assert list(counts.values()) == [10] * 6  # balanced
    val = check_split(ImageSplit.of(demo["val"]), "val").images_per_class
    assert list(val.values()) == [4] * 6
    with pytest.raises(ValueError, match="fewer than the 6 classes"):
        generate_classification_dataset(tmp_path / "few", split_sizes={"train": 5}, image_size=96, crop_size=32)


def test_a_csv_split_lists_the_same_images(demo, tmp_path):
    rows = ["path,label"] + [f"{p},{c}" for p, c in ImageSplit.of(demo["val"]).samples()]
    (tmp_path / "val.csv").write_text("\n".join(rows) + "\n")
    assert ImageSplit.of(tmp_path / "val.csv").samples() == ImageSplit.of(demo["val"]).samples()


def _copy(demo, tmp_path):
    shutil.copytree(demo["train"], tmp_path / "train")
    shutil.copytree(demo["test"], tmp_path / "test")
    return ImageSplit.of(tmp_path / "train"), ImageSplit.of(tmp_path / "test")


def test_every_problem_is_named_with_its_file_and_fix(demo, tmp_path):
    train, test = _copy(demo, tmp_path)
    reference = check_split(train, "train")
    leaked = next((train.source / "PERFORACIONES").iterdir())
    shutil.copy(leaked, test.source / "PERFORACIONES" / "renamed.png")
    (test.source / "NORMAL" / "broken.png").write_bytes(b"not an image")
    # a truncated JPEG: Pillow's verify() passes it, decoding does not
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(test.source / "NORMAL" / "cut.jpg", quality=95)
    (test.source / "NORMAL" / "cut.jpg").write_bytes((test.source / "NORMAL" / "cut.jpg").read_bytes()[:2000])
    shutil.rmtree(test.source / "CONTAMINACION")
    (test.source / "EXTRA").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(test.source / "EXTRA" / "x.png")
    with pytest.raises(DatasetError) as error:
        check_split(test, "test", reference)
    message = str(error.value)
    for expected in ("[leakage]", "renamed.png", str(leaked.name), "[unreadable]", "broken.png", "cut.jpg",
                     "[class missing]", "'CONTAMINACION'", "[unknown class]", "'EXTRA'"):
        assert expected in message, expected
    assert message.count("Fix:") >= 4


def test_an_empty_class_folder_and_a_missing_split(demo, tmp_path):
    train, _ = _copy(demo, tmp_path)
    for path in (train.source / "NORMAL").iterdir():
        path.unlink()
    with pytest.raises(DatasetError, match=r"\[empty class\].*'NORMAL'"):
        check_split(train, "train")
    with pytest.raises(DatasetError, match="does not exist"):
        check_split(ImageSplit.of(tmp_path / "nowhere"), "val")


def test_duplicates_within_a_split_are_a_warning(demo, tmp_path):
    train, _ = _copy(demo, tmp_path)
    first = next((train.source / "NORMAL").iterdir())
    shutil.copy(first, train.source / "NORMAL" / "copy.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counts = check_split(train, "train")
    assert any(issubclass(w.category, DatasetWarning) for w in caught) and len(counts.duplicates) == 1


def test_a_test_image_that_is_also_in_val_is_leakage(demo, tmp_path):
    """The model is selected on val: a test image also in val is scored by a model chosen on it.
    The test check hashes val's images itself (the two checks run side by side)."""
    from detstudy.steps.check_image_split import check_image_split

    for split in ("train", "val", "test"):
        shutil.copytree(demo[split], tmp_path / split)
    checks = {split: tmp_path / f"check_{split}.json" for split in ("train", "val", "test")}
    check_image_split("train", str(tmp_path / "train"), check_json=checks["train"])
    check_image_split("test", str(tmp_path / "test"), check_json=checks["test"], train_check=checks["train"],
                      val_source=str(tmp_path / "val"))  # apart: passes
    checks["test"].unlink()
    copied = next((tmp_path / "val" / "NORMAL").iterdir())
    shutil.copy(copied, tmp_path / "test" / "NORMAL" / "from_val.png")
    with pytest.raises(DatasetError, match=rf"(?s)from_val\.png: the same image as the val split's .*{copied.name}.*"
                                           r"Fix: keep each image in one split only \(remove it from test or from val\)"):
        check_image_split("test", str(tmp_path / "test"), check_json=checks["test"], train_check=checks["train"],
                          val_source=str(tmp_path / "val"))
    assert not checks["test"].exists()
