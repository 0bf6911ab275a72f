# The thesis report: every run's metrics and figures rendered with the Jinja templates
# in report/templates (HTML, Markdown, LaTeX). `snakemake report` builds it.


rule report:
    input:
        metrics=expand_runs("metrics.json"),
        speed=expand_runs("speed.json"),  # read beside each metrics file
        figures=[f for kind in FIGURE_KINDS for f in expand_runs(f"figures/{kind}.png")],
        vit_figures=[run_dir(f"figures/{kind}.png").format(**run) for run in vit_runs() for kind in VIT_FIGURE_KINDS],
        statistics=f"{DATA_DIR}/statistics.json",
        statistics_figure=f"{DATA_DIR}/statistics.png",
        comparisons=COMPARISONS,
        statistics_figures=list(STATISTICS_FIGURES.values()),
        cross_run_figures=list(CROSS_RUN_FIGURES.values()),
        multimodal_figures=multimodal_targets(),
        text_prompts=[text_prompts()] if MULTIMODAL else [],
        templates=report_templates(),
        code=package_code("report.py"),
    output:
        html=f"{RESULTS}/report/index.html",
        markdown=f"{RESULTS}/report/report.md",
        tables=report_tables(),
    params:
        title=config["report"]["title"],
        preview_width=config["report"]["preview_width"],
        jpeg_quality=config["report"]["jpeg_quality"],
        runs=report_runs(),  # with each training job's benchmark file (the strategies' cost), read if there:
        # as an input, a missing one would retrain its run to rebuild the report
        multimodal=[{**group, "dir": multimodal_dir().format(**group)} for group in multimodal_groups()],
        confusion_pair=(MULTIMODAL or {}).get("confusion_pair", []),
        expected=(MULTIMODAL or {}).get("expected", {}),  # the plan's, beside the strategies' numbers
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/report.py"
