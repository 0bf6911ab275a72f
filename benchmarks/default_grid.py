"""Benchmark: the README's main command on the embedded default, from an empty results folder.

Runs `snakemake --cores 2 --resources gpu=1` with this checkout's Snakefile and config in a
temporary working directory (so results/ there starts empty), and prints the wall time, each job's time (Snakemake's benchmark files), the training
throughput and the test metrics, against the targets of the default grid:
the whole grid in at most 11 minutes on a 2-core CPU, test AP50 >= 0.3 for the CNNs and
>= 0.5 for the DEIMv2 demo.

    python benchmarks/default_grid.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 11 * 60
TARGET_AP50 = {"cnn": 0.3, "vit": 0.5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="detstudy-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(ROOT / "config" / "config.yaml"), "--cores", str(args.cores), "--resources", "gpu=1"]
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1

    print(f"whole default grid: {wall:.0f} s (target {TARGET_SECONDS} s) in {workdir}")
    for tsv in sorted((workdir / "results" / "benchmarks").rglob("*.tsv")):
        with open(tsv) as handle:
            seconds = float(next(csv.DictReader(handle, delimiter="\t"))["s"])
        print(f"  {tsv.relative_to(workdir / 'results' / 'benchmarks')}: {seconds:.0f} s")
    ok = wall <= TARGET_SECONDS
    for metrics_path in sorted((workdir / "results" / "runs").rglob("metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        with open(metrics_path.parent / "history.csv") as handle:
            rates = [float(row["images_per_second"]) for row in csv.DictReader(handle)]
        ap50, target = metrics["coco"]["AP50"], TARGET_AP50[metrics["run"]["family"]]
        ok &= ap50 >= target
        print(f"  {metrics['run']['model']} @ {metrics['run']['resolution']} px: test AP50 {ap50:.3f} "
              f"(target {target}), mAP {metrics['coco']['AP']:.3f}, "
              f"train {sum(rates) / len(rates):.1f} img/s, {metrics['speed']['latency_ms_per_image']:.1f} ms/img")
    print("targets met" if ok else "TARGETS MISSED")
    if not args.keep:
        shutil.rmtree(workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
