"""The multimodal extension: descriptions, the phase chain, the fusion and the phases' training."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from detstudy.tasks.detection.checkpoint import load_checkpoint, save_checkpoint
from detstudy.tasks.detection.data.coco import CategoryMap, SplitPaths
from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
from detstudy.tasks.detection.models import build_detector
from detstudy.tasks.detection.multimodal.analysis import text_similarity
from detstudy.study.chain import Phase, chain_names, chain_training, joint_settings, strategy_members, strategy_runs
from detstudy.study.descriptions import DescriptionError, load_descriptions, prompts_for
from detstudy.tasks.detection.multimodal.fusion import derangement
from detstudy.tasks.detection.multimodal.phases import PhaseSetup
from detstudy.steps.train import train

ROOT = Path(__file__).resolve().parents[1]
STUDY_CLASSES = ["NORMAL", "DEFORMACIONES", "ROTURA_FRACTURA", "RAYONES_ARANAZOS", "PERFORACIONES", "CONTAMINACION"]
CATEGORIES = CategoryMap(tuple(range(1, 7)), tuple(STUDY_CLASSES))
VIT = {"num_queries": 20, "num_denoising": 10}


# --- descriptions ---------------------------------------------------------------------------
def test_default_descriptions_cover_the_study_classes():
    descriptions = load_descriptions(ROOT / "config" / "class_descriptions.yaml")
    prompts = prompts_for(descriptions, STUDY_CLASSES, "{name}: {description}. {contrast}. Keywords: {keywords}.")
    assert len(prompts) == 6
    assert prompts[2].startswith("ROTURA_FRACTURA: Deep crack or complete rupture")
    assert "Keywords: scratch, scrape" in prompts[3]


@pytest.mark.parametrize("text, message", [
    ("classes: {A: {description: x, keywords: [y]}}", "lacks ['contrast']"),
    ("classes: {A: {description: '', keywords: [y], contrast: z}}", "classes.A.description must be a non-empty"),
    ("classes: {A: {description: x, keywords: [], contrast: z, colour: red}}", "unknown keys ['colour']"),
    ("nothing: here", "top-level `classes:`"),
    ("classes: [unclosed", "not valid YAML"),
])
def test_bad_descriptions_name_the_file_and_the_item(tmp_path, text, message):
    path = tmp_path / "descriptions.yaml"
    path.write_text(text)
    with pytest.raises(DescriptionError, match=re.escape(message)) as error:
        load_descriptions(path)
    assert str(path) in str(error.value)


def test_a_class_without_description_and_a_bad_template_are_refused():
    descriptions = load_descriptions(ROOT / "config" / "class_descriptions.yaml")
    with pytest.raises(DescriptionError, match=r"no description for the dataset's categories \['DENT'\]"):
        prompts_for(descriptions, ["NORMAL", "DENT"], "{description}")
    with pytest.raises(DescriptionError, match=r"uses \['colour'\]"):
        prompts_for(descriptions, ["NORMAL"], "{description} {colour}")


# --- the chain ------------------------------------------------------------------------------
def test_chain_order_and_what_each_phase_starts_from():
    names = chain_names({"phases": {"phase1": {}, "phase2": {}, "phase3": {}}, "controls": ["shuffled", "notext"]})
    assert names == ["phase2_notext", "phase3_notext", "phase1_shuffled", "phase2_shuffled", "phase3_shuffled",
                     "phase1", "phase2", "phase3"]
    starts = {name: Phase.parse(name).previous for name in names}
    assert starts == {"phase2_notext": "base", "phase3_notext": "phase2_notext", "phase1_shuffled": "base",
                      "phase2_shuffled": "phase1_shuffled", "phase3_shuffled": "phase2_shuffled",
                      "phase1": "base", "phase2": "phase1", "phase3": "phase2"}
    assert chain_names({"phases": {"phase1": {}}, "controls": ["notext"]}) == ["phase1"]  # no text-free phase 1


def test_the_three_strategies_and_what_each_run_starts_from():
    names = chain_names({"phases": {"phase1": {}, "phase2": {}}, "controls": ["notext", "shuffled"],
                         "fusion_only": {"epochs": 3}, "joint": {"training": {"epochs": 4}}})
    # the plan's order (1 fusion only, 2 joint, 3 progressive), each strategy's controls first
    assert names == ["fusion_only_shuffled", "fusion_only", "joint_notext", "joint", "phase2_notext",
                     "phase1_shuffled", "phase2_shuffled", "phase1", "phase2"]
    runs = {name: Phase.parse(name) for name in names}
    assert {n: r.previous for n, r in runs.items() if r.strategy != "progressive"} == {
        "fusion_only_shuffled": "base", "fusion_only": "base", "joint_notext": None, "joint": None}
    assert [n for n, r in runs.items() if r.attaches_fusion] == ["fusion_only_shuffled", "fusion_only", "joint",
                                                                  "phase1_shuffled", "phase1"]
    assert {n: r.stage for n, r in runs.items() if r.control is None} == {
        "fusion_only": 1, "joint": 4, "phase1": 1, "phase2": 2}
    assert strategy_runs(names) == {"fusion_only": "fusion_only", "joint": "joint", "progressive": "phase2"}
    assert strategy_members("progressive", names) == ["phase1", "phase2"]
    # a control only where the plan has one: no text-free fusion-only run, no shuffled joint run
    for name in ("fusion_only_notext", "joint_shuffled"):
        with pytest.raises(ValueError, match="does not exist"):
            Phase.parse(name)
    assert chain_names({"joint": {"training": {}}, "controls": ["notext", "shuffled"]}) == ["joint_notext", "joint"]


def test_the_joint_run_stretches_the_model_recipe_to_its_length():
    model = {"model": {"num_queries": 300, "matcher_change_epoch": 80, "multiscale_stop_epoch": 90},
             "training": {"epochs": 102, "lr": 1.25e-4, "backbone_lr": 6.25e-6, "flat_epochs": None, "ema": True,
                          "augmentation": {"mosaic": 0.5, "epochs": [4, 49, 90]}}}
    joint = {"training": {"epochs": 204, "lr": 4e-4, "backbone_lr": 4e-5, "fusion_lr": 1e-3},
             "model": {"matcher_change_epoch": 150}}
    model_settings, training = joint_settings(model, joint)
    assert model_settings == {"num_queries": 300, "matcher_change_epoch": 150, "multiscale_stop_epoch": 180}
    assert training == {"epochs": 204, "lr": 4e-4, "backbone_lr": 4e-5, "flat_epochs": None, "ema": True,
                        "augmentation": {"mosaic": 0.5, "epochs": [8, 98, 180]}, "fusion_lr": 1e-3}
    multimodal = {"joint": joint, "training": {"lr_schedule": "cosine"}, "fusion_only": {"epochs": 3, "lr": 1e-4}}
    assert chain_training(model, multimodal, "joint_notext") == {k: v for k, v in training.items() if k != "fusion_lr"}
    assert chain_training(model, multimodal, "fusion_only_shuffled") == {
        "ema": True, "augmentation": {"mosaic": 0.5}, "lr_schedule": "cosine", "epochs": 3, "lr": 1e-4}


def test_phase2_without_phase1_is_refused():
    with pytest.raises(ValueError, match="phase2 without phase1"):
        chain_names({"phases": {"phase2": {}}})
    with pytest.raises(ValueError, match="does not exist"):
        Phase.parse("phase1_notext")


def test_derangement_moves_every_class_and_is_seeded():
    order = derangement(6, seed=3)
    assert sorted(order) == list(range(6)) and all(i != j for i, j in enumerate(order))
    assert derangement(6, seed=3) == order


def test_a_phase_inherits_the_model_recipe_but_not_the_vanilla_run_length():
    from detstudy.study.chain import phase_training

    model = {"epochs": 24, "lr": 5e-4, "backbone_lr": 1e-5, "flat_epochs": 12, "ema": True, "ema_decay": 0.999,
             "ema_restart": True, "grad_clip": 0.1, "amp_dtype": "bfloat16", "lr_schedule": "flat_cosine",
             "augmentation": {"mosaic": 0.5, "epochs": [4, 10, 20]}}
    shared = {"lr_schedule": "cosine", "grad_clip": 0.2}
    settings = phase_training(model, shared, {"epochs": 3, "lr": 1e-3})
    assert settings == {"epochs": 3, "lr": 1e-3, "ema": True, "ema_decay": 0.999, "grad_clip": 0.2,
                        "amp_dtype": "bfloat16", "lr_schedule": "cosine", "augmentation": {"mosaic": 0.5}}
    assert phase_training(None, None, {"epochs": 2}) == {"epochs": 2}


# --- fusion ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vanilla(tmp_path_factory):
    """A saved vanilla DEIMv2 checkpoint and a matching class-embeddings file."""
    root = tmp_path_factory.mktemp("vanilla")
    torch.manual_seed(0)
    save_checkpoint(root / "best.pt", build_detector("deimv2_demo", 6, 64, VIT), CATEGORIES)
    embeddings = torch.nn.functional.normalize(torch.randn(6, 24), dim=-1)
    save_file({"embeddings": embeddings}, str(root / "embeddings.safetensors"),
              metadata={"categories": json.dumps(STUDY_CLASSES), "encoder": "test"})
    return root


def fused(vanilla, phase="phase1"):
    adapter, categories, _ = load_checkpoint(vanilla / "best.pt")
    PhaseSetup(Phase.parse(phase), embeddings=vanilla / "embeddings.safetensors")(adapter, categories)
    return adapter


def images(count=2):
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(3, 64, 64, generator=generator) for _ in range(count)]


@pytest.mark.kernel_sensitive
def test_phase1_starts_at_the_vanilla_detections_to_float_precision(vanilla):
    """The gate is 0, so the text term adds exactly nothing; the fused model's re-created head
    weights may still take another matrix-multiply path (MKL picks it by CPU and memory layout),
    which moves a score by an ulp or two: compare to float32 precision, not bit for bit."""
    reference, _, _ = load_checkpoint(vanilla / "best.pt")
    expected, got = reference.predict(images()), fused(vanilla).predict(images())
    for a, b in zip(expected, got):
        torch.testing.assert_close(b["scores"], a["scores"], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b["boxes"], a["boxes"], rtol=1e-5, atol=1e-4)  # pixels
        assert torch.equal(a["labels"], b["labels"])


def test_the_text_reaches_every_decoder_layers_logits(vanilla):
    adapter = fused(vanilla)
    model = adapter.model.train()

    def layer_logits():
        torch.manual_seed(0)
        out = model(adapter._pixels(images()))
        return [out["pre_outputs"]["pred_logits"], *[a["pred_logits"] for a in out["aux_outputs"]], out["pred_logits"]]

    closed = layer_logits()
    model.text_fusion.gate.data.fill_(0.5)
    opened = layer_logits()
    assert len(closed) == len(opened) >= 4  # the pre-layer head and every decoder layer
    for layer, (before, after) in enumerate(zip(closed, opened)):
        assert not torch.allclose(before, after), layer
    model.eval()
    assert not torch.equal(adapter.predict(images())[0]["scores"], fused(vanilla).predict(images())[0]["scores"])


def test_the_shuffled_control_permutes_the_class_embeddings(vanilla):
    real, shuffled = fused(vanilla).model.text_fusion, fused(vanilla, "phase1_shuffled").model.text_fusion
    assert torch.equal(shuffled.class_embeddings, real.class_embeddings[derangement(6, 0)])


def test_the_shuffled_controls_similarity_names_the_text_each_class_got(vanilla, splits, tmp_path):
    """Its rows are deranged: column j holds class order[j]'s description, and the figure says so."""
    from detstudy.tasks.detection.data.dataset import CocoDetection
    from detstudy.tasks.detection.plots import plot_text_similarity

    order = derangement(6, 0)
    shuffled = fused(vanilla, "phase1_shuffled")
    save_checkpoint(tmp_path / "phase1_shuffled.pt", shuffled, CATEGORIES)  # a later phase inherits the order
    result = text_similarity(load_checkpoint(tmp_path / "phase1_shuffled.pt")[0], CocoDetection(splits["test"]),
                             torch.device("cpu"), iou_threshold=0.0)
    assert result["descriptions"] == [STUDY_CLASSES[i] for i in order]
    assert text_similarity(fused(vanilla), CocoDetection(splits["test"]), torch.device("cpu"))["descriptions"] \
        == STUDY_CLASSES
    figure = plot_text_similarity([("shuffled", result)], tmp_path / "sim.png", style={"dpi": 40})
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert labels == [f"{STUDY_CLASSES[j]}: text of {STUDY_CLASSES[i]}" for j, i in enumerate(order)]


def trainable(adapter):
    return {name for name, p in adapter.model.named_parameters() if p.requires_grad}


def test_requires_grad_in_each_phase(vanilla, tmp_path):
    one = fused(vanilla, "phase1")
    assert trainable(one) == {"text_fusion.projection.weight", "text_fusion.projection.bias",
                              "text_fusion.logit_scale", "text_fusion.gate"}
    save_checkpoint(tmp_path / "phase1.pt", one, CATEGORIES)

    def from_phase1(phase):
        adapter, categories, _ = load_checkpoint(tmp_path / "phase1.pt")
        PhaseSetup(Phase.parse(phase))(adapter, categories)
        return adapter

    two = trainable(from_phase1("phase2")) - trainable(one)
    assert two and all(n.startswith(("model.decoder.class_embed.", "model.decoder.lqe_layers.",
                                     "model.enc_score_head.")) for n in two)
    assert {"model.decoder.class_embed.0.weight", "model.enc_score_head.weight"} <= two
    three = from_phase1("phase3")
    names = {name for name, _ in three.model.named_parameters()}
    frozen = names - trainable(three)
    assert all(n.startswith("model.conv_encoder.backbone.") for n in frozen - {"model.decoder.reg_scale",
                                                                                 "model.decoder.up"})
    assert any(n.startswith("model.conv_encoder.backbone.") for n in frozen)
    assert "model.decoder.layers.0.mlp.w12.weight" in trainable(three) or any(
        n.startswith("model.decoder.layers.") for n in trainable(three))
    notext, categories, _ = load_checkpoint(vanilla / "best.pt")
    PhaseSetup(Phase.parse("phase2_notext"))(notext, categories)
    assert trainable(notext) == two  # the same detector parameters as phase 2, without the fusion


# --- training a phase -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    paths = generate_synthetic_dataset(tmp_path_factory.mktemp("data"), seed=3, split_sizes={"train": 4, "val": 2, "test": 2},
                             image_size=64)
    return {split: SplitPaths.of(**p) for split, p in paths.items()}


def train_phase(vanilla, splits, out, phase="phase1", **settings):
    """Train a phase; returns (summary, the trained detector as it is after the last epoch)."""
    setup, trained = PhaseSetup(Phase.parse(phase), embeddings=vanilla / "embeddings.safetensors"), {}

    def prepare(adapter, categories):
        setup(adapter, categories)
        trained["adapter"] = adapter

    summary = train(start_from=vanilla / "best.pt", prepare=prepare,
                    train_settings={"epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 1e-2,
                                    "warmup_iters": 0, "lr_schedule": "constant", "log_every": 1, **settings},
                    train_split=splits["train"], val_split=splits["val"], resolution=64, seed=0,
                    checkpoint_path=out / "best.pt", history_path=out / "history.csv", device="cpu", threads=1)
    return summary, trained["adapter"]


def test_phase1_training_changes_only_the_fusion(vanilla, splits, tmp_path):
    _, adapter = train_phase(vanilla, splits, tmp_path, epochs=2)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"] and rows[0]["loss"] == ""  # epoch 0: the start
    start = torch.load(vanilla / "best.pt", weights_only=True)["state_dict"]
    state = adapter.model.state_dict()
    for key, value in start.items():  # the detector's weights and batch-norm statistics: untouched
        assert torch.equal(state[key], value), key
    fusion = adapter.model.text_fusion
    assert fusion.gate.item() != 0.0  # the gate opened, and the projection learned through it
    assert not torch.equal(fusion.projection.weight, fused(vanilla).model.text_fusion.projection.weight)
    assert load_checkpoint(tmp_path / "best.pt")[2]["start_from"] == str(vanilla / "best.pt")


def test_a_phase_state_saved_with_other_class_embeddings_is_not_resumed(vanilla, splits, tmp_path, caplog,
                                                                         monkeypatch):
    """A text phase killed after its last epoch's state, then rerun: with the same embeddings it
    resumes; with edited descriptions (other embeddings) its state is discarded."""
    from detstudy.engine.resume import TrainingState

    monkeypatch.setattr(TrainingState, "clear", lambda self: None)  # the state outlives the run, as if killed
    caplog.set_level("INFO", logger="detstudy.train")

    def run(embeddings, phase="phase1"):
        caplog.clear()
        train(start_from=vanilla / "best.pt", prepare=PhaseSetup(Phase.parse(phase), embeddings=embeddings),
              train_settings={"epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 1e-3, "warmup_iters": 0,
                              "lr_schedule": "constant"},
              train_split=splits["train"], val_split=splits["val"], resolution=64, seed=0,
              checkpoint_path=tmp_path / "best.pt", history_path=tmp_path / "history.csv", device="cpu", threads=1,
              state_dir=tmp_path / "state")
        return " ".join(record.getMessage() for record in caplog.records)

    run(vanilla / "embeddings.safetensors")
    assert "resuming after epoch 1" in run(vanilla / "embeddings.safetensors")
    edited = tmp_path / "edited.safetensors"
    save_file({"embeddings": torch.nn.functional.normalize(torch.randn(6, 24), dim=-1)}, str(edited),
              metadata={"categories": json.dumps(STUDY_CLASSES), "encoder": "test"})
    log = run(edited)
    assert "written under another configuration" in log and "resuming" not in log
    log = run(edited, "phase1_shuffled")  # the shuffle is part of it too
    assert "written under another configuration" in log


def test_early_stop_when_validation_falls_below_the_best(vanilla, splits, tmp_path, caplog):
    caplog.set_level("INFO", logger="detstudy.train")
    summary, _ = train_phase(vanilla, splits, tmp_path, "phase3", epochs=4, lr=0.5, early_stop_drop=0.0)
    assert summary["epochs"] < 4 and any("early stop" in r.message for r in caplog.records)


def test_text_similarity_of_matched_queries(vanilla, splits):
    from detstudy.tasks.detection.data.dataset import CocoDetection

    adapter = fused(vanilla)
    result = text_similarity(adapter, CocoDetection(splits["test"]), torch.device("cpu"), iou_threshold=0.0)
    assert result["classes"] == STUDY_CLASSES and len(result["matrix"]) == 6
    assert sum(result["matched"]) > 0 and result["gate"] == 0.0 and result["temperature"] == pytest.approx(0.07)
    assert all(-1.0 <= v <= 1.0 for row in result["matrix"] for v in row)
    reference, _, _ = load_checkpoint(vanilla / "best.pt")
    assert text_similarity(reference, CocoDetection(splits["test"]), torch.device("cpu")) is None


# --- strategy 2: the joint run --------------------------------------------------------------
JOINT_RATES = {"lr": 4e-4, "backbone_lr": 4e-5, "fusion_lr": 1e-3}  # the plan's three rates


def train_joint_run(vanilla, splits, out, phase, monkeypatch):
    """One epoch of ``phase`` (joint or joint_notext) from a freshly built detector; returns the
    optimizer the run trained with, {parameter name: group name} read back from it, and the
    detector its checkpoint rebuilds."""
    from detstudy.engine import training as engine_training
    from detstudy.tasks.detection.multimodal.phases import train_joint

    built = {}

    def recording(settings, model, *args, **kwargs):
        built["optimizer"], built["model"] = real(settings, model, *args, **kwargs), model
        return built["optimizer"]

    real = engine_training.build_optimizer
    monkeypatch.setattr(engine_training, "build_optimizer", recording)
    rates = JOINT_RATES if phase == "joint" else {k: v for k, v in JOINT_RATES.items() if k != "fusion_lr"}
    train_joint(phase=phase, embeddings=vanilla / "embeddings.safetensors" if phase == "joint" else None,
                fusion={"temperature": 0.07} if phase == "joint" else {}, architecture="deimv2_demo",
                model_settings=VIT, train_settings={"epochs": 1, "batch_size": 2, "optimizer": "adamw",
                                                    "warmup_iters": 0, "lr_schedule": "constant", **rates},
                train_split=splits["train"], val_split=splits["val"], resolution=64, seed=0,
                checkpoint_path=out / "best.pt", history_path=out / "history.csv", device="cpu", threads=1)
    names = {id(p): n for n, p in built["model"].named_parameters()}
    parts = {names[id(p)]: group["name"].removesuffix(" no decay")
             for group in built["optimizer"].param_groups for p in group["params"]}
    return built["optimizer"], parts, load_checkpoint(out / "best.pt")[0]


def test_the_joint_run_trains_everything_at_three_learning_rates(vanilla, splits, tmp_path, monkeypatch):
    optimizer, parts, adapter = train_joint_run(vanilla, splits, tmp_path, "joint", monkeypatch)
    rates = {"detector": 4e-4, "backbone": 4e-5, "fusion": 1e-3}
    for group in optimizer.param_groups:  # read back from the optimizer the run built
        assert group["initial_lr"] == rates[group["name"].removesuffix(" no decay")], group["name"]
    every = [name for name, _ in adapter.model.named_parameters()]
    assert set(every) - set(parts) == {"model.decoder.reg_scale", "model.decoder.up"}  # constants; all else trains
    expected = {name: "fusion" if name.startswith("text_fusion.") else "backbone"
                if name.startswith(adapter.backbone_prefix) else "detector" for name in parts}
    assert parts == expected and set(parts.values()) == set(rates)
    assert adapter.settings["text_fusion"]["dim"] == 24  # the checkpoint rebuilds the fusion
    with open(tmp_path / "history.csv") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["1"]  # no start to validate: a fresh model


def test_the_joint_control_is_the_same_training_without_fusion(vanilla, splits, tmp_path, monkeypatch):
    _, parts, adapter = train_joint_run(vanilla, splits, tmp_path, "joint_notext", monkeypatch)
    assert set(parts.values()) == {"detector", "backbone"}
    assert adapter.settings.get("text_fusion") is None and not hasattr(adapter.model, "text_fusion")


def test_a_joint_run_is_not_a_fine_tuning_and_back(vanilla):
    from detstudy.tasks.detection.multimodal.phases import train_joint, train_phase as train_a_phase

    with pytest.raises(ValueError, match="train it with train_phase"):
        train_joint(phase="phase2", train_settings={})
    with pytest.raises(ValueError, match="train it with train_joint"):
        train_a_phase(phase="joint", start_from=vanilla / "best.pt", train_settings={})
