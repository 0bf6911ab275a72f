# Check the three dataset splits before any training; write statistics and their figure.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.logs import log_to

log_to(snakemake.log[0])
from detstudy.data.workflow import check_and_describe

check_and_describe(
    snakemake.params.splits,
    check_json=snakemake.output.check,
    statistics_json=snakemake.output.statistics,
    statistics_png=snakemake.output.figure,
)
