# Draw the multimodal extension's cross-run figures of one (model, resolution, seed): text similarity
# per text run, and the confusion of the configured class pair from vanilla through controls and phases.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.multimodal_figures import multimodal_figures

multimodal_figures(
    metrics_paths=list(snakemake.input.metrics),
    phases=list(snakemake.params.phases),
    pair=list(snakemake.params.pair),
    similarity_png=snakemake.output.similarity,
    pair_confusion_png=snakemake.output.pair_confusion,
    style=snakemake.params.style,
)
