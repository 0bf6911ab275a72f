# Draw the figures of one run: curves, per-class AP, PR curves, confusion matrix, errors, predictions.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.run_figures import run_figures

run_figures(
    metrics_json=snakemake.input.metrics,
    detections_json=snakemake.input.detections,
    history_csv=snakemake.input.history,
    annotations=snakemake.input.annotations,
    images_dir=snakemake.params.images,
    outputs=dict(snakemake.output.items()),
    score_threshold=snakemake.params.score_threshold,
    style=snakemake.params.style,
    prediction_images=snakemake.params.prediction_images,
)
