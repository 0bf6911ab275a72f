# Draw the figures comparing every classification run: accuracy vs cost, per-class F1 heatmap, validation curves.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.classification_cross_run_figures import classification_cross_run_figures

classification_cross_run_figures(
    metrics_paths=snakemake.input.metrics,
    histories=snakemake.input.histories,
    comparisons_json=snakemake.input.comparisons,
    outputs=dict(snakemake.output.items()),
    style=snakemake.params.style,
)
