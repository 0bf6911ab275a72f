"""Benchmark: the three multimodal strategies side by side on the demo data (config/strategies.yaml).

Runs `snakemake --configfile config/strategies.yaml --cores N` with this checkout's Snakefile in a
temporary working directory (results/ there starts empty), and prints the wall time, each rule's
job times (from Snakemake's log), every training job's time (from its benchmark file) and the
strategies table as the report computes it (detstudy.report.strategies): AP50 with its interval,
the difference to vanilla and to the strategy's controls, the largest class drop, the training
time. Target on a 2-core CPU: the whole run in at most 25 minutes with `--cores 2` (three whole
trainings, two of them 1.5 times the vanilla length, and ten fine-tuning runs).

    python benchmarks/strategies_demo.py [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from default_grid import print_job_times, training_seconds  # noqa: E402

from detstudy.report.significance import Significance  # noqa: E402
from detstudy.report.strategies import strategy_records, strategy_sentence  # noqa: E402

TARGET_SECONDS = 25 * 60  # --cores 2 on a 2-core CPU


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="detstudy-strategies-"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    # the embedded default first (the Snakefile loads it relative to the working directory),
    # then the strategies over it, as `snakemake --configfile config/strategies.yaml` merges them
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(ROOT / "config" / "config.yaml"), str(ROOT / "config" / "strategies.yaml"),
               "--cores", str(args.cores), "--resources", "gpu=1"]
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1
    print(f"the three strategies on the demo, --cores {args.cores}: {wall:.0f} s ({wall / 60:.1f} min; "
          f"target {TARGET_SECONDS} s) in {workdir}")
    print_job_times(workdir)
    costs = {(model, int(resolution.removesuffix("px")), phase, int(seed.removeprefix("seed"))): seconds
             for (model, resolution, phase, seed), seconds in training_seconds(workdir).items()}
    significance = Significance.load(workdir / "results" / "statistics" / "comparisons.json")
    for record in strategy_records(significance, costs):
        print(" ", strategy_sentence(record, significance.alpha))
    ok = wall <= TARGET_SECONDS or args.cores < 2
    print("target met" if ok else "TARGET MISSED")
    if not args.keep:
        shutil.rmtree(workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
