"""Side by side: this project's DEIMv2 training against the official training loop.

    python benchmarks/deimv2_vs_official.py --official /path/to/DEIMv2 [--seeds 0 1 2] [--epochs 12]

Given a checkout of https://github.com/Intellindust-AI-Lab/DEIMv2 (never a dependency of the
workflow; run this with an interpreter that has the official ``requirements.txt`` and this
project installed, e.g. a virtualenv made with ``--system-site-packages``), it trains, for each
seed, the official solver (``DetSolver.fit``) and this project's ``detstudy.engine.training.train`` on
the demo's synthetic dataset, on the CPU, from scratch, with the same small model (the
``deimv2_demo`` dims: a 4-block ViT-Tiny of width 96 with taps 1/2/3, encoder and a 3-layer
decoder of width 96), the same recipe (the official DEIM augmentation with mosaic, mixup and
copy-blend in epoch windows derived from the run's length, multi-scale training, the matcher
change, AdamW with gradient clipping, the flat-cosine schedule, EMA and its stage-2 restart)
and the same seeds. Both best checkpoints (the official one through ``deimv2_keys``) are then
scored by this project's COCO evaluation on the test split. It prints AP and AP50 per run,
mean +- sd per implementation, the gap against the pooled sd, and the training images/s of
both loops (training time only, validation excluded).

The official transforms use the method names of torchvision before 0.21 (``_transform``,
``_get_params``; the official requirements pin 0.20.1); they are aliased to today's names, so
both implementations run on the same torchvision. The official model is built from its own config (``deimv2_dinov3_s_coco.yml`` with the demo
dims); only its ViT is swapped for the official ``VisionTransformer`` of depth 4 (the official
config does not expose the depth) and SyncBatchNorm for BatchNorm2d (the same maths in one
process; SyncBatchNorm refuses the CPU). The official dataset reads category ids as class
indices, so it gets a copy of the annotations with 0-based ids (the same classes in the same
order). A finished official run in ``--work`` with the same recipe and seed is reused. Exit
status 1 when the gap in mean AP50 is both above one pooled sd and above 0.02.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"hidden": 96, "vit_heads": 3, "vit_depth": 4, "taps": [1, 2, 3], "depth_mult": 0.34, "expansion": 0.34,
         "ffn": 256, "decoder_layers": 3, "queries": 100, "denoising": 50}
GAP_LIMIT = 0.02


def recipe(epochs: int, resolution: int) -> dict:
    """The shared recipe, with the epoch windows the official rule derives for ``epochs``."""
    from detstudy.tasks.detection.data.augment import DEIM_OFFICIAL, EpochWindows

    windows = EpochWindows.derive(epochs)
    return {"epochs": epochs, "resolution": resolution, "batch_size": 4, "lr": 5e-4, "weight_decay": 1e-4,
            "grad_clip": 0.1, "min_lr_factor": 0.5, "warmup_iters": 100, "ema_decay": 0.999, "ema_warmups": 200,
            "windows": list(windows.as_tuple()), "multiscale_repeat": 4,
            "matcher_change_epoch": round(epochs * 100 / 132),  # deimv2_s: epoch 100 of 132
            "augmentation": dict(DEIM_OFFICIAL)}


# ---------------------------------------------------------------- this project's loop

def train_ours(data: dict, shared: dict, seed: int, out: Path, threads: int) -> dict:
    from detstudy.tasks.detection.data.coco import SplitPaths
    from detstudy.steps.train import train

    start, flat, stop = shared["windows"]
    settings = {"epochs": shared["epochs"], "batch_size": shared["batch_size"], "optimizer": "adamw",
                "lr": shared["lr"], "weight_decay": shared["weight_decay"], "grad_clip": shared["grad_clip"],
                "lr_schedule": "flat_cosine", "min_lr_factor": shared["min_lr_factor"],
                "warmup_iters": shared["warmup_iters"], "flat_epochs": flat, "no_aug_epochs": shared["epochs"] - stop,
                "ema": True, "ema_decay": shared["ema_decay"], "ema_warmups": shared["ema_warmups"],
                "ema_restart": True, "select_metric": "AP", "log_every": 1000,
                "augmentation": {**shared["augmentation"], "epochs": shared["windows"]}}
    model = {"num_queries": SIZES["queries"], "num_denoising": SIZES["denoising"], "focal_gamma": 1.5,
             "matcher_change_epoch": shared["matcher_change_epoch"],
             "multiscale_repeat": shared["multiscale_repeat"], "multiscale_stop_epoch": stop}
    train(architecture="deimv2_demo", model_settings=model, train_settings=settings,
          train_split=SplitPaths.of(**data["train"]), val_split=SplitPaths.of(**data["val"]),
          resolution=shared["resolution"], seed=seed, checkpoint_path=out / "best.pt",
          history_path=out / "history.csv", device="cpu", threads=threads)
    with open(out / "history.csv") as handle:
        rates = [float(row["images_per_second"]) for row in csv.DictReader(handle)]  # training time only
    seen = len_train(data) // shared["batch_size"] * shared["batch_size"]  # per epoch (drop_last)
    return {"checkpoint": str(out / "best.pt"), "images_per_second": seen * len(rates) / sum(seen / r for r in rates)}


def len_train(data: dict) -> int:
    return len(json.loads(Path(data["train"]["annotations"]).read_text())["images"])


# ---------------------------------------------------------------- the official loop

def zero_based_annotations(source: str, target: Path) -> str:
    """A copy whose category ids are 0..K-1 in id order: the official dataset's class indices."""
    coco = json.loads(Path(source).read_text())
    index = {c["id"]: i for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    for category in coco["categories"]:
        category["id"] = index[category["id"]]
    for annotation in coco["annotations"]:
        annotation["category_id"] = index[annotation["category_id"]]
    target.write_text(json.dumps(coco))
    return str(target)


def official_config(checkout: Path, data: dict, zero_based: dict, shared: dict, out: Path) -> dict:
    start, flat, stop = shared["windows"]
    r, a, h = shared["resolution"], shared["augmentation"], SIZES["hidden"]
    classes = len(json.loads(Path(data["train"]["annotations"]).read_text())["categories"])
    normalize = {"type": "Normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
    train_ops = [
        {"type": "Mosaic", "output_size": r // 2, "rotation_range": a["mosaic_degrees"],
         "translation_range": [a["mosaic_translate"]] * 2, "scaling_range": list(a["mosaic_scale"]),
         "probability": 1.0, "fill_value": 0, "use_cache": True, "max_cached_images": a["mosaic_cache"],
         "random_pop": True},
        {"type": "RandomPhotometricDistort", "p": a["photometric"]},
        {"type": "RandomZoomOut", "fill": 0},
        {"type": "RandomIoUCrop", "p": a["iou_crop"]},
        {"type": "SanitizeBoundingBoxes", "min_size": 1},
        {"type": "RandomHorizontalFlip"},
        {"type": "Resize", "size": [r, r]},
        {"type": "SanitizeBoundingBoxes", "min_size": 1},
        {"type": "ConvertPILImage", "dtype": "float32", "scale": True}, normalize,
        {"type": "ConvertBoxes", "fmt": "cxcywh", "normalize": True}]
    val_ops = [{"type": "Resize", "size": [r, r]}, {"type": "ConvertPILImage", "dtype": "float32", "scale": True},
               normalize]

    def split(name: str, ops: list, **extra) -> dict:
        return {"dataset": {"img_folder": data[name]["images"], "ann_file": zero_based[name],
                            "transforms": {"ops": ops, **extra}},
                "total_batch_size": shared["batch_size"], "num_workers": 0}

    lr = shared["lr"]
    return {
        "__include__": [str(checkout / "configs" / "deimv2" / "deimv2_dinov3_s_coco.yml")],
        "output_dir": str(out), "device": "cpu", "num_classes": classes, "remap_mscoco_category": False,
        "eval_spatial_size": [r, r], "print_freq": 10 ** 6, "checkpoint_freq": 10 ** 6, "use_amp": False,
        "use_ema": True, "ema": {"type": "ModelEMA", "decay": shared["ema_decay"], "warmups": shared["ema_warmups"],
                                 "start": 0},
        "epoches": shared["epochs"], "clip_max_norm": shared["grad_clip"], "lrsheduler": "flatcosine",
        "lr_gamma": shared["min_lr_factor"], "warmup_iter": shared["warmup_iters"], "flat_epoch": flat,
        "no_aug_epoch": shared["epochs"] - stop,
        "optimizer": {"type": "AdamW", "lr": lr, "betas": [0.9, 0.999], "weight_decay": shared["weight_decay"],
                      "params": [  # the official groups, with one learning rate for all (trained from scratch)
                          {"params": "^(?=.*.dinov3)(?!.*(?:norm|bn|bias)).*$", "lr": lr},
                          {"params": "^(?=.*.dinov3)(?=.*(?:norm|bn|bias)).*$", "lr": lr, "weight_decay": 0.0},
                          {"params": "^(?=.*(?:sta|encoder|decoder))(?=.*(?:norm|bn|bias)).*$",
                           "weight_decay": 0.0}]},
        "DINOv3STAs": {"name": "vit_tiny", "embed_dim": h, "num_heads": SIZES["vit_heads"],
                       "interaction_indexes": SIZES["taps"], "weights_path": None},
        "HybridEncoder": {"in_channels": [h] * 3, "hidden_dim": h, "depth_mult": SIZES["depth_mult"],
                          "expansion": SIZES["expansion"], "dim_feedforward": SIZES["ffn"]},
        "DEIMTransformer": {"feat_channels": [h] * 3, "hidden_dim": h, "dim_feedforward": SIZES["ffn"],
                            "num_layers": SIZES["decoder_layers"], "num_queries": SIZES["queries"],
                            "num_denoising": SIZES["denoising"]},
        "DEIMCriterion": {"matcher": {"change_matcher": True, "iou_order_alpha": 4.0,
                                      "matcher_change_epoch": shared["matcher_change_epoch"]}},
        "train_dataloader": {**split("train", train_ops, policy={"epoch": [start, flat, stop]},
                                     mosaic_prob=a["mosaic"]),
                             "shuffle": True,
                             "collate_fn": {"base_size": r, "base_size_repeat": shared["multiscale_repeat"],
                                            "stop_epoch": stop, "mixup_prob": a["mixup"], "mixup_epochs": [start, flat],
                                            "copyblend_prob": a["copy_blend"], "copyblend_epochs": [start, stop],
                                            "area_threshold": a["copy_blend_min_area"],
                                            "num_objects": a["copy_blend_objects"], "with_expand": True,
                                            "expand_ratios": list(a["copy_blend_expand"])}},
        "val_dataloader": split("val", val_ops),
    }


OFFICIAL_RUN = r"""
import json, sys, time
spec = json.loads(sys.argv[1])
sys.path.insert(0, spec["checkout"]); sys.path.insert(0, spec["benchmarks"])
import torch
torch.set_num_threads(spec["threads"])
from engine.misc import dist_utils
from engine.core import YAMLConfig
from engine.backbone.vit_tiny import VisionTransformer
import engine.solver.det_solver as det_solver
from deimv2_parity import _plain_batch_norm
import torchvision.transforms.v2 as T
import engine.data.transforms as official_transforms

# the official transforms use the method names of torchvision < 0.21 (_transform, _get_params)
for module in (official_transforms._transforms,):
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, T.Transform):
            if "_transform" in vars(value) and "transform" not in vars(value):
                value.transform = value._transform
            if "_get_params" in vars(value) and "make_params" not in vars(value):
                value.make_params = value._get_params

dist_utils.setup_seed(spec["seed"])
cfg = YAMLConfig(spec["config"])
model = cfg.model
sizes = spec["sizes"]
model.backbone.dinov3 = VisionTransformer(embed_dim=sizes["hidden"], depth=sizes["vit_depth"],
                                          num_heads=sizes["vit_heads"], return_layers=sizes["taps"])
_plain_batch_norm(model)
seconds = []
original = det_solver.train_one_epoch
def timed(*args, **kwargs):
    started = time.perf_counter()
    result = original(*args, **kwargs)
    seconds.append(time.perf_counter() - started)
    return result
det_solver.train_one_epoch = timed
solver = det_solver.DetSolver(cfg)
solver.fit()
loader = solver.train_dataloader
json.dump({"train_seconds": seconds, "images_per_epoch": len(loader) * loader.batch_size},
          open(spec["timing"], "w"))
"""


def train_official(checkout: Path, data: dict, zero_based: dict, shared: dict, seed: int, out: Path,
                   threads: int) -> dict:
    """One official run; a finished run of the same recipe and seed in ``out`` is reused (the
    official code does not change between runs of this benchmark)."""
    import yaml

    done = out / "result.json"
    if done.is_file() and json.loads(done.read_text())["recipe"] == shared:
        return json.loads(done.read_text())["run"]
    shutil.rmtree(out, ignore_errors=True)  # no checkpoint of an earlier run is picked up
    out.mkdir(parents=True)
    config = out / "config.yml"
    config.write_text(yaml.safe_dump(official_config(checkout, data, zero_based, shared, out)))
    spec = {"checkout": str(checkout), "benchmarks": str(ROOT / "benchmarks"), "config": str(config), "seed": seed,
            "threads": threads, "sizes": SIZES, "timing": str(out / "timing.json")}
    with open(out / "log.txt", "w") as log:
        status = subprocess.run([sys.executable, "-c", OFFICIAL_RUN, json.dumps(spec)], stdout=log, stderr=log,
                                cwd=checkout, env=dict(os.environ, PYTHONHASHSEED="0"))
    if status.returncode:
        raise RuntimeError(f"the official training failed; see {out / 'log.txt'}")
    timing = json.loads((out / "timing.json").read_text())
    best = out / "best_stg2.pth" if (out / "best_stg2.pth").exists() else out / "best_stg1.pth"  # the overall best
    run = {"checkpoint": str(best),
           "images_per_second": timing["images_per_epoch"] * len(timing["train_seconds"]) / sum(timing["train_seconds"])}
    done.write_text(json.dumps({"recipe": shared, "run": run}))
    return run


# ---------------------------------------------------------------- one evaluation for both

def evaluate(checkpoint: str, official: bool, data: dict, shared: dict) -> dict:
    import torch

    from detstudy.tasks.detection.checkpoint import load_checkpoint
    from detstudy.tasks.detection.data.coco import SplitPaths
    from detstudy.tasks.detection.data.dataset import CocoDetection
    from detstudy.tasks.detection.evaluation.inference import predict_dataset
    from detstudy.tasks.detection.evaluation.metrics import coco_evaluate
    from detstudy.tasks.detection.models.deimv2 import build_deimv2

    test = CocoDetection(SplitPaths.of(**data["test"]))
    if official:
        adapter = build_deimv2("deimv2_demo", len(test.categories), shared["resolution"],
                               num_queries=SIZES["queries"], num_denoising=SIZES["denoising"], weights=checkpoint)
    else:
        adapter = load_checkpoint(checkpoint)[0]
    coco = coco_evaluate(test.coco, predict_dataset(adapter, test, torch.device("cpu")))["coco"]
    return {"AP": coco["AP"], "AP50": coco["AP50"]}


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="a checkout of Intellindust-AI-Lab/DEIMv2")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--resolution", type=int, default=192)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="keep runs here (default: a temporary folder)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import yaml

    from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset

    work = args.work or Path(tempfile.mkdtemp(prefix="deimv2_vs_official."))
    synthetic = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["dataset"]["synthetic"]
    data = generate_synthetic_dataset(work / "data", seed=synthetic["seed"], image_size=synthetic["image_size"],
                            split_sizes=synthetic["splits"], max_defects=synthetic["max_defects"],
                            empty_fraction=synthetic["empty_fraction"])
    zero_based = {name: zero_based_annotations(split["annotations"], work / "data" / f"{name}_0based.json")
                  for name, split in data.items()}
    shared = recipe(args.epochs, args.resolution)
    print(f"demo dataset ({len_train(data)} training images), {args.resolution} px, {args.epochs} epochs, "
          f"windows {shared['windows']}, {args.threads} threads; work folder {work}", flush=True)
    results: dict[str, list[dict]] = {"official": [], "detstudy": []}
    for seed in args.seeds:
        for name in ("official", "detstudy"):
            started = time.perf_counter()
            out = work / name / f"seed{seed}"
            if name == "detstudy":  # always this checkout's code
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
            run = (train_official(args.official, data, zero_based, shared, seed, out, args.threads) if name == "official"
                   else train_ours(data, shared, seed, out, args.threads))
            scores = evaluate(run["checkpoint"], name == "official", data, shared)
            results[name].append({**run, **scores})
            print(f"  {name:8s} seed {seed}: test AP {scores['AP']:.4f} AP50 {scores['AP50']:.4f}, "
                  f"{run['images_per_second']:.2f} img/s training ({time.perf_counter() - started:.0f} s)", flush=True)
    print()
    means = {}
    for name, runs in results.items():
        ap, ap50 = summary([r["AP"] for r in runs]), summary([r["AP50"] for r in runs])
        rate = statistics.fmean(r["images_per_second"] for r in runs)
        means[name] = ap50
        print(f"{name:8s} AP {ap[0]:.4f} +- {ap[1]:.4f}  AP50 {ap50[0]:.4f} +- {ap50[1]:.4f}  "
              f"training {rate:.2f} img/s  (n={len(runs)})")
    gap = means["detstudy"][0] - means["official"][0]
    pooled = ((means["detstudy"][1] ** 2 + means["official"][1] ** 2) / 2) ** 0.5
    within = abs(gap) <= pooled or abs(gap) < GAP_LIMIT
    print(f"gap in mean AP50 (detstudy - official): {gap:+.4f}; pooled sd {pooled:.4f}: "
          f"{'within' if within else 'OUTSIDE'} the target (one pooled sd, or under {GAP_LIMIT})")
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
