"""The report renderer: aggregation over seeds, and HTML / Markdown / LaTeX outputs."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from detstudy import report  # noqa: E402

TEMPLATES = ROOT / "report" / "templates"
CLASSES = ["NORMAL", "DEFORMACIONES", "ROTURA_FRACTURA", "RAYONES_ARANAZOS"]

# a 1x1 PNG
def _png(size=(4, 4), color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


TINY_PNG = _png()


COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA_TEST = "f" * 16 + "e" * 48


PINNED = {"portable": True, "applied": True, "threads": 1}


def _provenance(run_meta, *, commit=COMMIT, dirty=False, test_sha=SHA_TEST, torch="2.14.1", kernels=PINNED):
    return {
        "config": {"dataset": {"name": "defects <v2> & more"}, "model": {"architecture": run_meta["architecture"]},
                   "resolution": run_meta["resolution"], "seed": run_meta["seed"], "device": "cpu",
                   "note": "a ``` fence and a </pre> inside"},
        "git": None if commit is None else {"commit": commit, "dirty": dirty},
        "versions": {"python": "3.11.7", "detstudy": "0.1.0", "torch": torch, "numpy": "2.4.6"},
        "kernels": kernels,
        "device": {"type": "cpu", "name": "x86_64", "threads": 1,
                   "cpu_kernels": {"cpu": "AMD EPYC", "aten_capability": "AVX2", "onednn": True}},
        "dataset": {split: {"annotations": f"data/{split}.json", "annotations_sha256": sha, "images": 64,
                            "images_sha256": "a" * 64}
                    for split, sha in (("train", "b" * 64), ("val", "c" * 64), ("test", test_sha))},
    }


def _metrics(model, family, seed, ap50, *, resolution=256, phase="base", aps=0.1, per_class_ap50=None,
             params=12_345_678, latency=80.0):
    per_class_ap50 = per_class_ap50 or [0.9, 0.5, 0.3, 0.4]
    return {
        "run": {"model": model, "family": family, "architecture": f"{model}_arch",
                "resolution": resolution, "phase": phase, "seed": seed},
        "dataset": {"split": "test", "images": 64, "annotations": "data/test.json", "boxes": 131,
                    "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]},
        "coco": {"AP": ap50 / 2, "AP50": ap50, "AP75": ap50 / 3, "APs": aps, "APm": 0.35, "APl": 0.41,
                 "AR1": 0.3, "AR10": 0.42, "AR100": 0.44, "ARs": None if aps is None else 0.2,
                 "ARm": 0.45, "ARl": 0.5},
        "per_class": [{"id": i + 1, "name": n, "AP": v / 2, "AP50": v, "gt_boxes": 10}
                      for i, (n, v) in enumerate(zip(CLASSES, per_class_ap50))],
        "operating_points": {
            "iou_threshold": 0.5,
            "best_f1": {"score_threshold": 0.42, "precision": 0.7, "recall": 0.6, "f1": 0.65,
                        "tp": 70, "fp": 30, "fn": 47},
            "configured": {"score_threshold": 0.5, "precision": 0.75, "recall": 0.55, "f1": 0.63,
                           "tp": 64, "fp": 21, "fn": 53},
        },
        "params": {"total": params, "trainable": params},
        "errors": {"iou_threshold": 0.5, "background_iou": 0.1, "AP50": ap50,
                   "dAP": {"classification": 0.02, "localisation": round(0.9 - ap50, 3), "both": 0.01,
                           "duplicate": 0.001, "background": 0.07, "missed": 0.08},
                   "false_positives_dAP": 0.2, "false_negatives_dAP": 0.15,
                   "counts": {"classification": 4, "localisation": 30, "both": 2, "duplicate": 6,
                              "background": 400, "missed": 3},
                   "detections": 500, "true_positives": 60, "objects": 131},
        "speed": {"device": "cpu", "latency_ms_per_image": latency, "images_timed": 32,
                  "batch_size": 1, "threads": 2, "latency_ms_quartiles": [latency - 2, latency + 3],
                  "gflops": params / 1e6 * 2, "peak_memory_mb": 800.0 + seed, "memory": "cpu_peak_rss"},
        "training": {"epochs": 8, "best_epoch": 7, "best_val_AP50": 0.41, "best_val_AP": 0.2,
                     "train_seconds": 170.0},
        "provenance": _provenance({"architecture": f"{model}_arch", "resolution": resolution, "seed": seed}),
    }


@pytest.fixture()
def inputs(tmp_path):
    runs = {
        # written out of order on purpose: load_runs sorts
        "deimv2_s_s0": _metrics("deimv2_s", "vit", 0, 0.70, aps=None, params=9_700_000, latency=120.0,
                                per_class_ap50=[0.95, 0.7, 0.5, 0.6]),
        "frcnn_r18_s1": _metrics("frcnn_r18", "cnn", 1, 0.60, per_class_ap50=[0.9, 0.6, 0.2, 0.5]),
        "frcnn_r18_s0": _metrics("frcnn_r18", "cnn", 0, 0.50, per_class_ap50=[0.8, 0.4, 0.4, 0.3]),
        "deimv2_s_p1": _metrics("deimv2_s", "multimodal", 0, 0.72, phase="phase1", aps=None,
                                params=10_000_000, latency=125.0),
    }
    paths = []
    for name, data in runs.items():
        path = tmp_path / "runs" / name / "metrics.json"
        path.parent.mkdir(parents=True)
        # the timings live beside the metrics, as the evaluate rule writes them
        timings = {"run": data["run"], "speed": data.pop("speed"), "train_seconds": data["training"].pop("train_seconds"),
                   "train_images_per_second": 12.5, "train_peak_memory_mb": 2000.0}
        (path.parent / "speed.json").write_text(json.dumps(timings))
        path.write_text(json.dumps(data))
        paths.append(path)
    stats = {
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)],
        "splits": {
            split: {"images": 10, "boxes": 12, "empty_images": 1, "extra_key": "ignored",
                    "per_class": [{"id": i + 1, "name": n, "images": 3, "boxes": 3, "small": 1,
                                   "medium": 1, "large": 1} for i, n in enumerate(CLASSES)]}
            for split in ("test", "train", "val")
        },
        "something_else": [1, 2, 3],
    }
    stats_json = tmp_path / "data" / "statistics.json"
    stats_json.parent.mkdir()
    stats_json.write_text(json.dumps(stats))
    stats_png = tmp_path / "data" / "statistics.png"
    stats_png.write_bytes(TINY_PNG)
    figures = {}
    for name in ("frcnn_r18_s0", "deimv2_s_s0"):
        folder = tmp_path / "runs" / name
        (folder / "curves.png").write_bytes(TINY_PNG)
        (folder / "confusion.png").write_bytes(TINY_PNG)
        label = report.run_label(runs[name])
        figures[label] = {"training_curves": str(folder / "curves.png"),
                          "confusion_matrix": str(folder / "confusion.png")}
    return {"paths": paths, "stats_json": stats_json, "stats_png": stats_png, "figures": figures,
            "tmp": tmp_path}


@pytest.fixture()
def rendered(inputs):
    out = inputs["tmp"] / "results" / "report"
    report.render_report(
        metrics_paths=inputs["paths"],
        statistics_json=inputs["stats_json"],
        statistics_png=inputs["stats_png"],
        figures=inputs["figures"],
        out_html=out / "index.html",
        out_md=out / "report.md",
        out_tables_dir=out / "tables",
        templates_dir=TEMPLATES,
        title="Test comparison",
    )
    return out


def test_load_runs_sorted_and_keeps_path(inputs):
    runs = report.load_runs(inputs["paths"])
    order = [(r["run"]["family"], r["run"]["model"], r["run"]["phase"], r["run"]["seed"]) for r in runs]
    assert order == [("cnn", "frcnn_r18", "base", 0), ("cnn", "frcnn_r18", "base", 1),
                     ("vit", "deimv2_s", "base", 0), ("multimodal", "deimv2_s", "phase1", 0)]
    assert all(Path(r["metrics_path"]).name == "metrics.json" for r in runs)


def test_runs_table_aggregates_seeds(inputs):
    table = report.runs_table(report.load_runs(inputs["paths"]))
    assert len(table) == 3
    frcnn = table[table["model"] == "frcnn_r18"].iloc[0]
    assert frcnn["n_seeds"] == 2
    assert frcnn["AP50"] == pytest.approx(0.55)
    assert frcnn["AP50_std"] == pytest.approx(math.sqrt(0.005))  # sample std of 0.5, 0.6
    assert frcnn["params_M"] == pytest.approx(12.345678)
    vit = table[table["family"] == "vit"].iloc[0]
    assert vit["n_seeds"] == 1 and math.isnan(vit["AP50_std"])
    assert math.isnan(vit["APs"])  # null in the metrics stays missing


def test_per_class_table_mean_over_seeds(inputs):
    table = report.per_class_table(report.load_runs(inputs["paths"]))
    assert table.attrs["classes"] == CLASSES
    frcnn = table[table["model"] == "frcnn_r18"].iloc[0]
    assert frcnn["ROTURA_FRACTURA"] == pytest.approx(0.3)
    assert frcnn["NORMAL"] == pytest.approx(0.85)


def test_html_is_self_contained(rendered):
    html = (rendered / "index.html").read_text()
    srcs = re.findall(r"""src\s*=\s*["']([^"']*)""", html)
    assert srcs and all(s.startswith("data:") for s in srcs)
    assert "<script" not in html and "<link" not in html
    for name in ("frcnn_r18", "deimv2_s", *CLASSES):
        assert name in html
    assert "CNN" in html and "ViT" in html and "Multimodal" in html
    assert "0.550" in html and "±" in html  # the mean over the two seeds, with its std
    assert "–" in html  # APs is null for the ViT
    assert "<strong>0.720</strong>" in html  # best AP50 in bold


def test_none_renders_as_dash(inputs):
    runs = report.load_runs(inputs["paths"])
    view = report.views.metric_table(report.runs_table(runs), report.RUN_COLUMNS, key="runs", caption="")
    index = [c["label"] for c in view["columns"]].index("APs")
    vit_row = next(r for r in view["rows"] if r["family"] == "ViT")
    assert vit_row["cells"][index]["text"] == "–"


def test_markdown(rendered):
    md = (rendered / "report.md").read_text()
    assert "| Family | Model | Res. (px) | Phase | Seeds | Params (M) | mAP | AP50 |" in md
    assert "**0.720**" in md
    assert "0.550 ± 0.071" in md
    assert "ROTURA_FRACTURA" in md
    assert "test split, 64 images, 131 boxes" in md  # the box count, not the annotation file's path
    # figure links relative to the Markdown file's folder
    assert "](../../runs/frcnn_r18_s0/curves.png)" in md
    assert "](../../data/statistics.png)" in md
    assert "data:" not in md


def test_latex_tables(rendered):
    runs_tex = (rendered / "tables" / "runs.tex").read_text()
    for token in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{table}", r"\end{table}",
                  r"\caption{", r"\label{tab:runs}"):
        assert token in runs_tex
    assert r"frcnn\_r18" in runs_tex and "frcnn_r18" not in runs_tex
    bold = r"\textbf{\num[reset-text-series=false, text-series-to-math]{%s}}"
    assert bold % "0.720" in runs_tex  # best AP50
    assert r"\num[uncertainty-mode=separate]{0.550 +- 0.071}" in runs_tex  # siunitx: 0.550 ± 0.071
    assert "--" in runs_tex and "–" not in runs_tex
    # families separated by \midrule: header rule + 2 family breaks
    assert runs_tex.count(r"\midrule") == 3
    per_class = (rendered / "tables" / "per_class_ap50.tex").read_text()
    assert r"ROTURA\_FRACTURA" in per_class and "ROTURA_FRACTURA" not in per_class
    assert r"\toprule" in per_class and r"\bottomrule" in per_class
    assert r"\label{tab:per-class-ap50}" in per_class
    assert bold % "0.950" in per_class  # best NORMAL
    compile_latex(rendered / "tables")


def compile_latex(tables: Path) -> None:
    """Typeset every generated table of ``tables`` in a thesis-like document (decimal commas, as
    a Spanish thesis sets them), in a scratch folder, failing on any LaTeX error or siunitx
    warning. Skipped without pdflatex (``tests/system_packages.sh`` installs it)."""
    import shutil
    import subprocess
    import tempfile

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (tests/system_packages.sh installs it)")
    names = sorted(path.name for path in tables.glob("*.tex"))
    assert names, f"no .tex table in {tables}"
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name in names:
            shutil.copy(tables / name, scratch / name)
        inputs = "\n".join(rf"\input{{{name}}}" for name in names)
        (scratch / "thesis.tex").write_text(
            "\\documentclass{article}\n\\usepackage{booktabs,siunitx,graphicx}\n"
            "\\sisetup{output-decimal-marker={,}}\n\\begin{document}\n" + inputs + "\n\\end{document}\n")
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "thesis.tex"],
                              cwd=scratch, capture_output=True, text=True, timeout=120)
        log = (scratch / "thesis.log").read_text(errors="replace")
        assert done.returncode == 0, log[-3000:]
        assert "siunitx Warning" not in log and "Error" not in log, log[-3000:]
        assert (scratch / "thesis.pdf").stat().st_size > 0


def test_error_table(rendered):
    """The TIDE table: one row per cell, the localisation cost of the best AP50 run the lowest (bold)."""
    html, md = (rendered / "index.html").read_text(), (rendered / "report.md").read_text()
    tex = (rendered / "tables" / "errors.tex").read_text()
    assert 'id="errors"' in html and "## Where AP50 is lost" in md and r"\label{tab:errors}" in tex
    section = html.split('id="errors"', 1)[1].split("</section>", 1)[0]
    assert "<strong>0.180</strong>" in section  # 0.9 - 0.72, the best run's Loc
    runs = html.split('id="table-runs"', 1)[1].split("</table>", 1)[0]
    assert section.count("<tr") == runs.count("<tr") - runs.count('class="group"')  # one row per cell
    assert r"\num{0.020}" in tex


def test_cost_table(rendered):
    """Params, GFLOPs, latency median and IQR, memory and training cost per cell; the lowest bold."""
    html, md = (rendered / "index.html").read_text(), (rendered / "report.md").read_text()
    tex = (rendered / "tables" / "costs.tex").read_text()
    assert 'id="costs"' in html and "## What each detector costs" in md and r"\label{tab:costs}" in tex
    section = html.split('id="costs"', 1)[1].split("</section>", 1)[0]
    assert "<strong>19.4</strong>" in section  # deimv2_s: 9.7 M params x 2, the fewest GFLOPs
    assert "<strong>80.0</strong>" in section and "5.0" in section  # the lowest latency; its IQR
    assert "2.8" in section  # frcnn_r18: 170 s of training = 2.8 min
    assert "peak resident set size" in section and "on cpu" in section
    assert r"\num{12.5}" in tex


def test_latex_escape():
    assert report.latex_escape("a_b&c%d$e#f{g}h~i^j\\") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}"
    )


def test_no_temporary_files_left(rendered):
    leftovers = [p for p in rendered.rglob(".*") if p.is_file()]
    assert leftovers == []


def test_render_without_optional_inputs(inputs, tmp_path):
    out = tmp_path / "bare"
    report.render_report(metrics_paths=inputs["paths"][:1], statistics_json=None, statistics_png=None,
                         figures={}, out_html=out / "index.html", out_md=out / "report.md",
                         out_tables_dir=out / "tables", templates_dir=TEMPLATES)
    assert (out / "index.html").exists() and (out / "tables" / "runs.tex").exists()


# --------------------------------------------------------------------------------------
# provenance appendix
# --------------------------------------------------------------------------------------
def _render_with_provenance(inputs, tmp_path, name, **overrides):
    """Render the fixture's runs with a provenance block; ``overrides[run dir name]`` are _provenance kwargs."""
    for path in inputs["paths"]:
        data = json.loads(path.read_text())
        data["provenance"] = _provenance(data["run"], **overrides.get(path.parent.name, {}))
        path.write_text(json.dumps(data))
    out = tmp_path / name
    report.render_report(metrics_paths=inputs["paths"], figures={}, out_html=out / "index.html",
                         out_md=out / "report.md", out_tables_dir=out / "tables", templates_dir=TEMPLATES)
    return out


def test_provenance_appendix(inputs, tmp_path):
    out = _render_with_provenance(inputs, tmp_path, "prov", **{
        name: {"dirty": True} for name in ("deimv2_s_s0", "frcnn_r18_s1", "frcnn_r18_s0", "deimv2_s_p1")})
    html, md = (out / "index.html").read_text(), (out / "report.md").read_text()
    label = report.run_label({"model": "frcnn_r18", "resolution": 256, "phase": "base", "seed": 0})
    for text in (html, md):
        assert "Appendix: provenance" in text and "not recorded" not in text
        assert "uncommitted changes: the numbers may not be reproducible from this commit" in text
        assert "different code" not in text and "different data" not in text
        assert "2.14.1" in text and "numpy" in text and "x86_64" in text and "data/test.json" in text
    assert '<a href="#provenance">' in html
    # commit: 12 hex shown, the full one in the tooltip (HTML) or beside it (Markdown)
    assert f'<code title="{COMMIT}">{COMMIT[:12]}</code>' in html
    assert f"`{COMMIT[:12]}` (`{COMMIT}`)" in md
    # checksums: 16 hex shown with the full one in the title (HTML), in a code span (Markdown)
    assert f'<code title="{SHA_TEST}">{SHA_TEST[:16]}</code>' in html
    assert f"`{SHA_TEST}`" in md
    # the resolved configuration, one collapsed block per run, escaped
    assert html.count("<details>") == 4 and f"<summary>{label}</summary>" in html
    assert "defects &lt;v2&gt; &amp; more" in html and "&lt;/pre&gt;" in html
    assert "defects <v2>" not in html
    assert f"#### {label}" in md and "````json\n{" in md  # a fence longer than the ``` in the config
    assert '"architecture": "frcnn_r18_arch"' in md
    # nothing of it in the LaTeX tables
    assert "provenance" not in (out / "tables" / "runs.tex").read_text().lower()


def test_provenance_different_code_and_data(inputs, tmp_path):
    other = "fedcba9876543210fedcba9876543210fedcba98"
    out = _render_with_provenance(inputs, tmp_path, "mixed",
                                  deimv2_s_s0={"commit": other, "test_sha": "9" * 64, "torch": "2.15.0"},
                                  deimv2_s_p1={"commit": None})
    html, md = (out / "index.html").read_text(), (out / "report.md").read_text()
    vit = report.run_label({"model": "deimv2_s", "resolution": 256, "phase": "base", "seed": 0})
    for text in (html, md):
        assert "the runs come from different code" in text
        assert "not a git checkout" in text
        assert "different data in the test split" in text and "different data in the train split" not in text
        assert "uncommitted changes: the numbers" not in text
        assert "Set 2" in text and "2.15.0" in text
    assert f'<code title="{other}">{other[:12]}</code>: {vit}' in html
    assert f"`{other[:12]}` (`{other}`): {vit}" in md


def test_provenance_names_the_cpu_kernels_of_each_run(inputs, tmp_path):
    native = {"portable": False, "applied": False, "threads": 1}
    out = _render_with_provenance(inputs, tmp_path, "kernels", deimv2_s_s0={"kernels": native})
    vit = report.run_label({"model": "deimv2_s", "resolution": 256, "phase": "base", "seed": 0})
    for text in ((out / "index.html").read_text(), (out / "report.md").read_text()):
        assert "CPU AMD EPYC" in text and "Devices" in text
        assert "pinned CPU kernels (AVX2 code paths; the same bytes on this CPU model)" in text
        own = text.split("own CPU kernels of this machine (the same bytes here; another CPU may round differently)", 1)
        assert len(own) == 2 and own[1].lstrip(" :").startswith(vit)


def test_provenance_grouping():
    runs = [{"run": {"model": m, "resolution": 192, "phase": "base", "seed": s}, "provenance": {"git": g}}
            for m, s, g in (("a", 0, {"commit": "1", "dirty": False}), ("b", 0, None),
                            ("a", 1, {"dirty": False, "commit": "1"}))]
    groups = report.appendix.distinct_values(runs, lambda run: run["provenance"]["git"])
    assert [g["value"] for g in groups] == [{"commit": "1", "dirty": False}, None]
    assert groups[0]["runs"] == ["a · 192 px · base · seed 0", "a · 192 px · base · seed 1"]


def test_metrics_without_provenance_are_refused(inputs, tmp_path):
    """A metrics file this workflow did not write is an error naming it, not a report with a hole."""
    path = inputs["paths"][0]
    data = json.loads(path.read_text())
    del data["provenance"]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: not a metrics JSON .*'provenance'.*rerun"):
        report.load_runs(inputs["paths"])
    out = tmp_path / "refused"
    with pytest.raises(ValueError):
        report.render_report(metrics_paths=inputs["paths"], figures={}, out_html=out / "index.html",
                             out_md=out / "report.md", out_tables_dir=out / "tables", templates_dir=TEMPLATES)
    assert not out.exists()


def test_load_runs_merges_the_timings_kept_beside_each_metrics_file(inputs):
    runs = {report.run_label(run): run for run in report.load_runs(inputs["paths"])}
    assert {run["speed"]["latency_ms_per_image"] for run in runs.values()} == {80.0, 120.0, 125.0}
    assert all(run["training"]["train_seconds"] == 170.0 and run["training"]["best_epoch"] == 7
               for run in runs.values())


def test_the_tables_written_are_the_tables_the_workflow_lists(rendered):
    """rules/common.smk lists the report's outputs from LATEX_TABLES: a table the renderer writes
    beside that list would be no Snakemake output (never cleaned, never rebuilt)."""
    from detstudy.report.outputs import LATEX_TABLES

    assert sorted(p.stem for p in (rendered / "tables").iterdir()) == sorted(LATEX_TABLES)


def test_a_templates_folder_without_the_templates_is_refused_before_reading_anything(inputs, tmp_path):
    partial = tmp_path / "templates"
    partial.mkdir()
    for template in TEMPLATES.glob("*.j2"):
        if template.name != "costs_table.tex.j2":
            (partial / template.name).write_text(template.read_text())
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(partial))}: missing costs_table.tex.j2"):
        report.render_report(metrics_paths=inputs["paths"], figures={}, out_html=out / "index.html",
                             out_md=out / "report.md", out_tables_dir=out / "tables", templates_dir=partial)
    assert not out.exists()
