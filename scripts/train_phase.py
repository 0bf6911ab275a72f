# Fine-tune one multimodal run (a phase, the fusion-only run or a control) from the best checkpoint of the run before it.
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
from detstudy.steps.train_phase import train_phase

train_phase(
    phase=snakemake.wildcards.phase,
    start_from=snakemake.input.start,
    embeddings=snakemake.input.embeddings[0] if snakemake.input.embeddings else None,
    fusion=snakemake.params.fusion,  # temperature, shuffle_seed: only where the fusion is attached
    train_settings=snakemake.params.train_settings,
    train_split=SplitPaths.of(snakemake.input.train, snakemake.params.train_images),
    val_split=SplitPaths.of(snakemake.input.val, snakemake.params.val_images),
    resolution=int(snakemake.wildcards.resolution),
    seed=int(snakemake.wildcards.seed),
    checkpoint_path=snakemake.output.checkpoint,
    history_path=snakemake.output.history,
    device=snakemake.params.device,
    threads=snakemake.params.kernels["threads"],  # the config's, not as lowered to --cores
    state_dir=snakemake.params.state_dir,  # resumes an interrupted job (snakemake --rerun-incomplete)
)
