"""The judge interface: does the agent's answer say what the golden answer says?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Verdict:
    accept: bool
    reason: str = ""
    judge: str = ""  # which judge decided, for reports


class Judge(Protocol):
    name: str

    def judge(self, question: str, golden: str, candidate: str) -> Verdict: ...

    def judge_many(self, items: list[tuple[str, str, str]]) -> list[Verdict]: ...
