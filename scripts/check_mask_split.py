# Check one segmentation split (images and masks) before anything reads it.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.check_mask_split import check_mask_split

check_mask_split(
    snakemake.wildcards.split,
    snakemake.params.split,
    classes=snakemake.params.dataset["classes"],
    ignore_index=snakemake.params.dataset["ignore_index"],
    palette=snakemake.params.dataset["palette"],
    check_json=snakemake.output.check,
)
