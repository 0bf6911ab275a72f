# Experiment tracking (optional): every finished run replayed into MLflow and/or TensorBoard.
TRACKING = config["tracking"]
MLFLOW_ON = bool(TRACKING["mlflow"]["uri"])
TRACKING_ON = MLFLOW_ON or TRACKING["tensorboard"]
TRACKING_PARENT = f"{RESULTS}/tracking/parent.json"  # this invocation's MLflow parent run


def tracking_targets():
    return [run_tracking("tracked.json").format(**run) for run in grid_runs()] if TRACKING_ON else []


def run_figure_files(wildcards):
    kinds = [*FIGURE_KINDS, *(VIT_FIGURE_KINDS if family(wildcards.model) == "vit" else ())]
    return [run_dir(f"figures/{kind}.png").format(**wildcards) for kind in kinds]


onstart:
    if MLFLOW_ON:
        from detstudy.tracking import start_parent

        start_parent(TRACKING, TRACKING_PARENT, name=f"workflow {Path.cwd().name}")


rule track_run:
    input:
        metrics=run_dir("metrics.json"),
        speed=run_dir("speed.json"),
        history=run_dir("history.csv"),
        figures=run_figure_files,
        code=package_code("track_run.py"),
    output:
        tracked=run_tracking("tracked.json"),
        **({"tensorboard": directory(f"{RESULTS}/tensorboard/{{model}}/{{resolution}}px/{{phase}}/seed{{seed}}")}
           if TRACKING["tensorboard"] else {}),
    params:
        settings=TRACKING,
        parent=TRACKING_PARENT,
    resources:
        **job_resources("light"),
    log:
        run_log("track_run.log"),
    conda:
        "../envs/tracking.yaml"
    script:
        "../scripts/track_run.py"
