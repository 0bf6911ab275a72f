"""Benchmark: the segmentation demo, ``snakemake --configfile config/segmentation.yaml --cores 2
--resources gpu=1``, from an empty results folder, against its targets: the whole grid (three
models of the three families, statistics, figures, report) within 10 minutes on a 2-core CPU, and
every model clearly above a constant predictor (one that calls every pixel the most frequent
class), whose mIoU on the same test split it prints beside each model's mIoU and 95% interval.

    python benchmarks/segmentation_demo.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 10 * 60


def constant_predictor_miou(confusion: np.ndarray) -> float:
    """mIoU of predicting the most frequent ground-truth class everywhere: that class's IoU is its
    pixel share, every other class present scores 0, absent classes are left out of the mean."""
    truth = confusion.sum(axis=1)
    return float(truth.max() / truth.sum() / (truth > 0).sum())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="detstudy-segmentation-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                             "--directory", str(workdir), "--configfile", str(ROOT / "config" / "segmentation.yaml"),
                             "--cores", str(args.cores), "--resources", "gpu=1"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1
    print(f"segmentation demo: {wall:.0f} s (target {TARGET_SECONDS} s) in {workdir}")
    for tsv in sorted((workdir / "results" / "segmentation" / "benchmarks").rglob("train.tsv")):
        with open(tsv) as handle:
            seconds = float(next(csv.DictReader(handle, delimiter="\t"))["s"])
        print(f"  train {tsv.parent.relative_to(workdir / 'results' / 'segmentation' / 'benchmarks')}: {seconds:.0f} s")
    ok = wall <= TARGET_SECONDS
    for metrics_path in sorted((workdir / "results" / "segmentation" / "runs").rglob("metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        interval = json.loads(metrics_path.with_name("statistics.json").read_text())["metrics"]["mIoU"]
        constant = constant_predictor_miou(np.asarray(metrics["confusion"]))
        above = interval["low"] > constant
        ok &= above
        print(f"  {metrics['run']['model']:16s} mIoU {metrics['metrics']['mIoU']:.3f} [{interval['low']:.3f}, "
              f"{interval['high']:.3f}]  mDice {metrics['metrics']['mDice']:.3f}  aAcc {metrics['metrics']['aAcc']:.3f}"
              f"  constant predictor {constant:.3f} ({'above' if above else 'NOT above'}: the interval's low end "
              f"{interval['low'] - constant:+.3f})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
