"""Numerical parity of this project's DEIMv2 with the official implementation.

    python benchmarks/deimv2_parity.py --official /path/to/DEIMv2 [--variants s m] [--write-fixture]

Given a checkout of https://github.com/Intellindust-AI-Lab/DEIMv2 (never a dependency of the
workflow; it needs its own ``requirements.txt`` importable, e.g. in a scratch virtualenv with
this project installed), it builds the official DEIMv2-S/M (80 classes) and this project's,
loads the same seeded random weights (written in the official layout, mapped by
``detstudy.tasks.detection.models.deimv2_keys``), runs both on the same seeded images and targets, in eval
and in train mode (the same seed before each forward, so both draw the same denoising noise),
and prints per tensor the maximum absolute difference: backbone taps, STA and fused maps,
encoder outputs, every decoder layer's logits, boxes and corners, the pre-head, encoder
proposals and denoising outputs, the final detections, and every loss term (epoch 0 and after
the matcher change). Exit status 1 when any difference exceeds the tolerance (1e-4).

``--write-fixture`` saves ``tests/fixtures/deimv2_parity.pt``: the official key list and
shapes, the official constant buffers, and a sample of every official tensor, which
``tests/test_deimv2_parity.py`` checks on every run without the official code.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "deimv2_parity.pt"
TOLERANCE = 1e-4
SEED, BATCH, SIZE = 0, 2, 320
EPOCHS = {"epoch0": 0, "matcher_changed": 10_000}  # the second is past any matcher_change_epoch
CONFIGS = {"s": "configs/deimv2/deimv2_dinov3_s_coco.yml", "m": "configs/deimv2/deimv2_dinov3_m_coco.yml"}


def _plain_batch_norm(module: nn.Module) -> nn.Module:
    """SyncBatchNorm -> BatchNorm2d (the same maths in one process; SyncBN refuses the CPU)."""
    for name, child in module.named_children():
        if isinstance(child, nn.SyncBatchNorm):
            plain = nn.BatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats)
            plain.load_state_dict(child.state_dict())
            setattr(module, name, plain)
        else:
            _plain_batch_norm(child)
    return module


def build_official(checkout: Path, variant: str):
    sys.path.insert(0, str(checkout))
    from engine.core import YAMLConfig  # noqa: the official code

    with contextlib.redirect_stdout(io.StringIO()):
        config = YAMLConfig(str(checkout / CONFIGS[variant]))
        model, criterion = config.model, config.criterion
    # anchors and position embeddings for the input size, as in training
    model.decoder.eval_spatial_size = None
    model.encoder.eval_spatial_size = None
    return _plain_batch_norm(model), criterion, config.yaml_cfg


def official_tensors(model, criterion, images, targets, *, training: bool, seed: int, epoch: int):
    from detstudy.tasks.detection.models.deimv2_parity import canonical, detections, flatten_outputs

    captured = {}
    selected = {}
    select = model.decoder._select_topk

    def keep_selection(memory, logits, anchors, topk):  # the official default query selection
        selected["index"] = torch.topk(logits.max(-1).values, topk, dim=-1).indices
        return select(memory, logits, anchors, topk)

    def keep(name, tokens=False):
        def hook(_module, _inputs, output):
            for i, value in enumerate(output):
                captured[f"{name}{i}"] = (value[0] if tokens else value).detach().clone()
        return hook

    handles = [model.backbone.dinov3.register_forward_hook(keep("backbone.tap", tokens=True)),
               model.backbone.sta.register_forward_hook(keep("sta.")),
               model.backbone.register_forward_hook(keep("backbone.out")),
               model.encoder.register_forward_hook(keep("encoder.out"))]
    model.train(training)
    model.decoder._select_topk = keep_selection
    try:
        torch.manual_seed(seed)
        with torch.set_grad_enabled(training):
            outputs = model(images, [dict(t) for t in targets] if training else None)
    finally:
        for handle in handles:
            handle.remove()
        del model.decoder._select_topk
    if training:
        captured.update(flatten_outputs(outputs, selected["index"]))
        losses = criterion(outputs, [dict(t) for t in targets], epoch=epoch)
        captured.update({f"loss.{k}": v.detach().reshape(()) for k, v in losses.items()})
    else:
        captured["eval.pred_logits"] = canonical(outputs["pred_logits"], selected["index"])
        captured["eval.pred_boxes"] = canonical(outputs["pred_boxes"], selected["index"])
        captured.update(detections(outputs["pred_logits"], outputs["pred_boxes"]))
    return {k: v.detach().float() for k, v in captured.items()}


def build_ours(variant: str, official_state: dict, yaml_cfg: dict):
    from detstudy.tasks.detection.models.deimv2 import build_deimv2
    from detstudy.tasks.detection.models.deimv2_criterion import Deimv2Criterion, MatcherSettings
    from detstudy.tasks.detection.models.deimv2_keys import load_official_state

    adapter = build_deimv2(f"deimv2_{variant}", 80, SIZE)
    load_official_state(adapter.model, official_state, source=f"seeded official deimv2_{variant}")
    matcher = yaml_cfg["DEIMCriterion"]["matcher"]
    criterion = Deimv2Criterion(80, matcher=MatcherSettings(matcher_change_epoch=matcher["matcher_change_epoch"]))
    return adapter.model, criterion


def compare(variant: str, checkout: Path) -> tuple[dict, dict]:
    from detstudy.tasks.detection.models.deimv2_parity import max_differences, our_tensors, seeded_inputs, seeded_official_state

    official, official_criterion, yaml_cfg = build_official(checkout, variant)
    shapes = {k: list(v.shape) for k, v in official.state_dict().items()}
    constants = {k: v for k, v in official.state_dict().items()
                 if k.endswith(("up", "reg_scale", "num_points_scale", "periods", "anchors", "valid_mask"))}
    state = seeded_official_state(shapes, constants, SEED)
    official.load_state_dict(state, strict=True)
    ours, criterion = build_ours(variant, state, yaml_cfg)
    images, targets = seeded_inputs(SEED, BATCH, SIZE)
    reference, differences = {}, {}
    runs = [("eval", False, 0)] + [(name, True, epoch) for name, epoch in EPOCHS.items()]
    for mode, training, epoch in runs:
        theirs = official_tensors(official, official_criterion, images, targets, training=training, seed=SEED,
                                  epoch=epoch)
        mine = our_tensors(ours, images, targets, training=training, seed=SEED, epoch=epoch, criterion=criterion)
        reference[mode] = theirs
        differences[mode] = max_differences(mine, theirs, sampled=False)
        extra = sorted(set(mine) - set(theirs))
        if extra:
            differences[mode].update({f"(only ours) {name}": float("inf") for name in extra})
    record = {"shapes": shapes, "constants": {k: v for k, v in constants.items() if "anchors" not in k
                                              and "valid_mask" not in k},
              "matcher_change_epoch": yaml_cfg["DEIMCriterion"]["matcher"]["matcher_change_epoch"],
              "parameters": sum(p.numel() for p in official.parameters()),
              "reference": reference}
    return differences, record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of Intellindust-AI-Lab/DEIMv2")
    parser.add_argument("--variants", nargs="+", default=["s", "m"], choices=sorted(CONFIGS))
    parser.add_argument("--write-fixture", action="store_true", help=f"write {FIXTURE.relative_to(ROOT)}")
    args = parser.parse_args()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    from detstudy.tasks.detection.models.deimv2_parity import sample

    fixture = {"seed": SEED, "batch": BATCH, "size": SIZE, "variants": {}}
    worst = 0.0
    for variant in args.variants:
        differences, record = compare(variant, args.official)
        print(f"\nDEIMv2-{variant.upper()} ({SIZE} px, batch {BATCH}): max |official - ours|")
        for mode, table in differences.items():
            print(f"  [{mode}]")
            for name, value in table.items():
                flag = "" if value <= TOLERANCE else "   <-- over tolerance"
                print(f"    {name:<32} {value:.3e}{flag}")
                worst = max(worst, value)
        record["reference"] = {mode: {name: sample(value) for name, value in tensors.items()}
                               for mode, tensors in record["reference"].items()}
        fixture["variants"][variant] = record
    print(f"\nworst difference {worst:.3e} (tolerance {TOLERANCE:g}): {'PARITY' if worst <= TOLERANCE else 'DIFFERENT'}")
    if args.write_fixture:
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        torch.save(fixture, FIXTURE)
        print(f"wrote {FIXTURE.relative_to(ROOT)} ({FIXTURE.stat().st_size / 1e6:.2f} MB)")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
