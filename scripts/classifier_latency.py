# Time one classification run's inference (nothing else running) and record its costs.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.gpu_slots import claim_for_job
from detstudy.engine.kernels import pin_kernels
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
claim_for_job(snakemake.config)
pin_kernels(snakemake.params.kernels)  # before torch and NumPy load: they read it once
from detstudy.steps.classifier_latency import classifier_latency

classifier_latency(
    checkpoint=snakemake.input.checkpoint,
    history=snakemake.input.history,
    test_split=snakemake.params.test_split,
    speed_path=snakemake.output.speed,
    run=snakemake.params.run,
    latency_images=snakemake.params.latency_images,
    precision=snakemake.params.precision,
    device=snakemake.params.device,
    threads=snakemake.params.kernels["threads"],  # the config's: latency at the thread count runs compute with
)
