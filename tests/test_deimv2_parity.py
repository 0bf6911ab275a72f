"""This project's DEIMv2-S/M against the official implementation, without the official code.

The fixture (``tests/fixtures/deimv2_parity.pt``) was written by
``python benchmarks/deimv2_parity.py --official <checkout> --write-fixture``: the official
state-dict layout (keys, shapes, constant buffers), the official parameter count, and a sample
of every official tensor on seeded weights, images and targets. Here the same seeded weights
are written in the official layout, imported through the key mapping and run through this
project's forward and criterion.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from detstudy.tasks.detection.models.deimv2 import build_deimv2
from detstudy.tasks.detection.models.deimv2_criterion import Deimv2Criterion, MatcherSettings
from detstudy.tasks.detection.models.deimv2_keys import load_official_checkpoint, load_official_state, official_to_detstudy
from detstudy.tasks.detection.models.deimv2_parity import max_differences, our_tensors, seeded_inputs, seeded_official_state

FIXTURE = Path(__file__).parent / "fixtures" / "deimv2_parity.pt"
TOLERANCE = 1e-4
MODES = {"eval": (False, 0), "epoch0": (True, 0), "matcher_changed": (True, 10_000)}


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE, weights_only=True)


def official_state(record, seed):
    shapes = record["shapes"]
    constants = {k: v for k, v in record["constants"].items()}
    state = seeded_official_state({k: v for k, v in shapes.items()}, constants, seed)
    for key in ("decoder.anchors", "decoder.valid_mask"):  # evaluation-size buffers the import drops
        state.pop(key, None)
    return state


@pytest.mark.parametrize("variant", ["s", "m"])
def test_outputs_and_every_loss_term_match_the_official_implementation(fixture, variant):
    record = fixture["variants"][variant]
    adapter = build_deimv2(f"deimv2_{variant}", 80, fixture["size"])
    load_official_state(adapter.model, official_state(record, fixture["seed"]), source="fixture")
    criterion = Deimv2Criterion(80, matcher=MatcherSettings(matcher_change_epoch=record["matcher_change_epoch"]))
    images, targets = seeded_inputs(fixture["seed"], fixture["batch"], fixture["size"])
    for mode, (training, epoch) in MODES.items():
        reference = record["reference"][mode]
        ours = our_tensors(adapter.model, images, targets, training=training, seed=fixture["seed"], epoch=epoch,
                           criterion=criterion)
        assert set(ours) == set(reference), f"{mode}: tensor names differ: {set(ours) ^ set(reference)}"
        differences = max_differences(ours, reference, sampled=True)
        over = {name: value for name, value in differences.items() if not value <= TOLERANCE}
        assert not over, f"DEIMv2-{variant.upper()} {mode}: over {TOLERANCE}: {over}"
    losses = [name for name in record["reference"]["epoch0"] if name.startswith("loss.")]
    layers = adapter.model.config.decoder_layers
    # every decoder layer, the pre-head, the encoder and every denoising layer are supervised
    for suffix in [""] + [f"_aux_{i}" for i in range(layers - 1)] + [f"_dn_{i}" for i in range(layers)]:
        assert {f"loss.loss_mal{suffix}", f"loss.loss_bbox{suffix}", f"loss.loss_fgl{suffix}"} <= set(losses)
    assert {"loss.loss_mal_pre", "loss.loss_mal_enc_0", "loss.loss_mal_dn_pre", "loss.loss_ddf_aux_0"} <= set(losses)


@pytest.mark.parametrize("variant", ["s", "m"])
def test_parameter_count_is_the_official_training_graph(fixture, variant):
    adapter = build_deimv2(f"deimv2_{variant}", 80, 320)
    assert adapter.parameter_count()["total"] == fixture["variants"][variant]["parameters"]


def test_every_official_key_has_a_mapping(fixture):
    for variant, record in fixture["variants"].items():
        state = {k: record["constants"].get(k, torch.zeros(v)) for k, v in record["shapes"].items()}
        _, constants, unknown = official_to_detstudy(state)
        assert unknown == [], variant
        assert "model.decoder.up" in constants and "model.decoder.reg_scale" in constants


def write_official_file(path, state, *, training_file=False):
    if training_file:  # best_stg1.pth of the official training: raw weights and their EMA
        raw = {k: torch.zeros_like(v) if v.is_floating_point() else v for k, v in state.items()}
        torch.save({"model": raw, "ema": {"module": state, "updates": 10}, "last_epoch": 3}, path)
    else:
        torch.save({"model": state}, path)


def test_a_training_checkpoint_loads_its_ema_weights(fixture, tmp_path):
    record = fixture["variants"]["s"]
    state = official_state(record, 1)
    write_official_file(tmp_path / "best_stg1.pth", state, training_file=True)
    adapter = build_deimv2("deimv2_s", 80, 320)
    load_official_checkpoint(adapter.model, tmp_path / "best_stg1.pth", 80)
    mapped, _, _ = official_to_detstudy(state)
    own = adapter.model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in mapped.items())


def test_a_coco_checkpoint_for_other_classes_reinitialises_only_the_class_heads(fixture, tmp_path):
    state = official_state(fixture["variants"]["s"], 2)
    write_official_file(tmp_path / "deimv2_dinov3_s_coco.pth", state)
    torch.manual_seed(0)
    adapter = build_deimv2("deimv2_s", 6, 320)
    before = {k: v.clone() for k, v in adapter.model.state_dict().items()}
    info = load_official_checkpoint(adapter.model, tmp_path / "deimv2_dinov3_s_coco.pth", 6)
    assert info["file_classes"] == 80 and info["reinitialised_heads"] > 0
    after = adapter.model.state_dict()
    heads = ("model.enc_score_head.", "model.decoder.class_embed.", "class_embed.", "model.denoising_class_embed.")
    for key, value in after.items():
        if key.startswith(heads):
            assert torch.equal(value, before[key]), key
    mapped, _, _ = official_to_detstudy(state)
    assert torch.equal(after["model.encoder.fpn_blocks.0.conv1.conv.weight"],
                       mapped["model.encoder.fpn_blocks.0.conv1.conv.weight"])


def test_a_fine_tuned_checkpoint_for_other_classes_is_refused(fixture, tmp_path):
    state = official_state(fixture["variants"]["s"], 3)
    for key in list(state):  # a file fine-tuned on 7 classes
        if key.startswith(("decoder.enc_score_head.", "decoder.dec_score_head.")):
            state[key] = state[key][:7]
    state["decoder.denoising_class_embed.weight"] = state["decoder.denoising_class_embed.weight"][:8]
    write_official_file(tmp_path / "best_stg1.pth", state)
    adapter = build_deimv2("deimv2_s", 6, 320)
    with pytest.raises(ValueError, match=r"best_stg1.pth was trained for 7 classes, the dataset has 6"):
        load_official_checkpoint(adapter.model, tmp_path / "best_stg1.pth", 6)


def test_a_file_of_the_other_variant_or_with_strange_keys_is_refused(fixture, tmp_path):
    state_m = official_state(fixture["variants"]["m"], 4)
    write_official_file(tmp_path / "m.pth", state_m)
    adapter = build_deimv2("deimv2_s", 80, 320)
    with pytest.raises(ValueError, match=r"m.pth does not fit this DEIMv2: it holds a ViT of width 256 \(deimv2_m\), the model's is 192 "
                                         r"\(deimv2_s\).*Fix: use a checkpoint of the same variant"):
        load_official_checkpoint(adapter.model, tmp_path / "m.pth", 80)
    state_s = official_state(fixture["variants"]["s"], 4)
    state_s["decoder.extra_head.weight"] = torch.zeros(3)
    del state_s["encoder.pan_blocks.1.cv4.conv.weight"]
    write_official_file(tmp_path / "odd.pth", state_s)
    with pytest.raises(ValueError, match=r"no mapping knows: \['decoder.extra_head.weight'\].*does not hold: "
                                         r"\['model.encoder.pan_blocks.1.conv2.conv.weight'\]"):
        load_official_checkpoint(adapter.model, tmp_path / "odd.pth", 80)
    torch.save({"optimizer": {}}, tmp_path / "empty.pth")
    with pytest.raises(ValueError, match=r"empty.pth holds neither 'ema' nor 'model'"):
        load_official_checkpoint(adapter.model, tmp_path / "empty.pth", 80)


def test_a_file_indexed_by_category_id_keeps_the_rows_of_the_dataset_ids(fixture, tmp_path):
    """The official custom-dataset loader uses category ids as class indices: a dataset with
    ids 1..6 trains 7 heads (row 0 unused)."""
    state = official_state(fixture["variants"]["s"], 6)
    for key in list(state):
        if key.startswith(("decoder.enc_score_head.", "decoder.dec_score_head.")):
            state[key] = state[key][:7].clone()
    state["decoder.denoising_class_embed.weight"] = state["decoder.denoising_class_embed.weight"][:8].clone()
    write_official_file(tmp_path / "best_stg1.pth", state)
    adapter = build_deimv2("deimv2_s", 6, 320)
    load_official_checkpoint(adapter.model, tmp_path / "best_stg1.pth", 6, category_ids=[1, 2, 3, 4, 5, 6])
    own = adapter.model.state_dict()
    assert torch.equal(own["model.enc_score_head.weight"], state["decoder.enc_score_head.weight"][1:7])
    assert torch.equal(own["model.decoder.class_embed.2.bias"], state["decoder.dec_score_head.2.bias"][1:7])
    embed = state["decoder.denoising_class_embed.weight"]
    assert torch.equal(own["model.denoising_class_embed.weight"], torch.cat([embed[1:7], embed[7:8]]))
    with pytest.raises(ValueError, match=r"trained for 7 classes, the dataset has 6 with category ids \[3, 4, 5, 6, 7, 8\]"):
        load_official_checkpoint(adapter.model, tmp_path / "best_stg1.pth", 6, category_ids=[3, 4, 5, 6, 7, 8])
