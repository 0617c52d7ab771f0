"""The question record, in ART-E's field names so that its files and ours load the same way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field, field_validator


class Question(BaseModel):
    id: str
    question: str
    answer: str
    message_ids: list[str] = Field(default_factory=list)
    how_realistic: float | None = None
    inbox_address: str
    query_date: str  # YYYY-MM-DD: the agent acts as if today were this date; it sees only mail sent before it

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, v: object) -> str:
        return str(v)


class QuestionFileError(ValueError):
    """A question file that cannot be read; the message names the file and line."""


def load_questions(path: str | Path, limit: int | None = None) -> list[Question]:
    p = Path(path)
    if not p.exists():
        raise QuestionFileError(f"question file not found: {p}")
    out: list[Question] = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(Question.model_validate(json.loads(line)))
            except (ValueError, TypeError) as e:
                raise QuestionFileError(f"{p}:{lineno}: not a valid question record ({str(e).splitlines()[0]})") from e
            if limit is not None and len(out) >= limit:
                break
    return out


def iter_questions(path: str | Path) -> Iterator[Question]:
    yield from load_questions(path)
