# Per-split, per-class statistics of the checked dataset, as JSON and as a figure.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.dataset_statistics import dataset_statistics

dataset_statistics(
    snakemake.params.splits,
    statistics_json=snakemake.output.statistics,
    statistics_png=snakemake.output.figure,
)
