# The classification study (task: classification): the dataset (class folders or CSV files, or
# the synthetic demo's crops), one training rule for the three families, one evaluation protocol,
# the bootstrap, the figures and the report. The comparisons are the shared rules/comparisons.smk;
# the helpers are rules/classification_common.smk.


rule generate_synthetic_crops:
    input:
        code=package_code("generate_synthetic_crops.py"),
    output:
        crops=directory(SYNTHETIC_CROPS),
    params:
        settings=config["dataset"].get("synthetic", {}),
        kernels=cpu_kernels(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/generate_synthetic_crops.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/generate_synthetic_crops.py"


rule check_image_split:
    input:
        crops=synthetic_crops(),
        reference=get_reference_check,
        code=package_code("check_image_split.py"),
    output:
        check=dataset_check("{split}"),
    params:
        source=lambda wildcards: SOURCES[wildcards.split],
        stamp=lambda wildcards: classification_split_stamp(wildcards.split),  # a replaced image reruns the check
        val_source=get_leakage_split,
        val_stamp=lambda wildcards: classification_split_stamp("val") if wildcards.split == "test" else None,
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/check_{{split}}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/check_image_split.py"


rule train_classifier:
    input:
        train_check=dataset_check("train"),
        checks=training_checks(),
        code=package_code("train_classifier.py"),
    output:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
    params:
        splits={split: SOURCES[split] for split in ("train", "val")},
        architecture=get_architecture,
        model_settings=get_model_settings,
        train_settings=get_train_settings,
        label_smoothing=config["loss"]["label_smoothing"],
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
        "../scripts/train_classifier.py"


rule evaluate_classifier:
    input:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
        checks=dataset_checks(*SPLITS),  # the test split's, and every split's checksums (provenance)
        code=package_code("evaluate_classifier.py"),
    output:
        metrics=run_dir("metrics.json"),
        predictions=run_dir("predictions.npz"),
    params:
        test_split=SOURCES["test"],
        run=get_run_info,
        batch_size=config["evaluation"]["batch_size"],
        precision=config["evaluation"]["precision"],
        device=DEVICE,
        kernels=cpu_kernels(),
        run_config=get_classification_run_config,  # recorded in the metrics (provenance)
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
        "../scripts/evaluate_classifier.py"


rule classifier_latency:
    input:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
        check=dataset_check("test"),
        code=package_code("classifier_latency.py"),
    output:
        speed=run_dir("speed.json"),
    params:
        test_split=SOURCES["test"],
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
        "../scripts/classifier_latency.py"


rule classification_statistics:
    input:
        predictions=run_dir("predictions.npz"),
        metrics=run_dir("metrics.json"),
        code=package_code("classification_statistics.py"),
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
        "../scripts/classification_statistics.py"


rule classification_figures:
    input:
        metrics=run_dir("metrics.json"),
        history=run_dir("history.csv"),
        predictions=run_dir("predictions.npz"),
        code=package_code("classification_figures.py"),
    output:
        **{kind: report(run_dir(f"figures/{kind}.png"), caption=f"../report/captions/classification_{kind}.rst",
                        category="Runs", subcategory="{model} {resolution}px {phase} seed {seed}",
                        labels=run_labels(title))
           for kind, title in CLASSIFICATION_FIGURE_KINDS.items()},
    params:
        prediction_images=config["figures"]["prediction_images"],
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        run_log("figures.log"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/classification_figures.py"


rule classification_cross_run_figures:
    input:
        metrics=expand_runs("metrics.json"),
        speed=expand_runs("speed.json"),  # read beside each metrics file
        histories=expand_runs("history.csv"),
        comparisons=COMPARISONS,
        code=package_code("classification_cross_run_figures.py"),
    output:
        **{kind: report(path, caption=f"../report/captions/classification_{kind}.rst", category="Comparison")
           for kind, path in CLASSIFICATION_CROSS_RUN_FIGURES.items()},
    params:
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/cross_run_figures.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/classification_cross_run_figures.py"


rule classification_report:
    input:
        metrics=expand_runs("metrics.json"),
        speed=expand_runs("speed.json"),  # read beside each metrics file
        figures=[f for run in grid_runs() for f in classification_run_files(run).values()],
        checks=dataset_checks(*SPLITS),
        comparisons=COMPARISONS,
        statistics_figures=list(STATISTICS_FIGURES.values()),
        cross_run_figures=list(CLASSIFICATION_CROSS_RUN_FIGURES.values()),
        templates=classification_templates(),
        code=package_code("classification_report.py"),
    output:
        html=f"{RESULTS}/report/index.html",
        markdown=f"{RESULTS}/report/report.md",
        tables=[f"{RESULTS}/report/tables/{stem}.tex" for stem in CLASSIFICATION_TABLES],
    params:
        title=config["report"]["title"],
        preview_width=config["report"]["preview_width"],
        jpeg_quality=config["report"]["jpeg_quality"],
        figures={run_label(run): classification_run_files(run) for run in grid_runs()},
        cross_run_figures=CLASSIFICATION_CROSS_RUN_FIGURES,
        statistics_figures=STATISTICS_FIGURES,
        tables={stem: f"{RESULTS}/report/tables/{stem}.tex" for stem in CLASSIFICATION_TABLES},
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/classification_report.py"
