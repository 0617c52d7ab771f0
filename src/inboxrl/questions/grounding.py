"""Which questions can be answered from a given store.

A question is *grounded* in a store when every Message-ID it cites resolves, through `aliases`, to a stored
message. Question sets cite whichever copy their generator saw, and the shared corpus lacks some folders, so
most ART-E questions are not grounded; evaluation must count and report this, never assume it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from inboxrl.questions.schema import Question, load_questions
from inboxrl.store.access import Store


@dataclass
class Grounding:
    grounded: list[Question] = field(default_factory=list)
    ungrounded: list[Question] = field(default_factory=list)
    # question id -> the cited ids that did not resolve (or resolved outside the question's scope)
    missing: dict[str, list[str]] = field(default_factory=dict)


def resolve_ids(conn: sqlite3.Connection | Store, message_ids: list[str]) -> dict[str, int]:
    """Cited Message-ID -> stored row id, for the ids that resolve (any copy's id works)."""
    return Store.of(conn).resolve_many(message_ids)


def ground(db_path: str | Path, questions: str | Path | list[Question], in_scope: bool = False) -> Grounding:
    """Splits questions into grounded and not. With in_scope, a source must also lie in the question's inbox
    and before its date (the tools' own scope rule), i.e. be findable by the agent's tools."""
    qs = load_questions(questions) if isinstance(questions, (str, Path)) else list(questions)
    with Store.open(db_path) as store:
        g = Grounding()
        for q in qs:
            resolved = store.resolve_many(q.message_ids)
            missing = [m for m in q.message_ids if m not in resolved]
            if in_scope:
                missing += [m for m, rid in resolved.items()
                            if not store.visible(rid, q.inbox_address, before=q.query_date)]
            if q.message_ids and not missing:
                g.grounded.append(q)
            else:
                g.ungrounded.append(q)
                g.missing[q.id] = missing
        return g


def grounded_questions(
    db_path: str | Path, questions_path: str | Path | list[Question], in_scope: bool = False
) -> list[Question]:
    """The questions whose source Message-IDs all resolve (via aliases) in the store at db_path."""
    return ground(db_path, questions_path, in_scope=in_scope).grounded
