"""Epoch windows of the DEIM augmentation recipe and its multi-scale sizes, without torch: the
parse-time checks, the schedule and the augmentation read one rule."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_EPOCHS = 12  # TrainSettings.epochs

# The official DEIM epoch rule, stated for N augmented epochs: start 4, flat 4 + N // 2, then
# 12 epochs without augmentation; the shortest schedule it is given for is 20 + 12 epochs,
# and shorter runs scale the start and the plain tail down with the run.
OFFICIAL_START_EPOCH = 4
OFFICIAL_NO_AUG_EPOCHS = 12
OFFICIAL_MIN_EPOCHS = 32


@dataclass(frozen=True)
class EpochWindows:
    start: int  # policy ops, mixup and copy-blend from this epoch
    flat: int  # mosaic and mixup until this epoch (the learning rate stays flat until here too)
    stop: int  # no policy op, mixup or copy-blend from this epoch on

    @classmethod
    def derive(cls, epochs: int) -> "EpochWindows":
        """The official rule from the number of epochs alone (132 -> [4, 64, 120], 102 -> [4, 49, 90])."""
        scale = min(1.0, epochs / OFFICIAL_MIN_EPOCHS)
        start = round(OFFICIAL_START_EPOCH * scale)
        stop = epochs - round(OFFICIAL_NO_AUG_EPOCHS * scale)
        return cls(start, start + stop // 2, stop)

    @classmethod
    def resolve(cls, epochs: int, given: list[int] | None) -> "EpochWindows":
        if given is None:
            return cls.derive(epochs)
        if len(given) != 3 or not 0 <= given[0] <= given[1] <= given[2] <= epochs:
            raise ValueError(f"augmentation epochs {given} must be [start, flat, stop] with "
                             f"0 <= start <= flat <= stop <= epochs ({epochs}). Fix: e.g. "
                             f"{list(cls.derive(epochs).as_tuple())}, or leave it out to derive it from epochs.")
        return cls(*given)

    def as_tuple(self) -> tuple[int, int, int]:
        return self.start, self.flat, self.stop


def multiscale_sizes(base: int, repeat: int) -> list[int]:
    """Official generate_scales: 75% to 125% of the base size in steps of 32, the base size
    ``repeat`` times in the middle (640, 20 -> 480 ... 608, 640 x 20, 800 ... 672)."""
    low, high = int(base * 0.75 / 32) * 32, int(base * 1.25 / 32) * 32
    steps = (base - low) // 32
    return [low + 32 * i for i in range(steps)] + [base] * repeat + [high - 32 * i for i in range(steps)]


