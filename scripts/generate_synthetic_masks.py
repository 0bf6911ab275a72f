# Generate the segmentation demo: the synthetic defect images with per-pixel masks.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.generate_synthetic_masks import generate_synthetic_masks

generate_synthetic_masks(snakemake.params.settings, out_dir=snakemake.params.out_dir)
