"""Training progress as plain lines, for a console that is not a terminal.

Rich draws its progress bars only on a terminal. Under `nohup`, in CI or through a pipe, `inboxrl train` would then
say nothing between "warm start on N demonstrations" and the first validation, an hour later on a CPU, and a log
could not tell a slow run from a hung one. These lines say where the run is, throttled so a log stays readable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any


def fmt(v: Any, pct: bool = False) -> str:
    """A figure for the console: a dash where a step or validation had nothing to measure."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if pct:
        return f"{100 * float(v):.1f}%"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def step_summary(data: dict[str, Any]) -> str:
    """A GRPO step's figures: the progress bar's text on a terminal, the tail of its plain line elsewhere."""
    return (f"reward {fmt(data.get('episode/reward_mean'))}  acc {fmt(data.get('episode/accuracy'), True)}  "
            f"turns {fmt(data.get('episode/avg_turns'))}  "
            f"skipped groups {int(data.get('groups/skipped', 0))}/{int(data.get('groups/total', 0))}  "
            f"{fmt(data.get('rollout/tokens_per_s'))} tok/s  {data['seconds']:.0f} s/step")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


class PlainProgress:
    """Turns the trainer's events into occasional one-line reports.

    A warm-start step is reported at its first and last step and then at most once every `every_s` seconds (the
    steps take seconds each); every GRPO step is reported, since each takes minutes."""

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self._warm_started: float | None = None
        self._warm_first_step = 0
        self._last_line: float | None = None

    def line(self, kind: str, data: dict[str, Any]) -> str | None:
        if kind == "warm_start":
            self._warm_started = self.clock()
            self._last_line = None
            return None
        if kind == "warm_start_step":
            return self._warm_step(int(data["step"]), int(data["total"]), float(data["loss"]))
        if kind == "step":
            return self._grpo_step(data)
        return None

    def _warm_step(self, step: int, total: int, loss: float) -> str | None:
        now = self.clock()
        if self._warm_started is None:  # a resumed warm start: time is measured from its first step here
            self._warm_started, self._warm_first_step = now, step
        if step != total and self._last_line is not None and now - self._last_line < self.every_s:
            return None
        self._last_line = now
        elapsed = now - self._warm_started
        done = step - self._warm_first_step
        eta = (f", about {_minutes((total - step) * elapsed / done)} left"
               if step < total and done > 0 and elapsed > 0 else "")
        return f"warm start step {step}/{total}: loss {loss:.3f}, {_minutes(elapsed)} elapsed{eta}"

    @staticmethod
    def _grpo_step(data: dict[str, Any]) -> str:
        total = data.get("max_steps")
        return f"GRPO step {data['step']}" + (f"/{total}" if total else "") + f": {step_summary(data)}"
