# Evaluate one run's best checkpoint on the test split with the common COCO protocol.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.gpu_slots import claim_for_job
from detstudy.engine.kernels import pin_kernels
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
claim_for_job(snakemake.config)  # this job's own GPU of compute.gpus, before CUDA starts
pin_kernels(snakemake.params.kernels)  # before torch and NumPy load: they read it once
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.steps.evaluate import evaluate

evaluate(
    checkpoint=snakemake.input.checkpoint,
    history=snakemake.input.history,
    test_split=SplitPaths.of(snakemake.input.annotations, snakemake.params.images),
    metrics_path=snakemake.output.metrics,
    detections_path=snakemake.output.detections,
    run=snakemake.params.run,
    score_threshold=snakemake.params.score_threshold,
    iou_threshold=snakemake.params.iou_threshold,
    batch_size=snakemake.params.batch_size,
    precision=snakemake.params.precision,
    device=snakemake.params.device,
    threads=snakemake.params.kernels["threads"],  # the config's, not as lowered to --cores
    run_config=snakemake.params.run_config,
    checks={Path(path).stem: path for path in snakemake.input.checks},  # results/data/checks/<split>.json
)
