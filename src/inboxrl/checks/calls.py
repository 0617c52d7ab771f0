"""Repeated identical tool calls: the same search or read sent again within one episode.

A policy that loops on one call (Qwen-0.5B did in 13 of 15 episodes, docs) burns its turns; one that repeats a
refused answer until the turns run out learned that doing so costs nothing. "Identical" is the harness's own
notion (`agent.episode.call_key`: case, spacing and keyword order ignored), counted on every call the model
wrote, whether the harness ran it or refused it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from inboxrl.agent.episode import call_key
from inboxrl.checks.report import DetectorResult, result
from inboxrl.trajectory import Trajectory


def repeats(t: Trajectory) -> int:
    """How many calls of the episode repeat an earlier one."""
    keys = Counter(call_key(c.name, c.arguments) for turn in t.turns for c in turn.tool_calls)
    return sum(n - 1 for n in keys.values())


def detect(trajs: Sequence[Trajectory], ids: Sequence[str]) -> DetectorResult:
    counts = [repeats(t) for t in trajs]
    flagged = [eid for eid, n in zip(ids, counts) if n]
    return result(flagged, f"{len(flagged)} of {len(trajs)} episodes send an identical tool call again "
                           f"({sum(counts)} repeats in all); any repeat flags an episode")
