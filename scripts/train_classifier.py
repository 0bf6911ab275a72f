# Fine-tune one (model, resolution, seed) classification run; keeps the best checkpoint by validation accuracy (or macro F1).
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # the package, also in conda envs
from detstudy.engine.gpu_slots import claim_for_job
from detstudy.engine.kernels import pin_kernels
from detstudy.engine.logs import log_to

log_to(snakemake.log[0])
claim_for_job(snakemake.config)  # this job's own GPU of compute.gpus, before CUDA starts
pin_kernels(snakemake.params.kernels)  # before torch and NumPy load: they read it once
from detstudy.steps.train_classifier import train_classifier

train_classifier(
    train_check=snakemake.input.train_check,
    splits=snakemake.params.splits,
    architecture=snakemake.params.architecture,
    model_settings=snakemake.params.model_settings,
    train_settings=snakemake.params.train_settings,
    label_smoothing=snakemake.params.label_smoothing,
    resolution=int(snakemake.wildcards.resolution),
    seed=int(snakemake.wildcards.seed),
    checkpoint_path=snakemake.output.checkpoint,
    history_path=snakemake.output.history,
    device=snakemake.params.device,
    threads=snakemake.params.kernels["threads"],  # the config's, not as lowered to --cores
    state_dir=snakemake.params.state_dir,  # resumes an interrupted job (snakemake --rerun-incomplete)
)
