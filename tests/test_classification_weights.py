"""Pretrained classifier weights load loudly from a file or a hub id (a ``save_pretrained`` folder
stands in for the cache offline), fill every backbone weight, leave the head, refuse a misfit."""

from __future__ import annotations

import pytest
import torch

from detstudy.tasks.classification.models import build_classifier
from detstudy.tasks.classification.weights import HEAD_PREFIXES


def _backbone_equal(a, b) -> bool:
    head = HEAD_PREFIXES[a.family]
    return all(torch.equal(v, b.network.state_dict()[k]) for k, v in a.network.state_dict().items()
               if not k.startswith(head))


@pytest.mark.parametrize("architecture", ["resnet_demo", "mobilevit_demo", "dinov3_demo"])
def test_weights_from_a_file_and_from_a_hub_folder(tmp_path, architecture):
    torch.manual_seed(1)
    source = build_classifier(architecture, 9)
    torch.save({"model": source.network.state_dict()}, tmp_path / "weights.pth")
    torch.manual_seed(2)
    loaded = build_classifier(architecture, 5, weights=str(tmp_path / "weights.pth"))
    assert _backbone_equal(source, loaded)
    if architecture != "resnet_demo":  # the transformers families also read a hub id (here: a local folder)
        folder = tmp_path / "hub"
        (source.network if architecture == "mobilevit_demo" else source.network.backbone).save_pretrained(folder)
        torch.manual_seed(3)
        assert _backbone_equal(source, build_classifier(architecture, 5, weights=str(folder)))


def test_weights_of_another_model_are_refused(tmp_path):
    torch.save(build_classifier("resnet_demo", 5).network.state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match=r"do not fit mobilevit_demo: \d+ backbone weights missing.*Fix"):
        build_classifier("mobilevit_demo", 5, weights=str(tmp_path / "resnet.pth"))


def test_a_hub_id_not_in_the_cache_says_how_to_get_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="Fix: give a .safetensors/.pth file or a hub id"):
        build_classifier("mobilevit_demo", 5, weights="nobody/no-such-model")
    with pytest.raises(FileNotFoundError, match="torchvision weights name"):
        build_classifier("resnet_demo", 5, weights="NoSuch_Weights.X")
