"""Turning parsed items into candidate questions, or into counted drops with a reason.

Each rule is a reason a question would poison training or evaluation: a cited id outside the batch means the
model invented its source, an empty answer cannot be judged, no source means the answer cannot be checked. An item
gets exactly one reason (the first rule it breaks), so stage counts add up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from inboxrl.questions.parse import QUESTION_KEYS
from inboxrl.questions.select import Batch, Email


class DropReason(str, Enum):
    # whole model outputs (unit: batch)
    BACKEND_ERROR = "backend_error"
    UNPARSEABLE = "unparseable_output"
    # single items (unit: question)
    NOT_AN_OBJECT = "not_an_object"
    EMPTY_QUESTION = "empty_question"
    EMPTY_ANSWER = "empty_answer"
    NO_SOURCE_IDS = "no_source_ids"
    UNKNOWN_SOURCE_ID = "unknown_source_id"
    BAD_HOW_REALISTIC = "bad_how_realistic"
    # later stages
    UNSUPPORTED = "unsupported"
    SUPPORT_CHECK_FAILED = "support_check_failed"
    BELOW_REALISM_THRESHOLD = "below_realism_threshold"
    NEAR_DUPLICATE = "near_duplicate"
    OVER_PER_INBOX = "over_per_inbox"


_ANSWER_KEYS = ("answer", "a", "ans")
_SOURCE_KEYS = ("source_ids", "sources", "source", "source_id", "ids", "email_ids", "email_id", "emails",
                "message_ids", "source_emails")
_REALISM_KEYS = ("how_realistic", "realism", "realistic", "how realistic", "realism_score", "score")
_LOCAL_ID = re.compile(r"^\s*(?:email|id|#|no\.?)?\s*#?\s*(\d{1,4})\s*$", re.IGNORECASE)


@dataclass
class Candidate:
    """A question that passed validation, with its sources already mapped back to Message-IDs."""

    inbox: str
    question: str
    answer: str
    how_realistic: float
    sources: list[Email]
    batch_index: int
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def message_ids(self) -> list[str]:
        return [e.message_id for e in self.sources]


@dataclass
class Rejected:
    reason: DropReason
    inbox: str
    batch_index: int
    item: Any
    detail: str = ""


def _get(d: dict[str, Any], keys: tuple[str, ...]) -> tuple[bool, Any]:
    lowered = {str(k).strip().lower(): v for k, v in d.items()}
    for k in keys:
        if k in lowered:
            return True, lowered[k]
    return False, None


def _text(v: Any) -> str:
    if isinstance(v, str):
        return " ".join(v.split())
    if isinstance(v, bool) or v is None:
        return ""
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, list) and all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v):
        return ", ".join(_text(x) for x in v if _text(x))
    return ""


def _local_ids(v: Any) -> list[int | str] | None:
    """Cited ids as ints where they read as a batch-local number; anything else is kept as a string (invalid)."""
    if v is None:
        return None
    if not isinstance(v, list):
        v = [v]
    out: list[int | str] = []
    for x in v:
        if isinstance(x, bool):
            out.append(str(x))
        elif isinstance(x, int):
            out.append(x)
        elif isinstance(x, float) and x.is_integer():
            out.append(int(x))
        elif isinstance(x, str):
            parts = [p for p in re.split(r"[,;]", x) if p.strip()] if ("," in x or ";" in x) else [x]
            for p in parts:
                m = _LOCAL_ID.match(p)
                out.append(int(m.group(1)) if m else p.strip())
        else:
            out.append(repr(x))
    return out


def realism_score(v: Any) -> float | None:
    """0..1 as asked; a 0-10 or percent scale is rescaled because small models use them; anything else is None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        s = v.strip().rstrip("%")
        try:
            v = float(s)
        except ValueError:
            return None
    if not isinstance(v, (int, float)) or math.isnan(v) or v < 0:
        return None
    v = float(v)
    if v <= 1:
        return v
    if v <= 10:
        return v / 10
    if v <= 100:
        return v / 100
    return None


def validate_items(batch: Batch, items: list[Any]) -> tuple[list[Candidate], list[Rejected]]:
    emails = batch.by_local_id()
    kept: list[Candidate] = []
    dropped: list[Rejected] = []

    def drop(reason: DropReason, item: Any, detail: str = "") -> None:
        dropped.append(Rejected(reason, batch.inbox, batch.index, item, detail))

    for item in items:
        if not isinstance(item, dict):
            drop(DropReason.NOT_AN_OBJECT, item, type(item).__name__)
            continue
        question = _text(_get(item, QUESTION_KEYS)[1])
        answer = _text(_get(item, _ANSWER_KEYS)[1])
        has_sources, raw_sources = _get(item, _SOURCE_KEYS)
        ids = _local_ids(raw_sources) if has_sources else None
        if not question:
            drop(DropReason.EMPTY_QUESTION, item)
            continue
        if not answer:
            drop(DropReason.EMPTY_ANSWER, item)
            continue
        if not ids:
            drop(DropReason.NO_SOURCE_IDS, item)
            continue
        unknown = [i for i in ids if not isinstance(i, int) or i not in emails]
        if unknown:
            drop(DropReason.UNKNOWN_SOURCE_ID, item, f"cited {unknown!r}, batch has 1..{len(emails)}")
            continue
        score = realism_score(_get(item, _REALISM_KEYS)[1])
        if score is None:
            drop(DropReason.BAD_HOW_REALISTIC, item, repr(_get(item, _REALISM_KEYS)[1]))
            continue
        seen: list[int] = []
        for i in ids:
            if isinstance(i, int) and i not in seen:
                seen.append(i)
        kept.append(Candidate(batch.inbox, question, answer, score, [emails[i] for i in seen], batch.index, item))
    return kept, dropped
