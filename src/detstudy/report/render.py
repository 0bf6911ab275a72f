"""The rendered report: the view models filled into the Jinja templates of ``report/templates``.

:func:`render_report` writes ``index.html``, ``report.md`` and the LaTeX tables; what goes
into them is built by :mod:`~detstudy.report.views` (metric tables),
:mod:`~detstudy.report.data_views` (the data), :mod:`~detstudy.report.appendix` (training
and provenance) and :mod:`~detstudy.report.figure_sections` (figures).
"""

from __future__ import annotations

from pathlib import Path

from detstudy.engine.io import atomic_path, read_json
from detstudy.study.grid import multimodal_label, run_label
from detstudy.report.appendix import bootstrap_appendix, provenance_view, training_appendix
from detstudy.report.data_views import dataset_notes, prompts_view, statistics_view
from detstudy.study.figure_kinds import CROSS_RUN_FIGURE_KINDS
from detstudy.report.figure_sections import (
    FIGURE_KINDS,
    MULTIMODAL_FIGURE_KINDS,
    VIT_FIGURE_KINDS,
    Preview,
    figure_item,
    figure_sections,
    multimodal_sections,
    run_summaries,
    statistics_figure,
    without_uris,
)
from detstudy.report.findings import multimodal_findings
from detstudy.report.formatting import DASH, latex_escape, latex_numbers, latex_value, markdown_code, markdown_escape
from detstudy.report.significance import Significance
from detstudy.report.strategies import (benchmark_seconds, joint_start, strategies_view, strategy_records,
                                        strategy_sentence)
from detstudy.report.tables import (
    COST_COLUMNS,
    ERROR_COLUMNS,
    RUN_COLUMNS,
    cost_devices,
    costs_table,
    errors_table,
    family_label,
    is_phase_run,
    load_runs,
    multimodal_table,
    operating_points_table,
    per_class_table,
    runs_table,
)
from detstudy.report.outputs import LATEX_TABLES, TEMPLATES
from detstudy.report.views import metric_table, multimodal_view, operating_view, per_class_view


def environments(templates_dir):
    import jinja2

    loader = jinja2.FileSystemLoader(str(templates_dir))
    common = dict(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    html = jinja2.Environment(autoescape=True, **common)
    markdown = jinja2.Environment(autoescape=False, trim_blocks=True, lstrip_blocks=True, **common)
    markdown.filters["md"] = markdown_escape
    markdown.filters["code"] = markdown_code
    latex = jinja2.Environment(
        autoescape=False,
        block_start_string=r"\BLOCK{",
        block_end_string="}",
        variable_start_string=r"\VAR{",
        variable_end_string="}",
        comment_start_string=r"\#{",
        comment_end_string="}",
        line_statement_prefix="%%",
        line_comment_prefix="%#",
        trim_blocks=True,
        lstrip_blocks=True,
        **common,
    )
    latex.filters["tex"] = latex_escape
    latex.filters["texnum"] = latex_numbers
    latex.filters["texvalue"] = latex_value
    return html, markdown, latex


def write_rendered(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def check_templates(templates_dir, names=TEMPLATES) -> Path:
    """The templates folder the workflow passes (``report/templates`` of the checkout): given
    explicitly, never guessed from where the package is installed; every one of ``names``
    (paths relative to it) present."""
    folder = Path(templates_dir)
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"report templates folder {folder}: missing {', '.join(missing)}; pass the "
                                "workflow's report/templates folder (the report rule does)")
    return folder


def render_report(
    *,
    metrics_paths: list,
    statistics_json=None,
    statistics_png=None,
    figures: dict[str, dict[str, str]] | None = None,
    out_html,
    out_md,
    out_tables_dir,
    templates_dir,
    title: str = "Detector comparison",
    multimodal_figures: dict[str, dict[str, str]] | None = None,
    text_prompts_json=None,
    confusion_pair: list[str] | None = None,
    out_multimodal_tex=None,
    comparisons_json=None,
    statistics_figures: list | None = None,
    cross_run_figures: list | None = None,
    preview: Preview = Preview(),
    train_costs: dict[tuple, float] | None = None,
    train_gpus: dict[tuple, int] | None = None,
    expected: dict[str, dict] | None = None,
) -> None:
    """Render ``out_html`` (self-contained), ``out_md``, the :data:`LATEX_TABLES` into
    ``out_tables_dir`` (the multimodal one to ``out_multimodal_tex`` when given), with the
    templates of ``templates_dir`` (see :func:`check_templates`).

    ``figures`` maps a run label (see :func:`run_label`) to ``{kind: image path}`` with kinds
    such as ``training_curves``, ``per_class_ap``, ``pr_curves``, ``confusion_matrix``, ``errors``,
    ``predictions`` (any subset; other kinds are shown after these).

    The "Multimodal extension" section appears only when phase runs exist (see
    :func:`detstudy.report.tables.multimodal_table`): ``multimodal_figures`` maps a label such as
    ``deimv2_demo 192px seed 0`` (:func:`multimodal_label`) to ``{"similarity": png,
    "pair_confusion": png}``, ``text_prompts_json`` is the ``class_prompts.json`` of the text
    embeddings and ``confusion_pair`` the two classes whose swaps are counted. Without phase runs
    the multimodal ``.tex`` still exists (a Snakemake output) and says so in a LaTeX comment.
    ``comparisons_json`` (the comparisons step's file) gives every value of the runs, per-class
    and multimodal tables its interval, bolds only a column's significantly best value (ties are
    marked), adds the difference to the baseline, and the multimodal findings;
    ``statistics_figures`` are its figures (forest plot, differences); ``cross_run_figures`` the
    figures comparing every run (named ``<kind>.png``, see ``CROSS_RUN_FIGURE_KINDS``). Without it, a column's best
    value is bold as shown. ``preview``: how big the figures embedded in the HTML are (each links
    to its full file). ``train_costs``: each run's training wall seconds by (model, resolution,
    phase, seed), from its benchmark file, and ``train_gpus`` the GPUs it trained on (default:
    read from each run's provenance): the cost columns of the strategies table
    (:mod:`detstudy.report.strategies`); ``expected`` the plan's expected gain and hours per
    strategy (``multimodal.expected``), shown beside them. Every output is written atomically.
    """
    templates_dir = check_templates(templates_dir)
    out_html, out_md, out_tables_dir = Path(out_html), Path(out_md), Path(out_tables_dir)
    out_multimodal_tex = Path(out_multimodal_tex) if out_multimodal_tex else out_tables_dir / "multimodal.tex"
    figures = figures or {}

    runs = load_runs(metrics_paths)
    frame = runs_table(runs)
    per_class = per_class_table(runs, "AP50")
    operating = operating_points_table(runs)
    statistics = read_json(statistics_json) if statistics_json else None
    stats_png = Path(statistics_png) if statistics_png else None
    data_line, warnings = dataset_notes(runs)

    significance = Significance.load(comparisons_json)
    tables = {
        "runs": metric_table(frame, RUN_COLUMNS, key="runs", caption="Detector comparison",
                             significance=significance, baseline_metric="AP50"),
        "per_class": per_class_view(per_class, "AP50", significance),
        "operating_points": operating_view(operating, significance),
        "errors": metric_table(errors_table(runs), ERROR_COLUMNS, key="errors", caption="Where AP50 is lost (TIDE)"),
        "costs": metric_table(costs_table(runs), COST_COLUMNS, key="costs", caption="What each detector costs"),
    }
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    stats_view = statistics_view(statistics)
    appendix = training_appendix(runs)

    md_dir = out_md.parent
    multimodal = None
    if any(is_phase_run(run) for run in runs):
        multimodal = {
            "table": multimodal_view(multimodal_table(runs, "AP50", confusion_pair or None), significance),
            "findings": multimodal_findings(significance),
            **strategies_context(significance, train_costs or {}, train_gpus, runs, expected),
            "pair": list(confusion_pair or []),
            "prompts": prompts_view(text_prompts_json),
            "sections": multimodal_sections(multimodal_figures, md_dir, preview),
        }
    context = {
        "title": title,
        "tables": tables,
        "multi_seed": multi_seed,
        "n_runs": len(runs),
        "n_rows": len(frame),
        "families": [family_label(f) for f in dict.fromkeys(frame["family"].tolist())] if len(frame) else [],
        "data_line": data_line,
        "warnings": warnings,
        "statistics": stats_view,
        "sections": figure_sections(figures, runs, md_dir, run_summaries(runs), preview),
        "appendix": appendix,
        "multimodal": multimodal,
        "provenance": provenance_view(runs),
        "inference": inference_view(significance),
        "bootstrap": bootstrap_appendix(significance),
        "dash": DASH,
        "cost_devices": cost_devices(runs),
        "cpu_memory": any((r.get("speed") or {}).get("memory") == "cpu_peak_rss" for r in runs),
    }
    html_env, md_env, tex_env = environments(templates_dir)

    def across_runs(folder: Path, embed: Preview | None) -> list[dict]:
        return [figure_item(Path(path).stem, CROSS_RUN_FIGURE_KINDS.get(Path(path).stem, Path(path).stem), path,
                            folder, embed) for path in cross_run_figures or []]

    def inference_figures(folder: Path, embed: Preview | None) -> list[dict]:
        return [figure_item(Path(path).stem, title, path, folder, embed)
                for path, title in zip(statistics_figures or [], ("AP50 per run", "Differences to the baseline"))]

    html = html_env.get_template("index.html.j2").render(
        **context, statistics_figure=statistics_figure(stats_png, out_html.parent, preview),
        inference_figures=inference_figures(out_html.parent, preview),
        across_runs=across_runs(out_html.parent, preview))
    write_rendered(out_html, html)

    md_context = dict(context, statistics_figure=statistics_figure(stats_png, md_dir, None),
                      inference_figures=inference_figures(md_dir, None), across_runs=across_runs(md_dir, None))
    # the Markdown needs no embedded images: drop the data URIs it would never use
    md_context["sections"] = without_uris(context["sections"])
    if multimodal:
        md_context["multimodal"] = dict(multimodal, sections=without_uris(multimodal["sections"]))
    write_rendered(out_md, md_env.get_template("report.md.j2").render(**md_context))

    tex_context = {"tables": tables, "multi_seed": multi_seed, "data_line": data_line, "dash": DASH,
                   "multimodal": multimodal, "inference": context["inference"],
                   "cost_devices": context["cost_devices"], "cpu_memory": context["cpu_memory"]}
    for stem, template in LATEX_TABLES.items():
        path = out_multimodal_tex if stem == "multimodal" else out_tables_dir / f"{stem}.tex"
        write_rendered(path, tex_env.get_template(template).render(**tex_context))


def _run_key(run: dict) -> tuple:
    meta = run["run"]
    return meta.get("model"), meta.get("resolution"), meta.get("phase", "base"), meta.get("seed")


def strategies_context(significance: Significance | None, costs: dict[tuple, float],
                       gpus: dict[tuple, int] | None, runs: list[dict], expected: dict | None = None) -> dict:
    """The strategies table and its sentences (``strategies``, ``strategy_findings``); empty
    without comparisons or without a strategy run. Read from each run's provenance: the device
    it was trained on (one GPU per job on CUDA, the ``gpu`` resource the workflow gives a
    training job), unless ``gpus`` gives it, and where a joint run starts (its model settings)."""
    config = {_run_key(run): ((run.get("provenance") or {}).get("config") or {}) for run in runs}
    if gpus is None:
        gpus = {key: int(str(settings.get("device", "")).startswith("cuda")) for key, settings in config.items()}
    starts = {key[0]: joint_start((settings.get("phase") or {}).get("model"))
              for key, settings in config.items() if key[2] == "joint" and settings}
    records = strategy_records(significance, costs, gpus, starts, expected) if significance is not None else []
    if not records:
        return {"strategies": None, "strategy_findings": []}
    return {"strategies": strategies_view(records),
            "strategy_findings": [strategy_sentence(record, significance.alpha) for record in records]}


def inference_view(significance: Significance | None) -> dict | None:
    """How the intervals and tests were made, for the text around the tables."""
    if significance is None:
        return None
    return {"level": f"{round(100 * significance.level)}%", "alpha": f"{significance.alpha:g}",
            "method": {"basic": "basic (reverse-percentile)", "bca": "bias-corrected and accelerated (BCa)",
                       "percentile": "percentile"}[significance.method],
            "resamples": significance.resamples, "baseline": significance.baseline}


def report(*, metrics: list, statistics_json, statistics_png, runs: list[dict], multimodal_groups: list[dict],
           text_prompts_json=None, confusion_pair: list[str] | None = None, templates_dir, title: str,
           out_html, out_md, out_tables_dir, comparisons_json=None,
           statistics_figures: list | None = None, cross_run_figures: list | None = None,
           preview_width: int | None = 1000,
           jpeg_quality: int = 80, expected: dict[str, dict] | None = None) -> None:
    """The report step: every run's figures found in its folder, then :func:`render_report`.

    ``runs`` are the grid's runs, each with its results folder as ``dir`` (and ``vit``: a DEIMv2
    run, which also has the attention figures; ``benchmark``: its training job's benchmark file,
    read for the training cost); ``multimodal_groups``
    the (model, resolution, seed) groups of the multimodal extension, each with the folder of
    its cross-run figures as ``dir``; ``expected`` the plan's expectations of the strategies
    (``multimodal.expected``).
    """
    render_report(
        metrics_paths=metrics,
        statistics_json=statistics_json,
        statistics_png=statistics_png,
        figures={run_label(run): {kind: str(Path(run["dir"]) / "figures" / f"{kind}.png")
                                  for kind in [*FIGURE_KINDS, *(VIT_FIGURE_KINDS if run.get("vit") else ())]}
                 for run in runs},
        multimodal_figures={multimodal_label(group): {kind: str(Path(group["dir"]) / f"{kind}.png")
                                                      for kind in MULTIMODAL_FIGURE_KINDS}
                            for group in multimodal_groups},
        text_prompts_json=text_prompts_json,
        confusion_pair=list(confusion_pair or []) or None,
        out_html=out_html,
        out_md=out_md,
        out_tables_dir=out_tables_dir,
        templates_dir=templates_dir,
        title=title,
        comparisons_json=comparisons_json,
        statistics_figures=statistics_figures,
        cross_run_figures=cross_run_figures,
        preview=Preview(width=preview_width, jpeg_quality=jpeg_quality),
        train_costs={(run["model"], int(run["resolution"]), run["phase"], int(run["seed"])): seconds
                     for run in runs if run.get("benchmark")
                     for seconds in [benchmark_seconds(run["benchmark"])] if seconds is not None},
        expected=expected,
    )
