# Bootstrap intervals of one segmentation run over its test images (per-image confusion matrices).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.segmentation_statistics import segmentation_statistics

segmentation_statistics(
    confusions=snakemake.input.confusions,
    metrics=snakemake.input.metrics,
    settings=snakemake.params.settings,
    statistics_path=snakemake.output.statistics,
    bootstrap_path=snakemake.output.bootstrap,
)
