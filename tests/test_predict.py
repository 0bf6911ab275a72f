"""``detstudy predict``: detections on new images from either family's checkpoint, with or
without text fusion; bad input refused before any work, and nothing written half."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from detstudy.tasks.detection.checkpoint import save_checkpoint
from detstudy.cli import main
from detstudy.tasks.detection.data.coco import CategoryMap, SplitPaths
from detstudy.tasks.detection.models import build_detector

CATEGORIES = CategoryMap((3, 7), ("crack", "stain"))  # ids that are not 1..n: they must come back as they are


def _images(folder, sizes=((64, 48), (80, 80))):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    cnn = build_detector("fasterrcnn_resnet18_fpn", 2, 64, {"fpn_channels": 16, "box_head_width": 32,
                                                           "norm": "batchnorm", "box_score_thresh": 0.0})
    save_checkpoint(folder / "cnn.pt", cnn, CATEGORIES)
    vit = build_detector("deimv2_demo", 2, 64, {"num_queries": 20})
    save_checkpoint(folder / "vit.pt", vit, CATEGORIES)
    from detstudy.tasks.detection.multimodal.fusion import attach_text_fusion, text_fusion_of

    text = build_detector("deimv2_demo", 2, 64, {"num_queries": 20})
    attach_text_fusion(text.model, torch.randn(2, 8), 0.07)
    text.settings["text_fusion"] = {"dim": 8, "temperature": 0.07}
    save_checkpoint(folder / "text.pt", text, CATEGORIES)
    from detstudy.tasks.detection.checkpoint import load_checkpoint

    assert text_fusion_of(load_checkpoint(folder / "text.pt")[0].model) is not None  # rebuilt with its fusion
    return folder


@pytest.mark.parametrize("name", ["cnn", "vit", "text"])
def test_every_family_predicts_with_its_own_categories(checkpoints, tmp_path, name):
    images = _images(tmp_path / "images")
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(checkpoints / f"{name}.pt"), "--images", str(images),
                 "--out", str(out), "--score-threshold", "0.0"]) == 0
    listed = json.loads((out / "images.json").read_text())
    assert [i["file_name"] for i in listed["images"]] == ["img0.png", "img1.png"]
    assert [(i["width"], i["height"]) for i in listed["images"]] == [(64, 48), (80, 80)]
    assert listed["categories"] == [{"id": 3, "name": "crack"}, {"id": 7, "name": "stain"}]
    detections = json.loads((out / "detections.json").read_text())
    assert detections and {d["category_id"] for d in detections} <= {3, 7}
    assert {d["image_id"] for d in detections} <= {1, 2}
    for det in detections:
        x, y, w, h = det["bbox"]
        size = listed["images"][det["image_id"] - 1]
        assert 0 <= x and 0 <= y and w >= 0 and h >= 0 and x + w <= size["width"] + 0.01
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert overlays == ["img0.png.jpg", "img1.png.jpg"]
    assert Image.open(out / "overlays" / "img1.png.jpg").size == (80, 80)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # the scratch folder is gone


def _split(folder):
    """An 8-bit RGB picture and a 16-bit greyscale ramp (0..65504, which a plain convert("RGB")
    saturates to white), with a COCO file numbering them as predict does (1, 2... in name order)."""
    _images(folder, sizes=((64, 48),))
    ramp = (np.arange(80 * 80, dtype=np.uint32).reshape(80, 80) * 65504 // (80 * 80 - 1)).astype(np.uint16)
    Image.fromarray(ramp).save(folder / "img1.png")
    assert Image.open(folder / "img1.png").mode == "I;16"
    images = [{"id": i + 1, "file_name": p.name, "width": Image.open(p).width, "height": Image.open(p).height}
              for i, p in enumerate(sorted(folder.glob("*.png")))]
    (folder / "split.json").write_text(json.dumps({"images": images, "annotations": [],
                                                  "categories": CATEGORIES.as_list()}))
    return SplitPaths(folder / "split.json", folder)


@pytest.mark.parametrize("name", ["cnn", "vit"])
def test_predict_sees_and_finds_what_the_evaluation_does_on_the_same_images(checkpoints, tmp_path, monkeypatch, name):
    """The evaluation's inference over the dataset is the reference: predict must feed the model the
    same tensors (a 16-bit image among them) and write the same detections."""
    import detstudy.tasks.detection.predict
    from detstudy.tasks.detection.checkpoint import load_checkpoint
    from detstudy.tasks.detection.data.dataset import CocoDetection
    from detstudy.tasks.detection.evaluation.inference import as_float, predict_dataset

    split = _split(tmp_path / "images")
    fed = []

    def recording(*args, **kwargs):  # the adapter predict loads, its inputs kept
        adapter, categories, extra = load_checkpoint(*args, **kwargs)
        run = adapter.predict
        adapter.predict = lambda images: fed.extend(i.clone() for i in images) or run(images)
        return adapter, categories, extra

    monkeypatch.setattr(detstudy.tasks.detection.predict, "load_checkpoint", recording)
    assert main(["predict", "--checkpoint", str(checkpoints / f"{name}.pt"), "--images", str(split.images),
                 "--out", str(tmp_path / "out"), "--score-threshold", "0.0", "--device", "cpu"]) == 0
    adapter, categories, _ = load_checkpoint(checkpoints / f"{name}.pt")
    dataset = CocoDetection(split, categories=categories)
    assert len(fed) == len(dataset) == 2
    for index, tensor in enumerate(fed):
        assert torch.equal(tensor, as_float(dataset[index][0], torch.device("cpu"))), dataset.image_path(index)
    expected = predict_dataset(adapter, dataset, torch.device("cpu"), batch_size=4)  # predict's default batch
    found = json.loads((tmp_path / "out" / "detections.json").read_text())
    assert expected and {d["image_id"] for d in expected} == {1, 2}
    assert found == expected


def _refused(capsys, *args) -> str:
    assert main(["predict", *args]) == 2
    return capsys.readouterr().err


def test_bad_input_is_refused_before_any_work_and_writes_nothing(checkpoints, tmp_path, capsys):
    images = _images(tmp_path / "images")
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    error = _refused(capsys, "--checkpoint", str(checkpoints / "cnn.pt"), "--images", str(empty), "--out", str(out))
    assert f"{empty}: no images" in error and "Fix:" in error
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    error = _refused(capsys, "--checkpoint", str(checkpoints / "cnn.pt"), "--images", str(images), "--out", str(out))
    assert "broken.jpg: not a readable image" in error and "Fix: remove or replace it" in error
    (images / "broken.jpg").unlink()
    fake = tmp_path / "fake.pt"
    torch.save({"weights": 1}, fake)
    error = _refused(capsys, "--checkpoint", str(fake), "--images", str(images), "--out", str(out))
    assert f"{fake}: not a detstudy checkpoint (format None, not 'detstudy-checkpoint/1')" in error
    assert error.count(str(fake)) == 1 and error.count("Fix:") == 1  # the loader's words, not wrapped again
    torch.save(torch.nn.Linear(2, 2), fake)  # a whole pickled model: refused unread, with the fix
    error = _refused(capsys, "--checkpoint", str(fake), "--images", str(images), "--out", str(out))
    assert "a whole pickled object (torch.nn.modules.linear.Linear)" in error and error.count(str(fake)) == 1
    error = _refused(capsys, "--checkpoint", str(tmp_path / "none.pt"), "--images", str(images), "--out", str(out))
    assert "none.pt: no such file" in error
    error = _refused(capsys, "--checkpoint", str(checkpoints / "cnn.pt"), "--images", str(images), "--out", str(out),
                     "--batch-size", "0")
    assert "--batch-size 0: at least 1" in error
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    error = _refused(capsys, "--checkpoint", str(checkpoints / "cnn.pt"), "--images", str(images), "--out", str(out))
    assert "not empty" in error and "--overwrite" in error
    assert main(["predict", "--checkpoint", str(checkpoints / "cnn.pt"), "--images", str(images), "--out", str(out),
                 "--overwrite"]) == 0
    assert (out / "mine.txt").read_text() == "keep" and (out / "detections.json").exists()


def test_the_command_is_installed():
    done = subprocess.run([sys.executable, "-m", "detstudy.cli", "predict", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--score-threshold" in done.stdout
