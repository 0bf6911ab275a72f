"""Logging for workflow jobs: everything a job says goes to its rule's log file."""

from __future__ import annotations

import logging
import sys
import warnings


def log_to(path: str) -> None:
    """Send stderr, warnings and the ``detstudy`` loggers to ``path`` (line-buffered, so `tail -f` works)."""
    sys.stderr = open(path, "w", buffering=1)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.captureWarnings(True)
    warnings.simplefilter("default")
