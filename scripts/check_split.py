# Check one dataset split before any job reads it; record its checksums.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.check_split import check_split

reference = snakemake.params.reference
check_split(
    snakemake.wildcards.split,
    snakemake.params.split,
    check_json=snakemake.output.check,
    reference=tuple(reference) if reference else None,
)
