"""Progress lines with throughput and ETA in the job's log."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("detstudy.train")


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Progress lines with throughput and ETA, every ``every`` iterations and at the end."""

    def __init__(self, epochs: int, total_iters: int, every: int):
        self.epochs, self.total, self.every = epochs, total_iters, every
        self.step = self.first_step = 0
        self.started = time.perf_counter()

    def update(self, epoch: int, loss: float, lr: float, images_per_second: float) -> None:
        self.step += 1
        if self.step % self.every and self.step != self.total:
            return
        elapsed = time.perf_counter() - self.started
        log.info("epoch %d/%d step %d/%d loss %.4f lr %.2e %.1f img/s elapsed %s ETA %s", epoch, self.epochs,
                 self.step, self.total, loss, lr, images_per_second, format_duration(elapsed),
                 format_duration(elapsed / (self.step - self.first_step) * (self.total - self.step)))

    def resume_at(self, step: int) -> None:
        """Continue counting after ``step`` iterations of an earlier, interrupted job."""
        self.step = self.first_step = step

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
