# Experiment tracking (optional): every finished run replayed into MLflow and/or TensorBoard.
onstart:
    if MLFLOW_ON and workflow_tracks():
        from detstudy.steps.track_run import start_parent

        start_parent(TRACKING, TRACKING_PARENT, name=f"workflow {Path.cwd().name}")


onsuccess:
    if MLFLOW_ON and workflow_tracks():
        from detstudy.steps.track_run import finish_parent

        finish_parent(TRACKING_PARENT, "FINISHED")


onerror:
    if MLFLOW_ON and workflow_tracks():
        from detstudy.steps.track_run import finish_parent

        finish_parent(TRACKING_PARENT, "FAILED")


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
