# Draw where one DEIMv2 run's backbone looks and where its decoder samples, on a few test images.
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
from detstudy.steps.vit_attention import vit_attention

vit_attention(
    checkpoint=snakemake.input.checkpoint,
    test_split=SplitPaths.of(snakemake.input.annotations, snakemake.params.images),
    run=snakemake.params.run,
    backbone_png=snakemake.output.attention_backbone,
    decoder_png=snakemake.output.attention_decoder,
    images=snakemake.params.settings["images"],
    top_k=snakemake.params.settings["detections"],
    style=snakemake.params.style,
    device=snakemake.params.device,
    threads=snakemake.params.kernels["threads"],
)
