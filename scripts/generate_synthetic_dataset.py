# Generate the synthetic industrial-defect demo dataset (the embedded default).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.kernels import pin_kernels
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
pin_kernels(snakemake.params.kernels)  # before torch and NumPy load: they read it once
from detstudy.steps.generate_synthetic_dataset import generate_synthetic_dataset

settings = dict(snakemake.params.settings)
out_dir = Path(snakemake.output.annotations[0]).parents[1]  # <out_dir>/annotations/<split>.json
generate_synthetic_dataset(out_dir, split_sizes=settings.pop("splits", None), **settings)
