# Evaluate one classification run on the test split: every image's probabilities, every metric from them.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.gpu_slots import claim_for_job
from detstudy.engine.kernels import pin_kernels
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
claim_for_job(snakemake.config)
pin_kernels(snakemake.params.kernels)
from detstudy.steps.evaluate_classifier import evaluate_classifier

evaluate_classifier(
    checkpoint=snakemake.input.checkpoint,
    history=snakemake.input.history,
    test_split=snakemake.params.test_split,
    run=snakemake.params.run,
    metrics_path=snakemake.output.metrics,
    predictions_path=snakemake.output.predictions,
    batch_size=snakemake.params.batch_size,
    precision=snakemake.params.precision,
    device=snakemake.params.device,
    threads=snakemake.params.kernels["threads"],
    run_config=snakemake.params.run_config,
    checks=dict(zip(("train", "val", "test"), snakemake.input.checks)),
)
