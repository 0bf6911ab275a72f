# Check one classification split (class folders or a path,label CSV) before anything reads it.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.check_image_split import check_image_split

check_image_split(
    snakemake.wildcards.split,
    snakemake.params.source,
    check_json=snakemake.output.check,
    train_check=snakemake.input.reference[0] if snakemake.input.reference else None,
    val_source=snakemake.params.val_source,
)
