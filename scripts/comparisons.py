# Every cell of the grid with its seeds pooled, and the paired comparisons of the report's tables.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.comparisons import comparisons

comparisons(
    statistics=snakemake.input.statistics,
    bootstraps=snakemake.input.bootstraps,
    settings=snakemake.params.settings,
    comparisons_path=snakemake.output.comparisons,
)
