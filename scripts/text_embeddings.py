# Encode the class descriptions once with the frozen text encoder of the config.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.kernels import pin_kernels
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
pin_kernels(snakemake.params.kernels)  # before torch and NumPy load: they read it once
from detstudy.steps.text_embeddings import text_embeddings

text_embeddings(
    descriptions=snakemake.input.descriptions,
    annotations=snakemake.input.annotations,
    encoder=snakemake.params.encoder,
    prompt=snakemake.params.prompt,
    embeddings_path=snakemake.output.embeddings,
    prompts_path=snakemake.output.prompts,
)
