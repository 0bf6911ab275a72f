# Training: one rule per detector family (the ViT rule is the CNN rule routed to other
# models). Every hyperparameter reaches the job through params, so editing it in the
# config reruns exactly the runs that use it.


rule train_cnn:
    input:
        train=split_annotations("train"),
        val=split_annotations("val"),
        checks=training_checks(),
        code=package_code("train.py"),
    output:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
    params:
        architecture=get_architecture,
        model_settings=get_model_settings,
        train_settings=get_train_settings,
        train_images=split_images("train"),
        val_images=split_images("val"),
        device=DEVICE,
        state_dir=run_state(),
        kernels=cpu_kernels(),
    wildcard_constraints:
        model=name_pattern(family_models("cnn")),
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
        "../scripts/train.py"


use rule train_cnn as train_vit with:
    wildcard_constraints:
        model=name_pattern([m for m in family_models("vit") if m not in imported_models()]),
        phase="base",
    priority: 2  # the multimodal phases and the fusion-only run start from it: the grid's longest chain starts first


# A vanilla ViT run taken from an official DEIMv2 checkpoint (models.<name>.import_checkpoint):
# the same outputs as a training, so evaluation, figures, report and phases follow unchanged.
rule import_checkpoint:
    input:
        source=get_import_source,
        train=split_annotations("train"),
        val=split_annotations("val"),
        checks=training_checks(),
        code=package_code("import_checkpoint.py"),
    output:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
    params:
        architecture=get_architecture,
        model_settings=get_model_settings,
        train_settings=get_train_settings,
        train_images=split_images("train"),
        val_images=split_images("val"),
        device=DEVICE,
        kernels=cpu_kernels(),
    wildcard_constraints:
        model=name_pattern(imported_models()),
        phase="base",
    threads: config["compute"]["threads"]
    resources:
        **job_resources("evaluation"),
    log:
        run_log("import.log"),
    benchmark:
        run_benchmark("import.tsv")
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/import_checkpoint.py"
