# Time one run's inference at batch size 1, in a job that has every core to itself.
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
from detstudy.steps.latency import latency

latency(
    checkpoint=snakemake.input.checkpoint,
    history=snakemake.input.history,
    test_split=SplitPaths.of(snakemake.input.annotations, snakemake.params.images),
    speed_path=snakemake.output.speed,
    run=snakemake.params.run,
    latency_images=snakemake.params.latency_images,
    precision=snakemake.params.precision,
    device=snakemake.params.device,
    threads=snakemake.params.kernels["threads"],  # the config's: latency at the thread count runs compute with
)
