"""The figures the workflow draws, by file name, in report order, with their titles (no imports:
the Snakefile lists them as targets while it parses, the report lays them out)."""

#: The figures of every run (file ``figures/<kind>.png``) in report order, with their titles.
FIGURE_KINDS = {
    "training_curves": "Training curves",
    "per_class_ap": "Per-class AP",
    "pr_curves": "Precision–recall curves",
    "confusion_matrix": "Confusion matrix",
    "errors": "Where AP50 is lost (TIDE errors)",
    "predictions": "Predictions",
}

#: The multimodal extension's cross-run figures of one (model, resolution, seed): ``<kind>.png``.
MULTIMODAL_FIGURE_KINDS = {
    "similarity": "Query features vs class descriptions",
    "pair_confusion": "Class-pair confusion across runs",
}
