# Generate the synthetic industrial-defect demo dataset (the embedded default).
from pathlib import Path

from detstudy.logs import log_to

log_to(snakemake.log[0])
from detstudy.data.synthetic import generate_dataset

settings = dict(snakemake.params.settings)
generate_dataset(Path(snakemake.output.images).parent, split_sizes=settings.pop("splits", None), **settings)
