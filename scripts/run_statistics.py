# Bootstrap intervals of one run's test metrics, resampling its test images.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.run_statistics import run_statistics

run_statistics(
    detections=snakemake.input.detections,
    annotations=snakemake.input.annotations,
    metrics=snakemake.input.metrics,
    settings=snakemake.params.settings,
    statistics_path=snakemake.output.statistics,
    bootstrap_path=snakemake.output.bootstrap,
)
