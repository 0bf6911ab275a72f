# The segmentation study (task: segmentation): the dataset (images and masks folders, or the
# synthetic demo), one training rule for the three families, one evaluation protocol, the
# bootstrap, the figures and the report. The comparisons are the shared rules/comparisons.smk.
from detstudy.study.figure_kinds import SEGMENTATION_CROSS_RUN_FIGURE_KINDS, SEGMENTATION_FIGURE_KINDS
from detstudy.report.outputs import SEGMENTATION_LATEX_TABLES
from detstudy.study.grid import run_label
from detstudy.study.segmentation import (SYNTHETIC_SPLIT_SIZES, folder_stamp, resolved_loss, segmentation_classes,
                                         synthetic_files)

SYNTHETIC_MASKS = f"{RESULTS}/data/synthetic_masks"
CLASSES = segmentation_classes(config, workflow.basedir)
SEGMENTATION_TABLES = tuple(SEGMENTATION_LATEX_TABLES)


def mask_split(split):
    """A split's images and masks folders."""
    if config["dataset"]["source"] == "synthetic":
        return {"images": f"{SYNTHETIC_MASKS}/images/{split}", "masks": f"{SYNTHETIC_MASKS}/masks/{split}"}
    return dict(config["dataset"]["folders"][split])


def synthetic_mask_files(split, kind):
    """The demo generator's files of a split (known from its settings); none for a user dataset."""
    if config["dataset"]["source"] != "synthetic":
        return []
    sizes = {**SYNTHETIC_SPLIT_SIZES, **((config["dataset"].get("synthetic") or {}).get("splits") or {})}
    return synthetic_files(SYNTHETIC_MASKS, split, kind, sizes[split])


@functools.cache
def mask_split_stamp(split):
    """For a user dataset, a digest of every image and mask file's name, size and date."""
    return None if config["dataset"]["source"] == "synthetic" else folder_stamp(*mask_split(split).values())


def segmentation_dataset():
    """What every job that reads masks must know: the classes, the ignore value, the palette."""
    return {"classes": CLASSES["names"], "ignore_index": config["dataset"]["ignore_index"],
            "palette": config["dataset"]["palette"]}


def get_segmentation_run_config(wildcards):
    """A run's resolved configuration, for its metrics' provenance record."""
    return {"dataset": config["dataset"], "model": MODELS[wildcards.model], "resolution": int(wildcards.resolution),
            "seed": int(wildcards.seed), "loss": resolved_loss(config),
            "inference": config["evaluation"]["inference"], "device": config["compute"]["device"]}


def segmentation_templates():
    """The segmentation report's templates (first, so the script finds the folder) and the shared partials."""
    folder = Path(workflow.basedir, "report", "templates")
    return sorted(str(p) for p in (folder / "segmentation").glob("*.j2")) + \
        sorted(str(p) for p in folder.glob("_*.j2"))


def segmentation_run_files(run):
    return {kind: run_dir(f"figures/{kind}.png").format(**run) for kind in SEGMENTATION_FIGURE_KINDS}


SEGMENTATION_CROSS_RUN_FIGURES = {kind: f"{RESULTS}/figures/{kind}.png" for kind in SEGMENTATION_CROSS_RUN_FIGURE_KINDS}


def segmentation_targets():
    targets = expand_runs("best.pt") + expand_runs("metrics.json") + expand_runs("statistics.json")
    targets += [f for run in grid_runs() for f in segmentation_run_files(run).values()]
    return targets + [COMPARISONS, *SEGMENTATION_CROSS_RUN_FIGURES.values(), *segmentation_report_outputs()]


def segmentation_report_outputs():
    return [f"{RESULTS}/report/index.html", f"{RESULTS}/report/report.md",
            *(f"{RESULTS}/report/tables/{stem}.tex" for stem in SEGMENTATION_TABLES)]


rule generate_synthetic_masks:
    input:
        code=package_code("generate_synthetic_masks.py"),
    output:
        images=[f for split in SPLITS for f in synthetic_mask_files(split, "images")],
        masks=[f for split in SPLITS for f in synthetic_mask_files(split, "masks")],
    params:
        settings=config["dataset"].get("synthetic", {}),
        out_dir=SYNTHETIC_MASKS,
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
        device=config["compute"]["device"],
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
        sample_images=config["figures"]["prediction_images"],
        device=config["compute"]["device"],
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
        device=config["compute"]["device"],
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
