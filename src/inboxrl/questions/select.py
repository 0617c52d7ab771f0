"""Which mails of an inbox the generator reads, and in which batches.

An inbox is an address: a mail belongs to it when the address is any participant (from/to/cc/bcc), as the store
defines it. Only mail with a sane date can be a source, because the question's date is derived from it and the agent
only ever sees mail with a sane date. Batches are fixed by the seed, so a re-run sends the same batches and hits the
cache.
"""

from __future__ import annotations

import random
import sqlite3
from dataclasses import dataclass, field

from inboxrl.questions.config import GenerateConfig


@dataclass
class Email:
    rowid: int
    message_id: str
    subject: str
    from_addr: str
    from_name: str
    date: str  # UTC ISO 8601
    body: str
    to: list[tuple[str, str]] = field(default_factory=list)  # (name, address) of to/cc recipients

    @property
    def day(self) -> str:
        return self.date[:10]


@dataclass
class Batch:
    inbox: str
    index: int  # position of the batch in the inbox's deterministic order
    emails: list[Email]

    @property
    def message_ids(self) -> list[str]:
        return [e.message_id for e in self.emails]

    def by_local_id(self) -> dict[int, Email]:
        """Batch-local ids are 1..n in prompt order: short numbers a small model copies reliably."""
        return {i: e for i, e in enumerate(self.emails, 1)}


@dataclass
class Selection:
    inbox: str
    in_inbox: int  # distinct mails with the address as any participant
    bad_date: int  # of those, without a sane date
    body_out_of_bounds: int  # of those with a sane date, body too short or too long
    batches: list[Batch]

    @property
    def selected(self) -> int:
        return sum(len(b.emails) for b in self.batches)


_SELECT = """
SELECT m.id, m.message_id, m.subject, m.from_addr, m.from_name, m.date, m.body
FROM messages m
WHERE m.id IN (SELECT message_rowid FROM participants WHERE address = ?)
  AND m.date_ok = 1 AND m.date IS NOT NULL
  AND length(m.body) BETWEEN ? AND ?
ORDER BY m.date, m.id
"""


def select_batches(conn: sqlite3.Connection, inbox: str, cfg: GenerateConfig) -> Selection:
    inbox = inbox.strip().lower()
    in_inbox, good_date = conn.execute(
        "SELECT count(*), coalesce(sum(m.date_ok = 1 AND m.date IS NOT NULL), 0) FROM messages m "
        "WHERE m.id IN (SELECT message_rowid FROM participants WHERE address = ?)",
        (inbox,),
    ).fetchone()
    rows = conn.execute(_SELECT, (inbox, cfg.min_body_chars, cfg.max_body_chars)).fetchall()
    emails = [Email(r[0], r[1], r[2] or "", r[3] or "", r[4] or "", r[5], r[6] or "") for r in rows]
    _attach_recipients(conn, emails)
    if cfg.order == "random":
        # Seeded per inbox, so adding an inbox to a run does not reshuffle the others (and their cache stays hot).
        random.Random(f"{cfg.seed}:{inbox}").shuffle(emails)
    batches = [
        Batch(inbox, i, emails[start : start + cfg.batch_size])
        for i, start in enumerate(range(0, len(emails), cfg.batch_size))
    ]
    if cfg.max_batches_per_inbox is not None:
        batches = batches[: cfg.max_batches_per_inbox]
    return Selection(
        inbox=inbox,
        in_inbox=int(in_inbox),
        bad_date=int(in_inbox) - int(good_date),
        body_out_of_bounds=int(good_date) - len(emails),
        batches=batches,
    )


def _attach_recipients(conn: sqlite3.Connection, emails: list[Email]) -> None:
    by_row = {e.rowid: e for e in emails}
    ids = list(by_row)
    for start in range(0, len(ids), 500):  # stay under SQLite's bound-variable limit
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            f"SELECT message_rowid, name, address FROM participants WHERE message_rowid IN ({marks}) "
            "AND role IN ('to', 'cc') ORDER BY message_rowid, role DESC, address",
            chunk,
        ):
            by_row[row[0]].to.append((row[1] or "", row[2]))
