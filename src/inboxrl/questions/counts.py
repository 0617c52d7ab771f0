"""Stage counts: how many things each stage of generation saw, kept and dropped, and why.

A question file with no account of what was thrown away cannot be trusted or debugged. Every stage obeys
`seen == kept + sum(dropped)`, and each stage's `seen` is the previous stage's `kept` where units agree, so the
whole funnel adds up and a missing drop shows as a broken sum.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class StageCount(BaseModel):
    name: str
    unit: str  # "emails", "batches" or "questions"
    seen: int = 0
    kept: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)
    notes: dict[str, Any] = Field(default_factory=dict)  # non-drop facts: cache hits, salvaged outputs, ...

    def drop(self, reason: str, n: int = 1) -> None:
        if n:
            self.dropped[reason] = self.dropped.get(reason, 0) + n

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def balanced(self) -> bool:
        return self.seen == self.kept + self.total_dropped


STAGES: list[tuple[str, str]] = [
    ("selection", "emails"),
    ("generation", "batches"),
    ("validation", "questions"),
    ("realism", "questions"),
    ("dedup", "questions"),
    ("support", "questions"),
    ("per_inbox", "questions"),
]


def new_stages() -> dict[str, StageCount]:
    return {name: StageCount(name=name, unit=unit) for name, unit in STAGES}


def merge(into: dict[str, StageCount], other: dict[str, StageCount]) -> None:
    for name, s in other.items():
        t = into.setdefault(name, StageCount(name=name, unit=s.unit))
        t.seen += s.seen
        t.kept += s.kept
        for r, n in s.dropped.items():
            t.drop(r, n)
        for k, v in s.notes.items():
            if isinstance(v, (int, float)) and isinstance(t.notes.get(k, 0), (int, float)):
                t.notes[k] = t.notes.get(k, 0) + v
            else:
                t.notes[k] = v
