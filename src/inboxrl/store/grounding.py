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
from inboxrl.store import schema


@dataclass
class Grounding:
    grounded: list[Question] = field(default_factory=list)
    ungrounded: list[Question] = field(default_factory=list)
    # question id -> the cited ids that did not resolve (or resolved outside the question's scope)
    missing: dict[str, list[str]] = field(default_factory=dict)


def resolve_ids(conn: sqlite3.Connection, message_ids: list[str]) -> dict[str, int]:
    """Cited Message-ID -> stored row id, for the ids that resolve (any copy's id works)."""
    out: dict[str, int] = {}
    for mid in message_ids:
        key = mid.strip()
        if key and not key.startswith("<"):
            key = f"<{key}>"
        row = conn.execute("SELECT message_rowid FROM aliases WHERE alias = ?", (key,)).fetchone()
        if row is not None:
            out[mid] = row[0]
    return out


def _in_scope(conn: sqlite3.Connection, rowid: int, q: Question) -> bool:
    row = conn.execute(
        "SELECT 1 FROM participants p JOIN messages m ON m.id = p.message_rowid"
        " WHERE p.message_rowid = ? AND p.address = ? AND m.date_ok = 1 AND m.date < ? LIMIT 1",
        (rowid, q.inbox_address.strip().lower(), q.query_date),
    ).fetchone()
    return row is not None


def ground(db_path: str | Path, questions: str | Path | list[Question], in_scope: bool = False) -> Grounding:
    """Splits questions into grounded and not. With in_scope, a source must also lie in the question's inbox
    and
    before its date, i.e. be findable by the agent's tools."""
    qs = load_questions(questions) if isinstance(questions, (str, Path)) else list(questions)
    conn = schema.connect(str(db_path), readonly=True)
    try:
        g = Grounding()
        for q in qs:
            resolved = resolve_ids(conn, q.message_ids)
            missing = [m for m in q.message_ids if m not in resolved]
            if in_scope:
                missing += [m for m, rid in resolved.items() if not _in_scope(conn, rid, q)]
            if q.message_ids and not missing:
                g.grounded.append(q)
            else:
                g.ungrounded.append(q)
                g.missing[q.id] = missing
        return g
    finally:
        conn.close()


def grounded_questions(
    db_path: str | Path, questions_path: str | Path | list[Question], in_scope: bool = False
) -> list[Question]:
    """The questions whose source Message-IDs all resolve (via aliases) in the store at db_path."""
    return ground(db_path, questions_path, in_scope=in_scope).grounded
