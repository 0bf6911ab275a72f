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

#: The ViT figures of every DEIMv2 run (rule ``vit_attention``), shown after the run's others.
VIT_FIGURE_KINDS = {
    "attention_backbone": "Where the ViT backbone looks",
    "attention_decoder": "Where the decoder samples",
}

#: The multimodal extension's cross-run figures of one (model, resolution, seed): ``<kind>.png``.
MULTIMODAL_FIGURE_KINDS = {
    "similarity": "Query features vs class descriptions",
    "pair_confusion": "Class-pair confusion across runs",
}

#: The figures that compare every run (rule ``cross_run_figures``): ``results/figures/<kind>.png``.
CROSS_RUN_FIGURE_KINDS = {
    "accuracy_cost": "Accuracy against latency and GFLOPs",
    "class_heatmap": "Per-class AP50 of every cell",
    "ap_by_size": "AP by object size",
    "pr_by_class": "Each class's precision-recall curves across cells",
    "validation_curves": "Validation curves per family",
}

#: The figures of every segmentation run (rule ``segmentation_figures``), in report order.
SEGMENTATION_FIGURE_KINDS = {
    "training_curves": "Training curves",
    "overlays": "Image, ground truth and prediction",
    "confusion_matrix": "Pixel confusion matrix",
    "per_class_iou": "Per-class IoU and Dice",
}

#: The segmentation figures that compare every run (rule ``segmentation_cross_run_figures``).
SEGMENTATION_CROSS_RUN_FIGURE_KINDS = {
    "accuracy_cost": "mIoU against latency and GFLOPs",
    "class_heatmap": "Per-class IoU of every cell",
    "validation_curves": "Validation mIoU per family",
}

#: The figures of every classification run (rule ``classification_figures``), in report order.
CLASSIFICATION_FIGURE_KINDS = {
    "training_curves": "Training curves (train vs validation)",
    "confusion_matrix": "Confusion matrix",
    "per_class_f1": "Per-class precision, recall and F1",
    "reliability": "Reliability diagram",
    "mistakes": "The most confident mistakes",
}

#: The classification figures that compare every run (rule ``classification_cross_run_figures``).
CLASSIFICATION_CROSS_RUN_FIGURE_KINDS = {
    "accuracy_cost": "Accuracy against latency and GFLOPs",
    "class_heatmap": "Per-class F1 of every cell",
    "validation_curves": "Validation accuracy per family",
}
