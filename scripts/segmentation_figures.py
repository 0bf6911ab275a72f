# Draw one segmentation run's figures: training curves, overlays, confusion matrix, per-class IoU.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.segmentation_figures import segmentation_figures

segmentation_figures(
    metrics_json=snakemake.input.metrics,
    history_csv=snakemake.input.history,
    samples_npz=snakemake.input.samples,
    test_split=snakemake.params.test_split,
    classes=snakemake.params.classes,
    palette=snakemake.params.palette,
    prediction_images=snakemake.params.prediction_images,
    outputs=dict(snakemake.output.items()),
    style=snakemake.params.style,
)
