# Replay one finished run (history, test metrics, timings, figures) into MLflow and/or TensorBoard.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
from detstudy.steps.track_run import track_run

track_run(
    metrics_json=snakemake.input.metrics,
    speed_json=snakemake.input.speed,
    history_csv=snakemake.input.history,
    figures=list(snakemake.input.figures),
    settings=snakemake.params.settings,
    tracked_json=snakemake.output.tracked,
    tensorboard_dir=snakemake.output.get("tensorboard"),
    parent_json=snakemake.params.parent,
)
