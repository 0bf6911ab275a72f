# The statistics figures: each cell's AP50 with its interval, and the differences to the baseline.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.statistics_figures import statistics_figures

statistics_figures(
    comparisons_json=snakemake.input.comparisons,
    forest_png=snakemake.output.forest,
    differences_png=snakemake.output.differences,
    style=snakemake.params.style,
    metric=snakemake.params.metric,
)
