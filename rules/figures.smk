# Figures: those of one run, the ViT figures of a DEIMv2 run, and those comparing every run.


rule run_figures:
    input:
        metrics=run_dir("metrics.json"),
        detections=run_dir("detections.json"),
        history=run_dir("history.csv"),
        annotations=split_annotations("test"),
        code=package_code("run_figures.py"),
    output:
        training_curves=report(
            run_dir("figures/training_curves.png"),
            caption="../report/captions/training_curves.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("training curves"),
        ),
        per_class_ap=report(
            run_dir("figures/per_class_ap.png"),
            caption="../report/captions/per_class_ap.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("per-class AP"),
        ),
        pr_curves=report(
            run_dir("figures/pr_curves.png"),
            caption="../report/captions/pr_curves.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("precision-recall"),
        ),
        confusion_matrix=report(
            run_dir("figures/confusion_matrix.png"),
            caption="../report/captions/confusion_matrix.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("confusion matrix"),
        ),
        errors=report(
            run_dir("figures/errors.png"),
            caption="../report/captions/errors.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("errors"),
        ),
        predictions=report(
            run_dir("figures/predictions.png"),
            caption="../report/captions/predictions.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("predictions"),
        ),
    params:
        images=split_images("test"),
        score_threshold=config["evaluation"]["score_threshold"],
        prediction_images=config["figures"]["prediction_images"],
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        run_log("figures.log"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/run_figures.py"


rule vit_attention:
    input:
        checkpoint=run_dir("best.pt"),
        annotations=split_annotations("test"),
        check=dataset_check("test"),  # an edited test image redraws the figures drawn on it
        code=package_code("vit_attention.py"),
    output:
        attention_backbone=report(
            run_dir("figures/attention_backbone.png"),
            caption="../report/captions/attention_backbone.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("backbone attention"),
        ),
        attention_decoder=report(
            run_dir("figures/attention_decoder.png"),
            caption="../report/captions/attention_decoder.rst",
            category="Runs",
            subcategory="{model} {resolution}px {phase} seed {seed}",
            labels=run_labels("decoder sampling"),
        ),
    wildcard_constraints:
        model=name_pattern(family_models("vit")),
    params:
        images=split_images("test"),
        run=get_run_info,
        settings=config["figures"]["attention"],
        style=plot_style(),
        device=DEVICE,
        kernels=cpu_kernels(),
    threads: config["compute"]["threads"]
    resources:
        **job_resources("evaluation"),
    log:
        run_log("vit_attention.log"),
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/vit_attention.py"


rule cross_run_figures:
    input:
        metrics=expand_runs("metrics.json"),
        speed=expand_runs("speed.json"),  # read beside each metrics file
        histories=expand_runs("history.csv"),
        comparisons=COMPARISONS,
        code=package_code("cross_run_figures.py"),
    output:
        **{kind: report(path, caption=f"../report/captions/{kind}.rst", category="Comparison")
           for kind, path in CROSS_RUN_FIGURES.items()},
    params:
        style=plot_style(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/cross_run_figures.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/cross_run_figures.py"
