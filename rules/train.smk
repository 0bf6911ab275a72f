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
        architecture=architecture,
        model_settings=model_settings,
        train_settings=train_settings,
        train_images=split_images("train"),
        val_images=split_images("val"),
        device=config["compute"]["device"],
        state_dir=run_state(),
        kernels=cpu_kernels(),
    wildcard_constraints:
        model=name_pattern(family_models("cnn")),
        phase="base",
    threads: config["compute"]["threads"]
    priority: 1  # training first when a slot frees: evaluations and figures are short
    resources:
        gpu=gpu_slots(),
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
        model=name_pattern(family_models("vit")),
        phase="base",
