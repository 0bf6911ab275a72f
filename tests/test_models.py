"""CNN baselines: builders, pretrained weights from a local file, checkpoints, label mapping."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from PIL import Image

from detstudy.tasks.detection.checkpoint import load_checkpoint, save_checkpoint
from detstudy.tasks.detection.data.coco import CategoryMap, SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.tasks.detection.evaluation.inference import predict_dataset
from detstudy.tasks.detection.evaluation.metrics import coco_evaluate
from detstudy.tasks.detection.models import build_detector
from detstudy.tasks.detection.models.base import DetectorAdapter

SMALL = {"fpn_channels": 16, "box_head_width": 32, "norm": "batchnorm", "trainable_backbone_layers": 5}


@pytest.mark.parametrize("architecture", ["fasterrcnn_resnet18_fpn", "fasterrcnn_efficientnet_b0_fpn"])
def test_builds_trains_and_predicts(architecture):
    torch.manual_seed(0)
    adapter = build_detector(architecture, 6, 64, SMALL)
    assert adapter.family == "cnn"
    # the box predictor scores the dataset's classes plus torchvision's background
    assert adapter.model.roi_heads.box_predictor.cls_score.out_features == 7
    adapter.model.train()
    losses = adapter.losses([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[4.0, 4, 30, 20]]),
                                                        "labels": torch.tensor([5])}])
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} == set(losses)
    sum(losses.values()).backward()
    adapter.model.eval()
    (prediction,) = adapter.predict([torch.rand(3, 64, 48)])
    assert set(prediction) == {"boxes", "scores", "labels"}
    assert (prediction["labels"] >= 0).all() and (prediction["labels"] < 6).all()


def test_study_backbone_sizes_with_torchvision_defaults():
    """The study's backbones: ResNet-18 ~11M, EfficientNet-B0 ~4M parameters (without classifier)."""
    for architecture, low, high in [("fasterrcnn_resnet18_fpn", 11.0e6, 11.4e6),
                                    ("fasterrcnn_efficientnet_b0_fpn", 3.5e6, 4.2e6)]:
        adapter = build_detector(architecture, 6, 640)
        body = adapter.model.backbone.body
        count = sum(p.numel() for p in body.parameters())
        assert low < count < high, (architecture, count)


def test_backbone_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    classifier = torchvision.models.resnet18()
    path = tmp_path / "resnet18_imagenet.pth"
    torch.save(classifier.state_dict(), path)
    adapter = build_detector("fasterrcnn_resnet18_fpn", 3, 64, {"backbone_weights": str(path)})
    body = adapter.model.backbone.body
    assert torch.equal(body.conv1.weight, classifier.conv1.weight)
    assert torch.equal(body.layer4[1].conv2.weight, classifier.layer4[1].conv2.weight)
    # torchvision's default: the stem and layer1 stay frozen with pretrained weights
    assert not body.conv1.weight.requires_grad and body.layer4[0].conv1.weight.requires_grad


def test_efficientnet_weights_from_a_local_file(tmp_path):
    classifier = torchvision.models.efficientnet_b0()
    path = tmp_path / "effb0.pth"
    torch.save(classifier.state_dict(), path)
    adapter = build_detector("fasterrcnn_efficientnet_b0_fpn", 3, 64, {"backbone_weights": str(path)})
    assert torch.equal(adapter.model.backbone.body["7"][0].block[0][0].weight,
                       classifier.features[7][0].block[0][0].weight)


def test_bad_backbone_weights_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_detector("fasterrcnn_resnet18_fpn", 3, 64, {"backbone_weights": str(tmp_path / "missing.pth")})
    # weights of another network: refused before anything is downloaded
    with pytest.raises(ValueError, match="ResNet18_Weights.IMAGENET1K_V1"):
        build_detector("fasterrcnn_resnet18_fpn", 3, 64, {"backbone_weights": "EfficientNet_B0_Weights.IMAGENET1K_V1"})
    wrong = tmp_path / "wrong.pth"
    torch.save(torchvision.models.resnet34().state_dict(), wrong)
    with pytest.raises(ValueError, match="do not fit resnet18"):
        build_detector("fasterrcnn_resnet18_fpn", 3, 64, {"backbone_weights": str(wrong)})


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ValueError, match="fasterrcnn_resnet18_fpn"):
        build_detector("fasterrcnn_vgg16", 3, 64)


@pytest.mark.kernel_sensitive
def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    adapter = build_detector("fasterrcnn_efficientnet_b0_fpn", 2, 64, SMALL)
    categories = CategoryMap((3, 7), ("hole", "crack"))
    save_checkpoint(tmp_path / "best.pt", adapter, categories, extra={"epoch": 4})
    loaded, loaded_categories, extra = load_checkpoint(tmp_path / "best.pt")
    assert loaded_categories == categories and extra == {"epoch": 4}
    image = [torch.rand(3, 64, 64)]
    adapter.model.eval()
    a, b = adapter.predict(image)[0], loaded.predict(image)[0]
    assert torch.allclose(a["scores"], b["scores"]) and torch.allclose(a["boxes"], b["boxes"])


class Oracle(DetectorAdapter):
    """Predicts the ground truth: checks the label and box conventions end to end."""

    def __init__(self, dataset):
        self.dataset = dataset
        self.model = torch.nn.Identity()

    def predict(self, images):
        outputs = []
        for image in images:
            index = next(i for i in range(len(self.dataset)) if torch.equal(
                self.dataset[i][0].float() / 255, image))
            target = self.dataset[index][1]
            outputs.append({"boxes": target["boxes"].as_subclass(torch.Tensor),
                            "scores": torch.ones(len(target["labels"])), "labels": target["labels"]})
        return outputs


@pytest.mark.parametrize("category_ids", [(1, 2), (3, 12)], ids=["1-based", "non-contiguous"])
def test_category_ids_map_to_labels_and_back(tmp_path, category_ids):
    images, annotations = [], []
    for index in range(2):
        Image.new("RGB", (40, 30), (index * 90, 40, 40)).save(tmp_path / f"{index}.png")
        images.append({"id": 10 + index, "file_name": f"{index}.png", "width": 40, "height": 30})
        annotations.append({"id": index + 1, "image_id": 10 + index, "category_id": category_ids[index],
                            "bbox": [5, 4, 20, 10], "area": 200, "iscrowd": 0})
    coco = {"images": images, "annotations": annotations,
            "categories": [{"id": i, "name": f"c{i}"} for i in category_ids]}
    (tmp_path / "split.json").write_text(json.dumps(coco))
    dataset = CocoDetection(SplitPaths(tmp_path / "split.json", tmp_path))
    assert [dataset[i][1]["labels"].tolist() for i in range(2)] == [[0], [1]]
    torch.manual_seed(3)
    expected_draw = torch.rand(1)
    torch.manual_seed(3)
    detections = predict_dataset(Oracle(dataset), dataset, torch.device("cpu"), batch_size=2)
    # validating during training must not shift the training's random stream
    assert torch.equal(torch.rand(1), expected_draw)
    assert sorted(d["category_id"] for d in detections) == list(category_ids)
    assert detections[0]["bbox"] == [5.0, 4.0, 20.0, 10.0]
    assert coco_evaluate(coco, detections)["coco"]["AP"] == pytest.approx(1.0)


def test_both_families_return_boxes_in_original_pixels_of_a_non_square_image(monkeypatch):
    """A box well inside a 50 x 70 (h x w) image, as each model's head would put it in its own
    input space, comes back at the same place in the image's pixels: the scale of each axis,
    not the clamping to the border."""
    expected = torch.tensor([[28.0, 15.0, 42.0, 35.0]])  # x1 y1 x2 y2 in the 70 x 50 image
    image = torch.rand(3, 50, 70)

    cnn = build_detector("fasterrcnn_resnet18_fpn", 3, 140, SMALL)  # longer side to 140: x2 on both axes
    cnn.model.eval()
    monkeypatch.setattr(cnn.model.roi_heads, "forward", lambda features, proposals, sizes, targets=None: (
        [{"boxes": expected * 2, "scores": torch.tensor([0.9]), "labels": torch.tensor([2])}], {}))
    (prediction,) = cnn.predict([image])
    assert torch.allclose(prediction["boxes"], expected) and prediction["labels"].tolist() == [1]

    import detstudy.tasks.detection.models.deimv2 as deimv2

    vit = build_detector("deimv2_demo", 3, 128)  # a square input of 128 px: normalised boxes
    vit.model.eval()
    logits = torch.full((1, 100, 3), -10.0)
    logits[0, 7, 2] = 5.0
    boxes = torch.zeros(1, 100, 4)
    boxes[0, 7] = torch.tensor([0.5, 0.5, 0.2, 0.4])  # cx cy w h of the same box, relative
    monkeypatch.setattr(deimv2, "deimv2_forward", lambda model, pixels, targets=None: {
        "pred_logits": logits, "pred_boxes": boxes})
    (prediction,) = vit.predict([image])
    assert torch.allclose(prediction["boxes"][0], expected[0]) and prediction["labels"][0] == 2
