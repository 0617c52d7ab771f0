"""Our per-step figures (rollout stats, step time, memory), averaged per logging step and merged into the trainer's
log record through the public `Trainer.log` (see `trainer._trainer_class`), not through TRL's private `_metrics`."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any


class MetricBuffer:
    def __init__(self) -> None:
        self._values: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}

    def add(self, mode: str, stats: dict[str, Any]) -> None:
        """Keeps each number for the next log record; None and NaN are left out (JSON loggers cannot take NaN)."""
        for k, v in stats.items():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                continue
            self._values[mode][k].append(float(v))

    def drain(self, mode: str) -> dict[str, float]:
        """The mean of each figure since the last record, then forgets them."""
        out = {k: sum(vs) / len(vs) for k, vs in self._values[mode].items() if vs}
        self._values[mode].clear()
        return out


def buffer_of(trainer: Any) -> MetricBuffer | None:
    """The buffer of our trainer subclass; None for anything else (tests and offline use pass a stand-in or None)."""
    buf = getattr(trainer, "inboxrl_metrics", None)
    return buf if isinstance(buf, MetricBuffer) else None
