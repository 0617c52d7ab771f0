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
from inboxrl.store.access import Store


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


def select_batches(conn: sqlite3.Connection | Store, inbox: str, cfg: GenerateConfig) -> Selection:
    store = Store.of(conn)
    inbox = inbox.strip().lower()
    in_inbox, good_date = store.inbox_counts(inbox)
    rows = store.inbox_mail(inbox, cfg.min_body_chars, cfg.max_body_chars)
    emails = [Email(r[0], r[1], r[2] or "", r[3] or "", r[4] or "", r[5], r[6] or "") for r in rows]
    by_row = {e.rowid: e for e in emails}
    for rowid, name, address in store.recipients(by_row):
        by_row[rowid].to.append((name, address))
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

