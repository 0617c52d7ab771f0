"""The real clean eval run committed under tests/data (see tests/data/README.md), and ways to make its episodes
trip a detector."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from inboxrl.judge.lexical import LexicalJudge
from inboxrl.scoring.reward import RewardConfig, reward
from inboxrl.scoring.score import score_trajectories
from inboxrl.trajectory import Rubric, Trajectory

CLEAN_EVAL = Path(__file__).parent / "data" / "clean-eval-qwen.jsonl.gz"


def clean_eval() -> list[Trajectory]:
    """The real episodes of Qwen2.5-Coder-0.5B on grounded kaminski questions, as `inboxrl eval` wrote them."""
    with gzip.open(CLEAN_EVAL, "rt", encoding="utf-8") as f:
        return [Trajectory.model_validate_json(line) for line in f if line.strip()]


def with_answer(t: Trajectory, answer: str) -> Trajectory:
    """The same episode ending in another answer, scored again by the lexical judge."""
    u = t.model_copy(deep=True)
    u.final_answer, u.stop_reason = answer, "answered"
    for m in u.messages:  # the final answer tool echoes the answer back, as the real tool does
        if m.role == "tool" and m.name == "return_final_answer":
            m.content = json.dumps({"answer": answer, "sources": u.final_sources})
    score_trajectories([u], LexicalJudge(), max_turns=u.rubric.max_turns if u.rubric else None)
    return u


def with_rubric(t: Trajectory, **facts: object) -> Trajectory:
    """The same episode with other rubric facts and the reward they earn (a made-up outcome, for the divergence
    and abstention checks, which read only outcomes)."""
    u = t.model_copy(deep=True)
    u.rubric = Rubric(**{**(t.rubric or Rubric()).model_dump(), **facts})
    u.reward = reward(u.rubric, RewardConfig())
    return u
