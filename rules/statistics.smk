# Bootstrap intervals of each detection run over its test images (the comparisons of every cell
# are rules/comparisons.smk). The settings reach the rules through params: changing the
# resample count reruns the statistics and the report only.


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
