"""Benchmark: the README's main command on the embedded default, from an empty results folder.

Runs `snakemake --cores N --resources gpu=1` with this checkout's Snakefile and config in a
temporary working directory (so results/ there starts empty), and prints the wall time, the
time of every rule's jobs (from Snakemake's log), the training throughput and the test metrics,
against the targets of the default grid on a 2-core CPU: the whole grid (both CNNs, the DEIMv2
demo, its multimodal phases and controls, statistics, figures, report) in at most 15 minutes
with `--cores 2` and 25 minutes with `--cores 1`; test AP50 >= 0.3 for the CNNs and >= 0.5 for
the DEIMv2 demo, each with the lower end of its bootstrap interval above 0.2 (the model
clearly learns); the multimodal runs are printed with their difference to the vanilla run.

With ``--portable-kernels`` the jobs pin the CPU kernels (``compute.portable_kernels: true``):
run both to see what the pin costs.

    python benchmarks/default_grid.py [--cores 2] [--keep DIR] [--portable-kernels]
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from detstudy.report.strategies import benchmark_seconds  # noqa: E402
TARGET_SECONDS = {1: 25 * 60, 2: 15 * 60}  # by --cores, on a 2-core CPU
TARGET_AP50 = {"cnn": 0.3, "vit": 0.5}  # multimodal runs have none: they are read against their vanilla run
LEARNING_FLOOR = 0.2  # the lower end of a vanilla run's AP50 interval


def job_seconds(log: Path) -> dict[str, list[float]]:
    """Each rule's job wall times, from the timestamps Snakemake writes before a job starts and ends."""
    stamp = re.compile(r"^\[(\w{3} \w{3} +\d+ [\d:]{8} \d{4})\]$")
    started, rule_of, seconds = {}, {}, collections.defaultdict(list)
    last = rule = None
    for line in log.read_text().splitlines():
        if match := stamp.match(line):
            last = time.mktime(time.strptime(match.group(1), "%a %b %d %H:%M:%S %Y"))
        elif match := re.match(r"^(?:local)?rule (\w+):$", line):
            rule = match.group(1)
        elif rule and (match := re.match(r"^    jobid: (\d+)$", line)):
            started[match.group(1)], rule_of[match.group(1)], rule = last, rule, None
        elif match := re.match(r"^Finished jobid: (\d+)", line):
            if match.group(1) in started:
                seconds[rule_of[match.group(1)]].append(last - started[match.group(1)])
    return seconds


def training_seconds(workdir: Path) -> dict[tuple[str, ...], float]:
    """Every training job's wall time from its benchmark file, by (model, "<res>px", phase, "seed<n>")."""
    root = workdir / "results" / "benchmarks"
    return {tsv.relative_to(root).parts[:4]: benchmark_seconds(tsv) for tsv in sorted(root.rglob("train.tsv"))}


def print_job_times(workdir: Path) -> None:
    """Each rule's job times (from Snakemake's last log) and each training's (from its benchmark file)."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    per_rule = job_seconds(logs[-1])
    print(f"  job time over all jobs: {sum(map(sum, per_rule.values())):.0f} s")
    for rule, seconds in sorted(per_rule.items(), key=lambda item: -sum(item[1])):
        print(f"  {rule}: {len(seconds)} job(s), {sum(seconds):.0f} s ({min(seconds):.0f}-{max(seconds):.0f} s each)")
    for parts, seconds in training_seconds(workdir).items():
        print(f"  train {' '.join(parts)}: {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--portable-kernels", action="store_true",
                        help="compute.portable_kernels: true (pinned CPU kernels; the default is the machine's own)")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="detstudy-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--configfile", str(ROOT / "config" / "config.yaml"), "--cores", str(args.cores), "--resources", "gpu=1"]
    if args.portable_kernels:  # a second config file, merged over the first
        portable = workdir / "portable_kernels.yaml"
        portable.write_text("compute: {portable_kernels: true}\n")
        command.insert(command.index("--cores"), str(portable))
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1

    kernels = "portable" if args.portable_kernels else "native"
    limit = TARGET_SECONDS[min(args.cores, 2)]
    print(f"whole default grid, --cores {args.cores}, {kernels} CPU kernels: {wall:.0f} s "
          f"({wall / 60:.1f} min; target {limit} s) in {workdir}")
    print_job_times(workdir)
    ok = wall <= limit
    vanilla = {}
    for metrics_path in sorted((workdir / "results" / "runs").rglob("metrics.json"), key=lambda p: p.parts[-3] != "base"):
        metrics = json.loads(metrics_path.read_text())
        speed = json.loads(metrics_path.with_name("speed.json").read_text())["speed"]
        run = metrics["run"]
        with open(metrics_path.parent / "history.csv") as handle:  # a fine-tuning run's epoch 0 has no rate
            rates = [float(row["images_per_second"]) for row in csv.DictReader(handle) if row["images_per_second"]]
        ap50 = metrics["coco"]["AP50"]
        if run["phase"] == "base":
            vanilla[run["model"], run["resolution"]] = ap50
            target = TARGET_AP50[run["family"]]
            low = json.loads(metrics_path.with_name("statistics.json").read_text())["metrics"]["AP50"]["low"]
            ok &= ap50 >= target and low > LEARNING_FLOOR
            versus = f"target {target}; interval from {low:.3f}, floor {LEARNING_FLOOR}"
        else:
            versus = f"{ap50 - vanilla[run['model'], run['resolution']]:+.3f} vs vanilla"
        print(f"  {run['model']} @ {run['resolution']} px {run['phase']}: test AP50 {ap50:.3f} ({versus}), "
              f"mAP {metrics['coco']['AP']:.3f}, train {sum(rates) / len(rates):.1f} img/s, "
              f"{speed['latency_ms_per_image']:.1f} ms/img")
    print("targets met" if ok else "TARGETS MISSED")
    if not args.keep:
        shutil.rmtree(workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
