"""The GPU path checked in one call: what the studies' models cost to train on this GPU, and the
tiny workflow end to end on it against the CPU.

On a machine with CUDA it prints, one line each (and writes them to ``--out`` as JSON lines):

* DEIMv2-S and -M training images/s and peak memory at 640 and 1024 px, batch 2 and 4, in fp32
  and under float16 / bfloat16 autocast (the engine's step: AdamW, loss scaling for float16);
* Faster R-CNN ResNet-18 / EfficientNet-B0 FPN at 640 px, batch 4;
* whether DEIMv2-M at 1024 px, batch 2 fits in 12 GB (the study's RTX 4070) in each precision:
  the allocator's peak reserved memory plus the CUDA context (another GPU's context differs by a
  few hundred MiB; read a result within that of 12 GB as borderline);
* the segmentation study's three models at 384 px, batch 8, and the classification study's
  three at 160 px, batch 128;
* the tiny detection workflow (tests/conftest.py's config) run twice, ``compute.device`` cpu and
  cuda: both exit statuses; per run, the first epoch's mean training loss on both devices (within
  2%: same data and initial weights, only the rounding differs) and the test AP50 (within 0.05: a
  one-epoch run); the GPU latency job's device and the attention figures' presence.

Without CUDA it says so and exits 0. ``--cpu-smoke`` runs the same code at tiny sizes on the CPU
(the demo variants, one or two steps, the workflow's smallest target on the CPU twice), which
``tests/test_gpu_check.py`` does.

    python benchmarks/gpu_check.py [--cpu-smoke] [--skip-workflow] [--out gpu_check.jsonl]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
import torch  # noqa: E402

from detstudy.engine.runtime import peak_memory_mb, reset_peak_memory  # noqa: E402

PRECISIONS = {"fp32": None, "float16": torch.float16, "bfloat16": torch.bfloat16}
FITS_BYTES = 12 * 10**9  # "12 GB": the RTX 4070's memory as sold
DETECTION_CLASSES, SEGMENTATION_CLASSES, CLASSIFICATION_CLASSES = 6, 16, 10


def sizes(smoke: bool) -> dict:
    """What is measured: the study's sizes on a GPU, the demo variants at tiny sizes for the smoke run."""
    if smoke:
        return {"deimv2": [("deimv2_demo", {"num_queries": 20, "num_denoising": 10}, 64, 1)],
                "fasterrcnn": [(a, {"fpn_channels": 16, "box_head_width": 32, "anchor_sizes": [8, 16, 32, 64, 128],
                                    "rpn_pre_nms_top_n_train": 100, "rpn_post_nms_top_n_train": 50}, 64, 1)
                               for a in ("fasterrcnn_resnet18_fpn",)],
                "fits": ("deimv2_demo", {"num_queries": 20, "num_denoising": 10}, 64, 1),
                "segmentation": [(a, 64, 2) for a in ("upernet_convnext_demo", "upernet_maxvit_demo", "segformer_demo")],
                "classification": [(a, 32, 4) for a in ("resnet_demo", "mobilevit_demo", "dinov3_demo")],
                "precisions": ("fp32", "bfloat16"), "warmup": 1, "steps": 2}
    return {"deimv2": [(a, {}, px, batch) for a in ("deimv2_s", "deimv2_m") for px in (640, 1024) for batch in (2, 4)],
            "fasterrcnn": [(a, {}, 640, 4) for a in ("fasterrcnn_resnet18_fpn", "fasterrcnn_efficientnet_b0_fpn")],
            "fits": ("deimv2_m", {}, 1024, 2),
            "segmentation": [(a, 384, 8) for a in ("upernet_convnext_tiny", "upernet_maxvit_tiny", "segformer_b3")],
            "classification": [(a, 160, 128) for a in ("resnet50", "mobilevit_s", "dinov3_vits16")],
            "precisions": tuple(PRECISIONS), "warmup": 3, "steps": 10}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_rate(adapter, batch, images: int, device: torch.device, precision: str, warmup: int, steps: int) -> dict:
    """Training images/s and peak memory of ``adapter`` on one fixed ``batch``: the engine's step
    (autocast, AdamW, loss scaling for float16), ``warmup`` steps left out of the timing."""
    dtype = PRECISIONS[precision]
    model = adapter.model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "float16" and device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.empty_cache()
    reset_peak_memory(device)
    try:
        for step in range(warmup + steps):
            if step == warmup:
                synchronize(device)
                started = time.perf_counter()
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                losses = adapter.losses(*batch)
                loss = sum(value for key, value in losses.items() if key.startswith("loss"))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
        synchronize(device)
    except torch.cuda.OutOfMemoryError:
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        return {"images_per_second": None, "peak_memory_mb": None, "error": "out of memory"}
    seconds = time.perf_counter() - started
    return {"images_per_second": round(images * steps / seconds, 2), "peak_memory_mb": peak_memory_mb(device),
            "loss": round(float(loss.detach()), 4)}


def detection_batch(px: int, batch: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, px, px, generator=generator).to(device) for _ in range(batch)]
    targets = []
    for _ in range(batch):
        corners = torch.rand(3, 2, generator=generator) * px * 0.6
        sides = 0.1 * px + torch.rand(3, 2, generator=generator) * px * 0.3
        targets.append({"boxes": torch.cat([corners, corners + sides], dim=1).to(device),
                        "labels": torch.randint(0, DETECTION_CLASSES, (3,), generator=generator).to(device)})
    return images, targets


def model_checks(device: torch.device, plan: dict, emit) -> None:
    from detstudy.tasks.classification.models import build_classifier
    from detstudy.tasks.classification.training import ClassificationAdapter
    from detstudy.tasks.detection.models import build_detector
    from detstudy.tasks.segmentation.losses import DiceCrossEntropy
    from detstudy.tasks.segmentation.models import build_segmenter
    from detstudy.tasks.segmentation.training import SegmentationAdapter

    warmup, steps = plan["warmup"], plan["steps"]
    for family in ("deimv2", "fasterrcnn"):
        for architecture, settings, px, batch in plan[family]:
            for precision in plan["precisions"]:
                torch.manual_seed(0)
                adapter = build_detector(architecture, DETECTION_CLASSES, px, settings)
                found = train_rate(adapter, detection_batch(px, batch, device), batch, device, precision, warmup, steps)
                emit("train", task="detection", model=architecture, px=px, batch=batch, precision=precision, **found)
                del adapter
    architecture, settings, px, batch = plan["fits"]
    for precision in plan["precisions"]:
        torch.manual_seed(0)
        adapter = build_detector(architecture, DETECTION_CLASSES, px, settings)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        found = train_rate(adapter, detection_batch(px, batch, device), batch, device, precision, 1, 2)
        needed = None
        if device.type == "cuda" and found["peak_memory_mb"] is not None:
            # what the process holds at its peak: the allocator's reserved memory (fragmentation
            # included) plus the CUDA context and libraries (device memory in use beyond the reserve)
            free, total = torch.cuda.mem_get_info(device)
            context = total - free - torch.cuda.memory_reserved(device)
            needed = round((torch.cuda.max_memory_reserved(device) + context) / 2**20, 1)
        emit("fits_12GB", model=architecture, px=px, batch=batch, precision=precision,
             peak_allocated_mb=found["peak_memory_mb"], needed_mb=needed,
             fits=(needed is not None and needed * 2**20 <= FITS_BYTES) if device.type == "cuda" else None)
        del adapter
    for architecture, px, batch in plan["segmentation"]:
        for precision in plan["precisions"]:
            torch.manual_seed(0)
            model = build_segmenter(architecture, SEGMENTATION_CLASSES, px)
            adapter = SegmentationAdapter(model, DiceCrossEntropy(None).to(device))
            images = torch.rand(batch, 3, px, px, device=device)
            masks = torch.randint(0, SEGMENTATION_CLASSES, (batch, px, px), device=device)
            found = train_rate(adapter, (images, masks), batch, device, precision, warmup, steps)
            emit("train", task="segmentation", model=architecture, px=px, batch=batch, precision=precision, **found)
    for architecture, px, batch in plan["classification"]:
        for precision in plan["precisions"]:
            torch.manual_seed(0)
            adapter = ClassificationAdapter(build_classifier(architecture, CLASSIFICATION_CLASSES))
            images = torch.rand(batch, 3, px, px, device=device)
            labels = torch.randint(0, CLASSIFICATION_CLASSES, (batch,), device=device)
            found = train_rate(adapter, (images, labels), batch, device, precision, warmup, steps)
            emit("train", task="classification", model=architecture, px=px, batch=batch, precision=precision, **found)


def conftest_module():
    """tests/conftest.py: the tests' tiny detection workflow and how they copy it, one source for both."""
    spec = importlib.util.spec_from_file_location("detstudy_tests_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_workflow(folder: Path, device: str, targets: list[str], cores: int) -> tuple[int, float, str]:
    workflow = conftest_module().copy_workflow(folder)  # the tiny config written in
    config = workflow.config()
    config["compute"]["device"] = device
    workflow.write_config(config)
    started = time.perf_counter()
    done = workflow.snakemake(*targets, "--cores", str(cores), "--resources", "gpu=1", check=False)
    return done.returncode, time.perf_counter() - started, done.stderr[-2000:]


def first_epoch_loss(history_csv: Path) -> float:
    import csv

    with open(history_csv, newline="") as handle:
        return float(next(row for row in csv.DictReader(handle) if row["epoch"] == "1")["loss"])


def workflow_check(smoke: bool, emit) -> bool:
    """The tiny workflow's runs on the CPU and on CUDA (smoke: on the CPU twice); True when it passes."""
    runs = ["frcnn_resnet18"] if smoke else ["frcnn_resnet18", "deimv2"]
    targets = [f"results/runs/{m}/64px/base/seed0/{name}" for m in runs for name in ("metrics.json", "speed.json")]
    if not smoke:
        targets += [f"results/runs/deimv2/64px/base/seed0/figures/{kind}.png"
                    for kind in ("attention_backbone", "attention_decoder")]
    ok = True
    with tempfile.TemporaryDirectory(prefix="detstudy-gpu-check-") as tmp:
        folders = {}
        for label, device in (("cpu", "cpu"), ("gpu", "cpu" if smoke else "cuda")):
            folders[label] = Path(tmp, label)
            code, seconds, tail = run_workflow(folders[label], device, targets, os.cpu_count() or 2)
            emit("workflow", device=device, exit_status=code, seconds=round(seconds, 1),
                 **({"stderr_tail": tail} if code else {}))
            ok &= code == 0
        if not ok:
            return False
        for model in runs:
            run = f"results/runs/{model}/64px/base/seed0"
            values = {label: json.loads((folder / run / "metrics.json").read_text())["coco"]["AP50"]
                      for label, folder in folders.items()}
            losses = {label: first_epoch_loss(folder / run / "history.csv") for label, folder in folders.items()}
            close = abs(values["cpu"] - values["gpu"]) <= 0.05
            # the first epoch's mean training loss: the same data and initial weights, so the two
            # devices' rounding is all that separates them
            same_loss = abs(losses["cpu"] - losses["gpu"]) <= 0.02 * abs(losses["cpu"])
            speed = json.loads((folders["gpu"] / run / "speed.json").read_text())
            emit("workflow_metrics", model=model, AP50_cpu=values["cpu"], AP50_gpu=values["gpu"], within_0_05=close,
                 loss_cpu=losses["cpu"], loss_gpu=losses["gpu"], loss_within_2_percent=same_loss,
                 latency_device=speed["speed"].get("device"),
                 latency_ms_per_image=speed["speed"].get("latency_ms_per_image"))
            ok &= close and same_loss
        if not smoke:
            present = all((folders["gpu"] / target).is_file() for target in targets if target.endswith(".png"))
            emit("attention_figures", present=present)
            ok &= present
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="the same code at tiny sizes on the CPU")
    parser.add_argument("--skip-workflow", action="store_true", help="only the models' training steps")
    parser.add_argument("--out", type=Path, help="also write every line as JSON here")
    args = parser.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check (run with --cpu-smoke for the CPU smoke run)")
        return 0
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    lines = []

    def emit(kind: str, **values) -> None:
        record = {"check": kind, **values}
        lines.append(record)
        print(" ".join(f"{k}={v}" for k, v in record.items() if k != "stderr_tail"), flush=True)
        if "stderr_tail" in values:
            print(values["stderr_tail"], flush=True)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    emit("device", name=name, torch=torch.__version__, cuda=torch.version.cuda)
    started = time.perf_counter()
    model_checks(device, sizes(args.cpu_smoke), emit)
    ok = True if args.skip_workflow else workflow_check(args.cpu_smoke, emit)
    emit("done", ok=ok, seconds=round(time.perf_counter() - started, 1))
    if args.out:
        args.out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
