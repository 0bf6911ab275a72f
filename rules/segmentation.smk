# The segmentation study (task: segmentation): the dataset (images and masks folders, or the
# synthetic demo), one training rule for the three families, one evaluation protocol, the
# bootstrap, the figures and the report. The comparisons are the shared rules/comparisons.smk;
# the helpers are rules/segmentation_common.smk.


rule generate_synthetic_masks:
    input:
        code=package_code("generate_synthetic_masks.py"),
    output:
        images=[f for split in SPLITS for f in synthetic_mask_files(split, "images")],
        masks=[f for split in SPLITS for f in synthetic_mask_files(split, "masks")],
    params:
        settings=config["dataset"].get("synthetic", {}),
        out_dir=lambda wildcards, output: str(Path(output.masks[0]).parents[2]),  # <results>/data/synthetic_masks
        kernels=cpu_kernels(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/generate_synthetic_masks.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/generate_synthetic_masks.py"


rule check_mask_split:
    input:
        images=lambda wildcards: synthetic_mask_files(wildcards.split, "images"),
        masks=lambda wildcards: synthetic_mask_files(wildcards.split, "masks"),
        code=package_code("check_mask_split.py"),
    output:
        check=dataset_check("{split}"),
    params:
        split=lambda wildcards: mask_split(wildcards.split),
        dataset=segmentation_dataset(),
        stamp=lambda wildcards: mask_split_stamp(wildcards.split),  # a replaced image or mask reruns the check
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/check_{{split}}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/check_mask_split.py"


rule mask_statistics:
    input:
        checks=dataset_checks(*SPLITS),
        code=package_code("mask_statistics.py"),
    output:
        statistics=f"{DATA_DIR}/statistics.json",
        figure=report(f"{DATA_DIR}/statistics.png", caption="../report/captions/mask_statistics.rst",
                      category="Dataset"),
    params:
        class_weights=resolved_loss(config)["class_weights"],
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/mask_statistics.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/mask_statistics.py"


rule train_segmenter:
    input:
        train_check=dataset_check("train"),
        checks=training_checks(),
        code=package_code("train_segmenter.py"),
    output:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
    params:
        splits={split: mask_split(split) for split in ("train", "val")},
        dataset=segmentation_dataset(),
        architecture=get_architecture,
        model_settings=get_model_settings,
        train_settings=get_train_settings,
        loss=resolved_loss(config),
        inference=config["evaluation"]["inference"],  # how validation predicts
        device=DEVICE,
        state_dir=run_state(),
        kernels=cpu_kernels(),
    wildcard_constraints:
        phase="base",
    threads: config["compute"]["threads"]
    priority: 1  # training first when a slot frees: evaluations and figures are short
    resources:
        **job_resources("training"),
    log:
        run_log("train.log"),
    benchmark:
        run_benchmark("train.tsv")
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train_segmenter.py"


rule evaluate_segmenter:
    input:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
        checks=dataset_checks(*SPLITS),  # the test split's, and every split's checksums (provenance)
        code=package_code("evaluate_segmenter.py"),
    output:
        metrics=run_dir("metrics.json"),
        confusions=run_dir("confusions.npz"),
        samples=run_dir("samples.npz"),
    params:
        test_split=mask_split("test"),
        run=get_run_info,
        inference=config["evaluation"]["inference"],
        palette=config["dataset"]["palette"],
        precision=config["evaluation"]["precision"],
        device=DEVICE,
        kernels=cpu_kernels(),
        run_config=get_segmentation_run_config,  # recorded in the metrics (provenance)
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
        "../scripts/evaluate_segmenter.py"


rule segmenter_latency:
    input:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
        check=dataset_check("test"),
        code=package_code("segmenter_latency.py"),
    output:
        speed=run_dir("speed.json"),
    params:
        test_split=mask_split("test"),
        run=get_run_info,
        inference=config["evaluation"]["inference"],
        palette=config["dataset"]["palette"],
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
        "../scripts/segmenter_latency.py"


rule segmentation_statistics:
    input:
        confusions=run_dir("confusions.npz"),
        metrics=run_dir("metrics.json"),
        code=package_code("segmentation_statistics.py"),
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
        "../scripts/segmentation_statistics.py"


rule segmentation_figures:
    input:
        metrics=run_dir("metrics.json"),
        history=run_dir("history.csv"),
        samples=run_dir("samples.npz"),
        code=package_code("segmentation_figures.py"),
    output:
        **{kind: report(run_dir(f"figures/{kind}.png"), caption=f"../report/captions/segmentation_{kind}.rst",
                        category="Runs", subcategory="{model} {resolution}px {phase} seed {seed}",
                        labels=run_labels(title))
           for kind, title in SEGMENTATION_FIGURE_KINDS.items()},
    params:
        test_split=mask_split("test"),
        classes=CLASSES,
        palette=config["dataset"]["palette"],
        prediction_images=config["figures"]["prediction_images"],
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        run_log("figures.log"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/segmentation_figures.py"


rule segmentation_cross_run_figures:
    input:
        metrics=expand_runs("metrics.json"),
        speed=expand_runs("speed.json"),  # read beside each metrics file
        histories=expand_runs("history.csv"),
        comparisons=COMPARISONS,
        code=package_code("segmentation_cross_run_figures.py"),
    output:
        **{kind: report(path, caption=f"../report/captions/segmentation_{kind}.rst", category="Comparison")
           for kind, path in SEGMENTATION_CROSS_RUN_FIGURES.items()},
    params:
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/cross_run_figures.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/segmentation_cross_run_figures.py"


rule segmentation_report:
    input:
        metrics=expand_runs("metrics.json"),
        speed=expand_runs("speed.json"),  # read beside each metrics file
        figures=[f for run in grid_runs() for f in segmentation_run_files(run).values()],
        statistics=f"{DATA_DIR}/statistics.json",
        statistics_figure=f"{DATA_DIR}/statistics.png",
        comparisons=COMPARISONS,
        statistics_figures=list(STATISTICS_FIGURES.values()),
        cross_run_figures=list(SEGMENTATION_CROSS_RUN_FIGURES.values()),
        templates=segmentation_templates(),
        code=package_code("segmentation_report.py"),
    output:
        html=f"{RESULTS}/report/index.html",
        markdown=f"{RESULTS}/report/report.md",
        tables=[f"{RESULTS}/report/tables/{stem}.tex" for stem in SEGMENTATION_TABLES],
    params:
        title=config["report"]["title"],
        preview_width=config["report"]["preview_width"],
        jpeg_quality=config["report"]["jpeg_quality"],
        figures={run_label(run): segmentation_run_files(run) for run in grid_runs()},
        cross_run_figures=SEGMENTATION_CROSS_RUN_FIGURES,
        statistics_figures=STATISTICS_FIGURES,
        tables={stem: f"{RESULTS}/report/tables/{stem}.tex" for stem in SEGMENTATION_TABLES},
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/segmentation_report.py"

