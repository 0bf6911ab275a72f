# Every cell of the grid with its seeds pooled and the paired comparisons (any task: each run's
# statistics.json and bootstrap.npz), and their figures for the task's headline metric.


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
        metric=HEADLINE,
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/statistics_figures.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/statistics_figures.py"
