# The dataset: the synthetic demo generator, then checks and statistics for any COCO dataset.


rule generate_synthetic_dataset:
    input:
        code=package_code("generate_dataset.py"),
    output:
        annotations=expand(f"{SYNTHETIC_DIR}/annotations/{{split}}.json", split=SPLITS),
        images=directory(f"{SYNTHETIC_DIR}/images"),
    params:
        settings=config["dataset"].get("synthetic", {}),
    log:
        f"{RESULTS}/logs/data/generate_synthetic_dataset.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/generate_dataset.py"


rule check_dataset:
    input:
        annotations=[split_annotations(s) for s in SPLITS],
        code=package_code("check_dataset.py"),
    output:
        check=dataset_check(),
        statistics=f"{DATA_DIR}/statistics.json",
        figure=report(
            f"{DATA_DIR}/statistics.png",
            caption="../report/captions/dataset_statistics.rst",
            category="Dataset",
        ),
    params:
        splits={s: {"annotations": split_annotations(s), "images": split_images(s)} for s in SPLITS},
    log:
        f"{RESULTS}/logs/data/check_dataset.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/check_dataset.py"
