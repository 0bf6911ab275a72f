# Bootstrap intervals of each run over its test images, then every cell of the grid (seeds
# pooled) and the paired comparisons the report's tables need. The settings reach both rules
# through params: changing the resample count reruns the statistics and the report only.


rule run_statistics:
    input:
        detections=run_dir("detections.json"),
        metrics=run_dir("metrics.json"),
        annotations=split_annotations("test"),
        code=package_code("run_statistics.py"),
    output:
        statistics=run_dir("statistics.json"),
        bootstrap=run_dir("bootstrap.npz"),
    params:
        settings=resampling_settings(),
    resources:
        **job_resources("light"),
    log:
        run_log("statistics.log"),
    conda:
        "../envs/statistics.yaml"
    script:
        "../scripts/run_statistics.py"


rule comparisons:
    input:
        statistics=expand_runs("statistics.json"),
        bootstraps=expand_runs("bootstrap.npz"),
        code=package_code("comparisons.py"),
    output:
        comparisons=COMPARISONS,
    params:
        settings=comparison_settings(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/comparisons.log",
    conda:
        "../envs/statistics.yaml"
    script:
        "../scripts/comparisons.py"


rule statistics_figures:
    input:
        comparisons=COMPARISONS,
        code=package_code("statistics_figures.py"),
    output:
        forest=report(STATISTICS_FIGURES["forest"], caption="../report/captions/forest.rst", category="Statistics"),
        differences=report(STATISTICS_FIGURES["differences"], caption="../report/captions/differences.rst",
                           category="Statistics"),
    params:
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/statistics_figures.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/statistics_figures.py"
