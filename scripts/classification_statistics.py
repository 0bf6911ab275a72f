# Bootstrap intervals of one classification run over its test images (every image's probabilities).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.classification_statistics import classification_statistics

classification_statistics(
    predictions=snakemake.input.predictions,
    metrics=snakemake.input.metrics,
    settings=snakemake.params.settings,
    statistics_path=snakemake.output.statistics,
    bootstrap_path=snakemake.output.bootstrap,
)
