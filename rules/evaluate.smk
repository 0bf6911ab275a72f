# Evaluation: the same protocol for every model, on the test split.


rule evaluate:
    input:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
        annotations=split_annotations("test"),
        checks=dataset_checks(*SPLITS),  # the test split's, and every split's checksums (provenance)
        code=package_code("evaluate.py"),
    output:
        metrics=run_dir("metrics.json"),
        detections=run_dir("detections.json"),
    params:
        images=split_images("test"),
        run=get_run_info,
        score_threshold=config["evaluation"]["score_threshold"],
        iou_threshold=config["evaluation"]["iou_threshold"],
        batch_size=config["evaluation"]["batch_size"],
        precision=config["evaluation"]["precision"],
        device=DEVICE,
        kernels=cpu_kernels(),
        run_config=get_run_config,  # recorded in the metrics (provenance)
    threads: config["compute"]["threads"]
    resources:
        **job_resources("evaluation"),
    log:
        run_log("evaluate.log"),
    benchmark:
        run_benchmark("evaluate.tsv")
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/evaluate.py"


rule latency:
    input:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
        annotations=split_annotations("test"),
        code=package_code("latency.py"),
    output:
        speed=run_dir("speed.json"),
    params:
        images=split_images("test"),
        run=get_run_info,
        latency_images=config["evaluation"]["latency_images"],
        precision=config["evaluation"]["precision"],
        device=DEVICE,
        kernels=cpu_kernels(),
    threads: get_every_core  # no other job runs beside the timing
    resources:
        **job_resources("evaluation"),
    log:
        run_log("latency.log"),
    benchmark:
        run_benchmark("latency.tsv")
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/latency.py"
