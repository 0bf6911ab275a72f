"""The figures that compare runs draw each cell where its numbers put it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_report import _metrics

from detstudy.figures.cross_run import (cross_run_figures, pareto_front, plot_accuracy_cost, plot_class_heatmap,
                                        plot_validation_curves)
from detstudy.report.tables import costs_table, load_runs, per_class_table, runs_table


def test_the_pareto_front_keeps_only_the_undominated():
    costs = [10, 20, 30, 15, 40, float("nan")]
    values = [0.5, 0.6, 0.55, 0.5, 0.7, 0.9]
    assert pareto_front(costs, values) == [0, 1, 4]  # 3 ties 0 on value at a higher cost; 2 is beaten by 1


@pytest.fixture()
def runs(tmp_path):
    records = [_metrics("frcnn", "cnn", 0, 0.50, params=11_000_000, latency=80.0),
               _metrics("frcnn", "cnn", 1, 0.60, params=11_000_000, latency=82.0),
               _metrics("deim", "vit", 0, 0.70, params=9_000_000, latency=120.0, per_class_ap50=[0.95, 0.7, 0.5, 0.6])]
    paths, histories = [], []
    for i, record in enumerate(records):
        folder = tmp_path / f"run{i}"
        folder.mkdir()
        speed = {"run": record["run"], "speed": record.pop("speed"), "train_seconds": record["training"].pop("train_seconds")}
        (folder / "metrics.json").write_text(json.dumps(record))
        (folder / "speed.json").write_text(json.dumps(speed))
        (folder / "history.csv").write_text("epoch,val_AP50\n1,0.2\n2,%s\n" % (0.3 + i / 10))
        paths.append(folder / "metrics.json")
        histories.append(folder / "history.csv")
    return paths, histories


def test_each_cell_is_a_point_at_its_cost_and_accuracy(runs, tmp_path):
    loaded = load_runs(runs[0])
    table = runs_table(loaded).merge(costs_table(loaded)[["cell", "gflops"]], on="cell")
    figure = plot_accuracy_cost(table, None, tmp_path / "a.png")
    latency, gflops = figure.axes
    points = {tuple(np.round(line.get_xydata()[0], 6)) for line in latency.lines if line.get_linestyle() == "None"}
    assert (81.0, 0.55) in points and (120.0, 0.7) in points  # frcnn: the mean of its seeds
    points = {tuple(np.round(line.get_xydata()[0], 6)) for line in gflops.lines if line.get_linestyle() == "None"}
    assert (22.0, 0.55) in points and (18.0, 0.7) in points  # GFLOPs of the fixture: 2 x params (M)


def test_the_heatmap_writes_every_value(runs, tmp_path):
    per_class = per_class_table(load_runs(runs[0]), "AP50")
    figure = plot_class_heatmap(per_class, tmp_path / "h.png")
    texts = [t.get_text() for t in figure.axes[0].texts]
    assert texts.count("0.95") == 1 and len(texts) == len(per_class) * len(per_class.attrs["classes"])


def test_the_validation_curves_are_each_runs_history(runs, tmp_path):
    loaded = load_runs(runs[0])
    figure = plot_validation_curves(loaded, {str(m): str(h) for m, h in zip(*runs)}, tmp_path / "v.png")
    assert [ax.get_title() for ax in figure.axes] == ["CNN", "ViT"]
    assert [list(line.get_ydata()) for line in figure.axes[1].lines] == [[0.2, pytest.approx(0.5)]]


def test_the_step_writes_the_five_figures(runs, tmp_path):
    outputs = {kind: str(tmp_path / f"{kind}.png")
               for kind in ("accuracy_cost", "class_heatmap", "ap_by_size", "pr_by_class", "validation_curves")}
    cross_run_figures(metrics_paths=runs[0], histories=runs[1], comparisons_json=None, outputs=outputs)
    for path in outputs.values():
        assert open(path, "rb").read(4) == b"\x89PNG"
    with pytest.raises(ValueError, match="one history.csv per run"):
        cross_run_figures(metrics_paths=runs[0], histories=runs[1][:1], comparisons_json=None, outputs=outputs)


def test_the_report_shows_them_in_their_section(runs, tmp_path):
    from test_report import TEMPLATES, TINY_PNG

    from detstudy.report import render_report

    figures = []
    for kind in ("accuracy_cost", "class_heatmap"):
        (tmp_path / f"{kind}.png").write_bytes(TINY_PNG)
        figures.append(tmp_path / f"{kind}.png")
    out = tmp_path / "report"
    render_report(metrics_paths=runs[0], figures={}, out_html=out / "index.html", out_md=out / "report.md",
                  out_tables_dir=out / "tables", templates_dir=TEMPLATES, cross_run_figures=figures)
    html, md = (out / "index.html").read_text(), (out / "report.md").read_text()
    section = html.split('id="across-runs"', 1)[1].split("</section>", 1)[0]
    assert section.count("<img") == 2 and "Accuracy against latency and GFLOPs" in section
    assert '<a href="../accuracy_cost.png">' in section
    assert "![Per-class AP50 of every cell](../class_heatmap.png)" in md
