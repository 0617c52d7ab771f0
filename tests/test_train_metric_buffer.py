"""Our per-step figures join the trainer's log records through the public `log`, averaged per logging step."""

from __future__ import annotations

import math

from inboxrl.training.metric_buffer import MetricBuffer, buffer_of


def test_metric_buffer_averages_per_record_skips_nan_and_forgets() -> None:
    b = MetricBuffer()
    b.add("train", {"time/step_wall_s": 2.0, "episode/accuracy": math.nan, "x": None})
    b.add("train", {"time/step_wall_s": 4.0})
    b.add("eval", {"episode/accuracy": 0.5})
    assert b.drain("train") == {"time/step_wall_s": 3.0}
    assert b.drain("train") == {}  # forgotten once logged
    assert b.drain("eval") == {"episode/accuracy": 0.5}


def test_buffer_of_only_finds_our_trainers_buffer() -> None:
    class Ours:
        inboxrl_metrics = MetricBuffer()

    assert buffer_of(Ours()) is Ours.inboxrl_metrics
    assert buffer_of(None) is None and buffer_of(object()) is None
