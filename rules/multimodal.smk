# The multimodal extension: class descriptions -> text embeddings (once) -> the study's three
# strategies and their controls (src/detstudy/study/chain.py): the phases and the fusion-only
# run fine-tuned from the best checkpoint of the run before them (so retraining the vanilla
# model reruns them), the joint run trained from the model's initial weights.


rule text_embeddings:
    input:
        descriptions=descriptions_file() if MULTIMODAL else [],
        annotations=split_annotations("train"),
        checks=dataset_checks("train"),
        code=package_code("text_embeddings.py"),
    output:
        embeddings=text_embeddings(),
        prompts=text_prompts(),
    params:
        encoder=MULTIMODAL["text_encoder"] if MULTIMODAL else {},
        prompt=get_multimodal_prompt,
        kernels=cpu_kernels(),
    priority: 3  # seconds of work that can fail on a description: before hours of training (the joint run needs it)
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/text_embeddings.log",
    benchmark:
        f"{RESULTS}/benchmarks/text_embeddings.tsv"
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/text_embeddings.py"


rule train_phase:
    input:
        start=get_phase_start,
        embeddings=get_phase_embeddings,
        train=split_annotations("train"),
        val=split_annotations("val"),
        checks=training_checks(),
        code=package_code("train_phase.py"),
    output:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
    params:
        train_settings=get_phase_train_settings,
        fusion=get_phase_fusion,
        train_images=split_images("train"),
        val_images=split_images("val"),
        device=DEVICE,
        state_dir=run_state(),
        kernels=cpu_kernels(),
    wildcard_constraints:
        model=name_pattern(multimodal_models()),
        phase=name_pattern(finetuned_phases()),
    threads: config["compute"]["threads"]
    priority: 1
    resources:
        **job_resources("training"),
    log:
        run_log("train.log"),
    benchmark:
        run_benchmark("train.tsv")
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train_phase.py"


rule train_joint:
    input:
        embeddings=get_phase_embeddings,
        train=split_annotations("train"),
        val=split_annotations("val"),
        checks=training_checks(),
        code=package_code("train_joint.py"),
    output:
        checkpoint=run_dir("best.pt"),
        history=run_dir("history.csv"),
    params:
        architecture=get_architecture,
        model_settings=get_phase_model_settings,
        train_settings=get_phase_train_settings,
        fusion=get_phase_fusion,
        train_images=split_images("train"),
        val_images=split_images("val"),
        device=DEVICE,
        state_dir=run_state(),
        kernels=cpu_kernels(),
    wildcard_constraints:
        model=name_pattern(multimodal_models()),
        phase=name_pattern(joint_phases()),
    threads: config["compute"]["threads"]
    priority: 2  # a whole training, like the vanilla run: the longest chains start first
    resources:
        **job_resources("training"),
    log:
        run_log("train.log"),
    benchmark:
        run_benchmark("train.tsv")
    conda:
        "../envs/torch.yaml"
    script:
        "../scripts/train_joint.py"


rule multimodal_figures:
    input:
        metrics=get_chain_metrics,
        code=package_code("multimodal_figures.py"),
    output:
        similarity=report(
            multimodal_dir("similarity.png"),
            caption="../report/captions/text_similarity.rst",
            category="Multimodal",
            subcategory="{model} {resolution}px seed {seed}",
            labels={"model": "{model}", "resolution": "{resolution}", "seed": "{seed}", "figure": "text similarity"},
        ),
        pair_confusion=report(
            multimodal_dir("pair_confusion.png"),
            caption="../report/captions/pair_confusion.rst",
            category="Multimodal",
            subcategory="{model} {resolution}px seed {seed}",
            labels={"model": "{model}", "resolution": "{resolution}", "seed": "{seed}", "figure": "pair confusion"},
        ),
    params:
        phases=["base"] + phase_names(),
        pair=(MULTIMODAL or {}).get("confusion_pair", []),
        style=plot_style(),
    wildcard_constraints:
        model=name_pattern(multimodal_models()),
    resources:
        **job_resources("light"),
    log:
        f"{RESULTS}/logs/multimodal/{{model}}/{{resolution}}px/seed{{seed}}/figures.log",
    conda:
        "../envs/report.yaml"
    script:
        "../scripts/multimodal_figures.py"
