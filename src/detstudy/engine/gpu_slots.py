"""One GPU per job on a machine with several: a slot held for the job's lifetime.

Snakemake's ``--resources gpu=N`` caps how many GPU jobs run at once but never says which GPU
each gets, so without this every job would take ``cuda:0``. Each job that takes a GPU claims
one of ``compute.gpus`` (the ids to share) before torch starts: an exclusive ``flock`` on
``<locks>/gpu<id>.lock``, kept open until the process ends, then sets ``CUDA_VISIBLE_DEVICES``
to that id, so the job's ``cuda`` is its own GPU. The kernel drops the lock when the process
ends, however it ends (a killed job frees its slot at once; no stale lock files to clean).

``<locks>`` is one folder for the whole machine, so workflows started from different folders
(or by different users) wait for each other's GPUs: ``detstudy-gpu-slots`` in the temporary
folder (``tempfile.gettempdir()``, usually ``/tmp``), made writable by every user, or the folder
the environment variable ``DETSTUDY_GPU_LOCKS`` names (set it alike for workflows whose
``TMPDIR`` differs).

Under SLURM (``SLURM_JOB_ID`` set) the scheduler assigns the GPUs itself and nothing is
claimed. Imports neither torch nor NumPy.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path

log = logging.getLogger("detstudy.gpu_slots")
LOCKS_VARIABLE = "DETSTUDY_GPU_LOCKS"
SHARED = 0o1777  # every user may lock (and create) slots; sticky: none removes another's lock file


def default_locks(environ=os.environ) -> Path:
    """The machine-wide slot folder: ``$DETSTUDY_GPU_LOCKS``, else ``detstudy-gpu-slots`` in the
    temporary folder (not the working directory: two workflows must see the same locks)."""
    return Path(environ.get(LOCKS_VARIABLE) or Path(tempfile.gettempdir()) / "detstudy-gpu-slots")


def _shared_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        return
    folder.chmod(SHARED)  # mkdir's mode is cut by the umask


def _open_slot(path: Path):
    """The slot's lock file, made readable and writable by every user; opened for writing where
    allowed (to note the holder's pid), else read-only, which ``flock`` accepts."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        try:
            return open(path, "r+")
        except PermissionError:  # another user's file that only they may write
            return open(path, "r")
    os.fchmod(fd, 0o666)  # the umask would keep other users out
    return os.fdopen(fd, "r+")


_held = None  # the open lock file of this process's slot


def claim_gpu(gpus, locks: str | os.PathLike | None = None, wait_seconds: float = 3600.0,
              poll_seconds: float = 0.5, environ=os.environ) -> int | None:
    """Claim a free GPU of ``gpus`` for this process and make it the only one it sees; returns
    its id, or ``None`` when there is nothing to claim (no ``gpus``, or SLURM decides). Waits up
    to ``wait_seconds`` when every slot is held (another workflow on the same machine)."""
    global _held
    gpus = [int(g) for g in (gpus or [])]
    if not gpus or "SLURM_JOB_ID" in environ:
        return None
    if _held is not None:
        return int(environ["CUDA_VISIBLE_DEVICES"])
    folder = Path(locks) if locks else default_locks(environ)
    _shared_folder(folder)
    deadline = time.monotonic() + wait_seconds
    waited = False
    while True:
        for gpu in gpus:
            handle = _open_slot(folder / f"gpu{gpu}.lock")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            if handle.writable():
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")  # who holds it, for a person looking
                handle.flush()
            _held = handle
            environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
            log.info("holding GPU %d (slot %s) for this job", gpu, folder / f"gpu{gpu}.lock")
            return gpu
        if time.monotonic() > deadline:
            raise RuntimeError(f"no free GPU among {gpus} after {wait_seconds:.0f} s (slots in {folder}). Fix: run "
                               "with --resources gpu=N, N at most the number of ids in compute.gpus, or stop the "
                               "other workflow that holds them.")
        if not waited:
            log.warning("every GPU of %s is held by another job; waiting for one", gpus)
            waited = True
        time.sleep(poll_seconds)


def claim_for_job(config: dict) -> int | None:
    """A job's claim from the workflow config (``snakemake.config``; not a rule parameter: which
    GPU a job ran on does not change what it computes, so it reruns nothing)."""
    compute = config.get("compute") or {}
    if compute.get("device", "auto") == "cpu":
        return None
    return claim_gpu(compute.get("gpus") or [])
