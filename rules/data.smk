# The dataset: the synthetic demo generator, then one check per split and the statistics.


rule generate_synthetic_dataset:
    input:
        code=package_code("generate_synthetic_dataset.py"),
    output:
        annotations=expand(f"{SYNTHETIC_DIR}/annotations/{{split}}.json", split=SPLITS),
        images=[path for split in SPLITS for path in split_image_files(split)],
    params:
        settings=config["dataset"].get("synthetic", {}),
        kernels=cpu_kernels(),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/generate_synthetic_dataset.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/generate_synthetic_dataset.py"


rule check_split:
    input:
        annotations=lambda wildcards: split_annotations(wildcards.split),
        images=lambda wildcards: split_image_files(wildcards.split),
        reference=get_reference_annotations,
        code=package_code("check_split.py"),
    output:
        check=dataset_check("{split}"),
    params:
        split=lambda wildcards: {"annotations": split_annotations(wildcards.split), "images": split_images(wildcards.split)},
        reference=get_check_reference,
        image_stamp=lambda wildcards: split_image_stamp(wildcards.split),  # a replaced image reruns the check
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/check_{{split}}.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/check_split.py"


rule dataset_statistics:
    input:
        checks=dataset_checks(*SPLITS),
        annotations=[split_annotations(s) for s in SPLITS],
        code=package_code("dataset_statistics.py"),
    output:
        statistics=f"{DATA_DIR}/statistics.json",
        figure=report(
            f"{DATA_DIR}/statistics.png",
            caption="../report/captions/dataset_statistics.rst",
            category="Dataset",
        ),
    params:
        splits={s: {"annotations": split_annotations(s), "images": split_images(s)} for s in SPLITS},
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/data/dataset_statistics.log",
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/dataset_statistics.py"
