# Describe the checked segmentation splits: pixels and images per class, the loss's class weights.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.mask_statistics import mask_statistics

mask_statistics(
    checks=dict(zip(("train", "val", "test"), snakemake.input.checks)),
    class_weights=snakemake.params.class_weights,
    statistics_json=snakemake.output.statistics,
    statistics_png=snakemake.output.figure,
    style=snakemake.params.style,
)
