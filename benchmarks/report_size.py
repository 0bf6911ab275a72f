"""Benchmark: how big the report is and how fast it opens, for the default grid and for the thesis grid.

1. The report of a finished grid (default: this checkout's ``results/``): the size of
   ``index.html``, its figures, and its load time in headless Chromium, with a full-page
   screenshot. Target for the default grid: at most 8 MB, loaded in under 3 s.
2. ``--thesis``: a synthetic grid of the thesis's shape (``config/thesis.yaml``: 4 models x 2
   resolutions x 3 seeds, plus every DEIMv2 model's phases and controls per seed), each run a
   copy of one finished run's metrics and figures (``--run``, default the first run found) under
   its own name, rendered by the report step (the multimodal cross-run figures left out: one
   pair per model, resolution and seed, a few percent of the page). Target: under 40 MB.

    python benchmarks/report_size.py [--results results] [--run results/runs/.../seed0] [--thesis]
        [--screenshot report.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from detstudy.study.figure_kinds import FIGURE_KINDS, MULTIMODAL_FIGURE_KINDS, VIT_FIGURE_KINDS  # noqa: E402
from detstudy.study.chain import chain_names  # noqa: E402
from detstudy.study.grid import run_identity, run_label  # noqa: E402
from detstudy.report.browser import find_browser, open_report  # noqa: E402
from detstudy.report.figure_sections import Preview  # noqa: E402
from detstudy.report.render import render_report  # noqa: E402

DEFAULT_TARGET_MB, THESIS_TARGET_MB, LOAD_TARGET_S = 8, 40, 3


def _megabytes(path: Path) -> float:
    return path.stat().st_size / 1e6


def _describe(html: Path, screenshot: Path | None, target_mb: float) -> bool:
    size = _megabytes(html)
    ok = size <= target_mb
    print(f"{html}: {size:.1f} MB (target <= {target_mb} MB)")
    if find_browser() is None:
        print("  no chromium + chromedriver: load time not measured (tests/system_packages.sh installs them)")
        return ok
    started = time.perf_counter()
    page = open_report(html, screenshot)
    print(f"  headless Chromium: loaded in {page.load_seconds:.2f} s (target < {LOAD_TARGET_S} s; "
          f"{time.perf_counter() - started:.1f} s with the browser's start), {len(page.sections)} sections, "
          f"{len(page.tables)} tables, {page.images} images, {len(page.broken)} broken"
          + (f"; screenshot {page.screenshot}" if page.screenshot else ""))
    return ok and page.load_seconds < LOAD_TARGET_S and not page.broken


def _thesis_runs() -> list[dict]:
    """Every run of the thesis grid, each as its metrics JSON identifies it."""
    thesis = yaml.safe_load((ROOT / "config" / "thesis.yaml").read_text())
    grid, multimodal = thesis["grid"], thesis["multimodal"]
    phases = ["base", *chain_names(multimodal)]  # every strategy's runs and controls
    return [run_identity(thesis, model, resolution, phase, seed)
            for model in grid["models"] for resolution in grid["resolutions"] for seed in grid["seeds"]
            for phase in (phases if model in multimodal["models"] else ["base"])]


def thesis_preview() -> Preview:
    """The figure previews as config/thesis.yaml's report settings size them."""
    report = yaml.safe_load((ROOT / "config" / "thesis.yaml").read_text()).get("report") or {}
    return Preview(width=report.get("preview_width", Preview.width),
                   jpeg_quality=report.get("jpeg_quality", Preview.jpeg_quality))


def _synthetic_grid(template_run: Path, folder: Path) -> tuple[list[Path], dict]:
    """Every thesis run as a copy of ``template_run`` (metrics, timings, figures) under its name."""
    metrics = json.loads((template_run / "metrics.json").read_text())
    paths, figures = [], {}
    for run in _thesis_runs():
        target = folder / "runs" / run["model"] / f"{run['resolution']}px" / run["phase"] / f"seed{run['seed']}"
        (target / "figures").mkdir(parents=True)
        record = json.loads(json.dumps(metrics))
        record["run"] = dict(run)
        (target / "metrics.json").write_text(json.dumps(record))
        if (template_run / "speed.json").is_file():
            shutil.copy(template_run / "speed.json", target / "speed.json")
        kinds = {}
        for kind in [*FIGURE_KINDS, *(VIT_FIGURE_KINDS if run["model"].startswith("deimv2") else ())]:
            source = template_run / "figures" / f"{kind}.png"
            if source.is_file():
                shutil.copy(source, target / "figures" / f"{kind}.png")
                kinds[kind] = str(target / "figures" / f"{kind}.png")
        figures[run_label(run)] = kinds
        paths.append(target / "metrics.json")
    return paths, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--run", type=Path, help="the finished run whose files stand in for every thesis run")
    parser.add_argument("--thesis", action="store_true")
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    html = args.results / "report" / "index.html"
    if not args.thesis:
        if not html.is_file():
            sys.exit(f"{html}: no report. Fix: run the grid first (snakemake --cores 2 --resources gpu=1).")
        figures = sorted((args.results / "runs").rglob("figures/*.png"))
        print(f"{len(figures)} run figures, {sum(_megabytes(p) for p in figures):.1f} MB on disk; "
              f"{len(MULTIMODAL_FIGURE_KINDS)} multimodal kinds")
        return 0 if _describe(html, args.screenshot, DEFAULT_TARGET_MB) else 1
    run = args.run or next((p.parent for p in sorted((args.results / "runs").rglob("metrics.json"))), None)
    if run is None or not (run / "metrics.json").is_file():
        sys.exit(f"{args.results}/runs: no finished run to copy. Fix: run the default grid first, or name one with --run.")
    with tempfile.TemporaryDirectory(prefix="thesis-report-") as scratch:
        scratch = Path(scratch)
        paths, figures = _synthetic_grid(run, scratch)
        started = time.perf_counter()
        out = scratch / "report"
        render_report(metrics_paths=paths, figures=figures, out_html=out / "index.html", out_md=out / "report.md",
                      out_tables_dir=out / "tables", templates_dir=ROOT / "report" / "templates",
                      title="Thesis grid (synthetic)", preview=thesis_preview())
        print(f"thesis grid: {len(paths)} runs from {run}, rendered in {time.perf_counter() - started:.0f} s")
        return 0 if _describe(out / "index.html", args.screenshot, THESIS_TARGET_MB) else 1


if __name__ == "__main__":
    sys.exit(main())
