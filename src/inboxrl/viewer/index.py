"""A byte-offset index of a trajectories file: the few fields the lists need, and where each line starts.

A run of 10,000 episodes is hundreds of MB of JSON. The lists (questions, outcomes, filters) need a dozen small
fields per episode; the episode page needs one whole trajectory. So each line is parsed once at start-up, its
small fields are kept with its byte offset, and the full record is re-read from disk only when one is opened.
A gzipped file (an exported run) is indexed by offsets into its decompressed bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inboxrl.trajectory import Trajectory, open_binary

# Outcomes, in the order the pages list them.
OUTCOMES = ("right", "wrong", "idk", "out_of_turns", "format_error", "unscored")
OUTCOME_LABELS = {"right": "right", "wrong": "wrong", "idk": "I don't know", "out_of_turns": "out of turns",
                  "format_error": "format error", "unscored": "not scored"}
ANSWER_CHARS = 300  # kept per episode for the text search and the list; the page shows the whole answer


@dataclass
class EpisodeRef:
    """One line of a trajectories file, as the lists need it."""

    offset: int
    question_id: str
    question: str
    model: str
    outcome: str
    answer: str
    format_errors: int
    turns: int
    reward: float | None
    episode_id: str = ""  # question_id, "#k" suffixed when the question repeats in the file (checks contract)


def outcome(rec: dict[str, Any]) -> str:
    """The episode's outcome from its rubric and stop reason (dict form: no model validation on the hot path)."""
    r = rec.get("rubric")
    stop = rec.get("stop_reason")
    if not isinstance(r, dict):
        return "format_error" if stop == "format_error" else "unscored"
    if r.get("ended_by_format_error") or stop == "format_error":
        return "format_error"
    if r.get("attempted_answer"):
        return "right" if r.get("answer_correct") else "wrong"
    if r.get("said_dont_know"):
        return "idk"
    if r.get("ran_out_of_turns") or stop in ("out_of_turns", "context_full"):
        return "out_of_turns"
    return "unscored"


def _ref(offset: int, rec: dict[str, Any]) -> EpisodeRef:
    r = rec.get("rubric") if isinstance(rec.get("rubric"), dict) else {}
    fe = r.get("format_errors") if isinstance(r, dict) else None
    reward = rec.get("reward")
    return EpisodeRef(
        offset=offset,
        question_id=str(rec.get("question_id", "")),
        question=str(rec.get("question", "")),
        model=str(rec.get("model", "")),
        outcome=outcome(rec),
        answer=str(rec.get("final_answer") or "")[:ANSWER_CHARS],
        format_errors=sum(v for v in fe.values() if isinstance(v, int)) if isinstance(fe, dict) else 0,
        turns=len(rec.get("turns") or []),
        reward=float(reward) if isinstance(reward, (int, float)) else None,
    )


@dataclass
class FileIndex:
    """Every readable line of one trajectories file; torn or broken lines are counted, not fatal."""

    path: Path
    refs: list[EpisodeRef]
    skipped: int = 0

    @classmethod
    def build(cls, path: str | Path) -> FileIndex:
        p = Path(path)
        refs: list[EpisodeRef] = []
        skipped = 0
        seen: dict[str, int] = {}
        with open_binary(p) as f:
            offset = 0
            for line in f:
                start, offset = offset, offset + len(line)
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    skipped += 1
                    continue
                if not isinstance(rec, dict):
                    skipped += 1
                    continue
                ref = _ref(start, rec)
                k = seen.get(ref.question_id, 0)
                seen[ref.question_id] = k + 1
                ref.episode_id = ref.question_id if k == 0 else f"{ref.question_id}#{k}"
                refs.append(ref)
        return cls(path=p, refs=refs, skipped=skipped)

    def load(self, ref: EpisodeRef) -> Trajectory:
        """The whole trajectory of one line, read from disk."""
        with open_binary(self.path) as f:  # a .gz one seeks by decompressing up to the line: fine for exports
            f.seek(ref.offset)
            return Trajectory.model_validate_json(f.readline())
