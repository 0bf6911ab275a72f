"""Benchmark: the classification demo, ``snakemake --configfile config/classification.yaml --cores 2
--resources gpu=1``, from an empty results folder, against its targets: the whole grid (three
models of the three families, statistics, figures, report) within 6 minutes on a 2-core CPU, and
every model clearly above chance (the low end of its 95% interval above the accuracy of always
predicting the test split's most frequent class).

    python benchmarks/classification_demo.py [--cores 2] [--keep DIR]
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
TARGET_SECONDS = 6 * 60


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="detstudy-classification-"))
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
                             "--directory", str(workdir), "--configfile", str(ROOT / "config" / "classification.yaml"),
                             "--cores", str(args.cores), "--resources", "gpu=1"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1
    results = workdir / "results" / "classification"
    print(f"classification demo: {wall:.0f} s (target {TARGET_SECONDS} s) in {workdir}")
    for tsv in sorted((results / "benchmarks").rglob("train.tsv")):
        with open(tsv) as handle:
            seconds = float(next(csv.DictReader(handle, delimiter="\t"))["s"])
        print(f"  train {tsv.parent.relative_to(results / 'benchmarks')}: {seconds:.0f} s")
    ok = wall <= TARGET_SECONDS
    for metrics_path in sorted((results / "runs").rglob("metrics.json")):
        metrics = json.loads(metrics_path.read_text())
        interval = json.loads(metrics_path.with_name("statistics.json").read_text())["metrics"]["accuracy"]
        truth = np.asarray(metrics["metrics"]["confusion"]).sum(axis=1)
        chance = float(truth.max() / truth.sum())
        above = interval["low"] > chance
        ok &= above
        print(f"  {metrics['run']['model']:16s} accuracy {metrics['metrics']['accuracy']:.3f} [{interval['low']:.3f}, "
              f"{interval['high']:.3f}]  macro F1 {metrics['metrics']['macro_F1']:.3f}  ECE {metrics['metrics']['ECE']:.3f}"
              f"  majority class {chance:.3f} ({'above' if above else 'NOT above'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
