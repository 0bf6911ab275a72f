"""Benchmark: what watching every image of a large dataset costs each time Snakemake starts.

Each split's check job reruns when one of its images changes: the workflow stamps the name,
size and date of every image the annotation file lists into a parameter of the check (listing
the files as inputs instead was measured at 20 s for 10 000 images and 338 s for 50 000).
This builds COCO datasets of growing size (the image files are copies of one small PNG, so
only the file count grows), points the workflow at them with the demo grid, and prints the
wall time of `snakemake -n` (parse, DAG, file dates).

    python benchmarks/dataset_inputs.py [--images 1000 10000 50000]
    python benchmarks/dataset_inputs.py --thesis [--images 1000]

``--thesis``: the thesis grid instead (config/thesis.yaml: 4 models x 2 resolutions x 3 seeds,
DEIMv2-M's three phases and both controls per seed; the backbone files it names are empty
stand-ins, only their presence is checked while Snakemake parses). Target: under 3 s with a
1 000-image dataset.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SPLIT_SHARE = {"train": 0.7, "val": 0.1, "test": 0.2}


def build_dataset(folder: Path, images: int) -> dict:
    """A COCO dataset of ``images`` copies of one small 64 px PNG, one box each."""
    folder.mkdir(parents=True)
    source = folder / "source.png"
    Image.new("RGB", (64, 64), (90, 90, 90)).save(source)
    png = source.read_bytes()
    splits = {}
    for split, share in SPLIT_SHARE.items():
        image_dir = folder / "images" / split
        image_dir.mkdir(parents=True)
        entries, boxes = [], []
        for index in range(max(1, int(images * share))):
            name = f"{index:07d}.png"
            (image_dir / name).write_bytes(png)
            entries.append({"id": index + 1, "file_name": name, "width": 64, "height": 64})
            boxes.append({"id": index + 1, "image_id": index + 1, "category_id": 1, "bbox": [8, 8, 16, 16],
                          "area": 256, "iscrowd": 0})
        annotations = folder / f"{split}.json"
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(
            ["NORMAL", "DEFORMACIONES", "ROTURA_FRACTURA", "RAYONES_ARANAZOS", "PERFORACIONES", "CONTAMINACION"])]
        annotations.write_text(json.dumps({"images": entries, "annotations": boxes, "categories": categories}))
        splits[split] = {"annotations": str(annotations), "images": str(image_dir)}
    return splits


THESIS_TARGET_SECONDS = 3.0


def dry_run_seconds(workdir: Path, config: Path, replace: bool = False) -> float:
    command = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(config), "--cores", "2"]
    if replace:  # the config file is the whole config, not merged over the embedded demo's
        command.append("--replace-workflow-config")
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=None)
    parser.add_argument("--thesis", action="store_true", help="the thesis grid (config/thesis.yaml)")
    args = parser.parse_args()
    if args.thesis:
        return thesis(args.images or [1000])
    args.images = args.images or [1000, 10000, 50000]
    demo = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    with tempfile.TemporaryDirectory(prefix="detstudy-inputs-") as tmp:
        tmp = Path(tmp)
        config = tmp / "synthetic.yaml"
        config.write_text(yaml.safe_dump(demo))
        print(f"demo (synthetic, 288 images): snakemake -n {dry_run_seconds(tmp / 'demo', config):.1f} s")
        for images in args.images:
            study = dict(demo, dataset={"name": "large", "source": "coco",
                                        "coco": build_dataset(tmp / f"data{images}", images)})
            config = tmp / f"coco{images}.yaml"
            config.write_text(yaml.safe_dump(study))
            print(f"COCO dataset, {images} images: snakemake -n {dry_run_seconds(tmp / f'run{images}', config):.1f} s")
    return 0


def thesis(sizes: list[int]) -> int:
    config = yaml.safe_load((ROOT / "config" / "thesis.yaml").read_text())
    ok = True
    with tempfile.TemporaryDirectory(prefix="detstudy-thesis-") as tmp:
        tmp = Path(tmp)
        for images in sizes:
            workdir = tmp / f"run{images}"
            for model in config["models"].values():  # the DINOv3 files, present but empty
                weights = model.get("model", {}).get("backbone_weights", "")
                if weights.endswith(".pt"):
                    (workdir / weights).parent.mkdir(parents=True, exist_ok=True)
                    (workdir / weights).write_bytes(b"")
            study = dict(config, dataset={"name": "thesis-shaped", "source": "coco",
                                          "coco": build_dataset(tmp / f"data{images}", images)})
            path = tmp / f"thesis{images}.yaml"
            path.write_text(yaml.safe_dump(study))
            dry_run_seconds(workdir, path, replace=True)  # the first run also fills the file-system caches
            seconds = min(dry_run_seconds(workdir, path, replace=True) for _ in range(3))
            ok &= images > 1000 or seconds < THESIS_TARGET_SECONDS
            print(f"thesis grid, COCO dataset of {images} images: snakemake -n {seconds:.2f} s "
                  f"(best of 3; target < {THESIS_TARGET_SECONDS:.0f} s with 1000 images)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
