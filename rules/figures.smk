# Figures of one run; the cross-run tables and figures are the report's job.


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
        style=config["figures"],
    log:
        run_log("figures.log"),
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/run_figures.py"
