"""Which process this is, before and after the trainer's accelerator exists.

torchrun and accelerate set RANK (global) for every process; only rank 0 prints progress and writes run records,
so a run directory looks the same whatever the number of processes.
"""

from __future__ import annotations

import os


def process_rank() -> int:
    """The global rank from the launcher's environment; 0 when not launched as several processes."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def is_main_process() -> bool:
    return process_rank() == 0
