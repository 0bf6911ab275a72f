# Generate the classification demo: one square crop per object of the synthetic defect world, in class folders.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.engine.kernels import pin_kernels

pin_kernels(snakemake.params.kernels)
from detstudy.steps.generate_synthetic_crops import generate_synthetic_crops

generate_synthetic_crops(snakemake.params.settings, out_dir=snakemake.output.crops)
