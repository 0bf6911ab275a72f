# Draw one classification run's figures: training curves, confusion matrix, per-class scores, reliability, mistakes.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.classification_figures import classification_figures

classification_figures(
    metrics_json=snakemake.input.metrics,
    history_csv=snakemake.input.history,
    predictions_npz=snakemake.input.predictions,
    prediction_images=snakemake.params.prediction_images,
    outputs=dict(snakemake.output.items()),
    style=snakemake.params.style,
)
