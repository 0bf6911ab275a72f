"""The three splits of every study, and how the synthetic demos of both tasks name and size them
(dependency-free: the Snakefile lists the generated files as outputs while it parses)."""

SPLITS = ("train", "val", "test")
#: Images per split of a synthetic demo when the config does not say.
DEFAULT_SPLIT_SIZES = {"train": 160, "val": 32, "test": 64}


def synthetic_stem(split: str, index: int) -> str:
    """The file stem of a demo's ``index``-th image (and mask) of ``split``."""
    return f"{split}_{index:05d}"


def synthetic_file_name(split: str, index: int) -> str:
    return synthetic_stem(split, index) + ".png"


def synthetic_split_sizes(overrides: dict[str, int] | None = None) -> dict[str, int]:
    return {**DEFAULT_SPLIT_SIZES, **(overrides or {})}
