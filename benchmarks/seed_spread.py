"""Benchmark: how far the demo's test metrics move from seed to seed, beside one seed's interval.

Trains and evaluates the default grid's vanilla runs (both CNNs and the DEIMv2 demo; no
multimodal phases) for seeds 0..N-1 with the default config, then prints for each model every
seed's test AP50 and mAP, their mean and standard deviation over the seeds, and seed 0's
bootstrap standard error and 95% interval over the test images. The seed-to-seed sd is what a
rerun on another machine (other CPU kernels, other rounding) can move a single-seed number by;
the bootstrap interval is what the finite test set alone allows.

    python benchmarks/seed_spread.py [--seeds 3] [--cores 2] [--keep DIR] [--portable-kernels]

With ``--keep DIR`` pointing at a folder the default grid already ran in (e.g. the one
``benchmarks/default_grid.py --keep DIR`` leaves), seed 0 is not trained again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("--portable-kernels", action="store_true", help="compute.portable_kernels: true")
    args = parser.parse_args()
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="detstudy-seeds-"))
    workdir.mkdir(parents=True, exist_ok=True)

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    seeds = list(range(args.seeds))
    overrides = workdir / "seed_spread.yaml"  # merged over the default config by Snakemake
    overrides.write_text(yaml.safe_dump({"grid": {"seeds": seeds},
                                         "compute": {"portable_kernels": args.portable_kernels}}))
    models, resolution = config["grid"]["models"], config["grid"]["resolutions"][0]
    runs = {model: [workdir / "results" / "runs" / model / f"{resolution}px" / "base" / f"seed{seed}" for seed in seeds]
            for model in models}
    targets = [str((run / "statistics.json").relative_to(workdir)) for model_runs in runs.values() for run in model_runs]
    started = time.perf_counter()
    # The targets first: --configfile and --resources take every word after them.
    result = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--snakefile", str(ROOT / "Snakefile"),
                             "--directory", str(workdir), "--cores", str(args.cores), "--resources", "gpu=1",
                             "--configfile", str(ROOT / "config" / "config.yaml"), str(overrides)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(result.stderr[-3000:])
        return 1
    kernels = "portable" if args.portable_kernels else "native"
    print(f"{len(seeds)} seeds of the default grid's vanilla runs, {kernels} CPU kernels, "
          f"{time.perf_counter() - started:.0f} s in {workdir}")
    print("model: test AP50 per seed | mean, sd over seeds | seed 0: bootstrap se, 95% interval | mAP per seed, sd")
    for model, model_runs in runs.items():
        stats = [json.loads((run / "statistics.json").read_text())["metrics"] for run in model_runs]
        ap50 = [s["AP50"]["estimate"] for s in stats]
        ap = [s["AP"]["estimate"] for s in stats]
        first = stats[0]["AP50"]
        print(f"  {model}: {' '.join(f'{v:.3f}' for v in ap50)} | {statistics.mean(ap50):.3f}, "
              f"sd {statistics.stdev(ap50):.3f} | se {first['se']:.3f}, [{first['low']:.3f}, {first['high']:.3f}] | "
              f"{' '.join(f'{v:.3f}' for v in ap)}, sd {statistics.stdev(ap):.3f}")
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
