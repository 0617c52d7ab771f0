"""The single writer of an ingest: whole units in few, large transactions, duplicates found in memory.

A unit's messages, aliases, participants, skips and its `ingested_sources` row commit together, so a kill at any
moment leaves the store as if the uncommitted units had never been started. Duplicates are found in maps loaded
from the store at start (content hash -> row id, alias -> row id), which keeps the writes to `executemany`.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import BaseModel, Field

from inboxrl.store.parse import GENERATED_ID_DOMAIN
from inboxrl.store.worker import (
    REC_CONTENT_HASH,
    REC_DATE,
    REC_MESSAGE_ID,
    REC_PARTICIPANTS,
    REC_SUBJECT,
    Record,
    UnitResult,
)

_PARTS_FROM_JSON = (
    "INSERT OR IGNORE INTO participants(message_rowid, address, name, role, date)"
    " SELECT ?1, j.value->>0, j.value->>1, j.value->>2, ?2 FROM json_each(?3) j"
)


@dataclass
class IngestHooks:
    """Calls at the writer's transaction boundaries, with the number of units committed so far. Tests use them to
    kill an ingest inside a transaction or right after a commit; production passes none."""

    before_commit: Callable[[int], None] | None = None  # inside the open transaction, just before COMMIT
    after_commit: Callable[[int], None] | None = None  # right after a COMMIT


class IngestSummary(BaseModel):
    """What a run did. `store_*` are the store's totals afterwards, which is what a resumed run must match."""

    sources_found: int = 0
    sources_ingested: int = 0
    sources_unchanged: int = 0  # already in ingested_sources with the same size and mtime
    messages_read: int = 0
    stored: int = 0
    duplicates: int = 0  # same subject, body and sender as a stored message: kept as an alias
    already_stored: int = 0  # the same Message-ID was already in the store
    skipped: int = 0
    skip_reasons: dict[str, int] = Field(default_factory=dict)
    elapsed_s: float = 0.0
    msgs_per_s: float = 0.0
    # where the writing process spent its time: waiting for parsed units, inserting, building the FTS index
    phase_s: dict[str, float] = Field(default_factory=dict)
    # CPU seconds of the writing process while units stream in, and for the indexes built at the end: on a
    # shared machine these say more about the code's cost than wall time does
    writer_cpu_s: dict[str, float] = Field(default_factory=dict)
    store_messages: int = 0
    store_aliases: int = 0
    store_participants: int = 0
    store_skips: int = 0
    db_path: str = ""


def reason_group(reason: str) -> str:
    """Skip reasons grouped for the summary: the detail after ':' varies per message."""
    return reason.split(":", 1)[0]


def _message_row(rowid: int, message_id: str, rec: Record, source: str) -> tuple:
    """The `messages` row of a parsed record, in the column order of `Writer._write`'s INSERT. The row id and
    Message-ID are the writer's (a reused Message-ID is replaced by one made from the content); the rest is the
    record's own, copied as one slice because the record keeps those fields in the table's order."""
    return (rowid, message_id, *rec[REC_SUBJECT:REC_CONTENT_HASH], source, rec[REC_CONTENT_HASH])


class Writer:
    """The single writer. Units are written into one open transaction that commits every `batch_messages`
    messages (each unit with its `ingested_sources` row, so a group is all-or-nothing and a kill loses only
    uncommitted units). Few, large transactions also keep commit and index overhead down.

    If a group fails to write, it is rolled back and retried unit by unit, so one bad unit is recorded as a
    skip and the others are kept."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        bulk: bool,
        batch_messages: int,
        summary: IngestSummary,
        reasons: Counter[str],
        hooks: IngestHooks | None = None,
    ) -> None:
        self.conn = conn
        self.bulk = bulk
        self.batch = batch_messages
        self.summary = summary
        self.reasons = reasons
        self.pending: list[UnitResult] = []
        self.pending_msgs = 0
        self.committed_units = 0
        self.hooks = hooks or IngestHooks()
        self.load_maps()

    def load_maps(self) -> None:
        c = self.conn
        self.by_hash: dict[str, int] = dict(c.execute("SELECT content_hash, id FROM messages"))
        self.by_alias: dict[str, int] = dict(c.execute("SELECT alias, message_rowid FROM aliases"))
        self.dates: dict[int, str | None] = dict(c.execute("SELECT id, date FROM messages"))
        self.next_id = (c.execute("SELECT max(id) FROM messages").fetchone()[0] or 0) + 1
        # Bulk mode only (no unique index while loading): each stored message's participants JSON, so that a
        # duplicate copy adds only the recipients the earlier copies lacked. The parser already lists a
        # participant once per message, and most copies repeat the first one's list exactly (a string compare).
        self.parts: dict[int, str] = {}
        if self.bulk:
            self.parts = dict(c.execute(
                "SELECT message_rowid, json_group_array(json_array(address, name, role)) FROM participants"
                " GROUP BY message_rowid"))

    def _new_parts(self, rowid: int, ps: str, pending: dict[int, str]) -> str | None:
        """The participants of this copy that the message does not have yet (JSON, as `_PARTS_FROM_JSON` takes
        it), or None. Only bulk mode asks: otherwise the unique index ignores repeats."""
        have = pending.get(rowid, self.parts.get(rowid))
        if have is None:  # the first copy
            pending[rowid] = ps
            return ps
        if have == ps:
            return None
        old = json.loads(have)
        keys = {(p[0], p[2]) for p in old}
        new = [p for p in json.loads(ps) if (p[0], p[2]) not in keys]
        if not new:
            return None
        pending[rowid] = json.dumps(old + new, ensure_ascii=False)
        return json.dumps(new, ensure_ascii=False)

    def add(self, res: UnitResult) -> None:
        self.pending.append(res)
        self.pending_msgs += len(res.records) + 1
        if self.pending_msgs >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        group, self.pending, self.pending_msgs = self.pending, [], 0
        try:
            self._write(group)
        except (sqlite3.Error, ValueError, OverflowError):  # ValueError: text SQLite cannot take
            self._rollback()
            for res in group:
                try:
                    self._write([res])
                except (sqlite3.Error, ValueError, OverflowError) as e:
                    self._rollback()
                    self._record_failure(res, e)

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.load_maps()

    def _record_failure(self, res: UnitResult, e: BaseException) -> None:
        reason = f"store error: {type(e).__name__}: {e}"
        self.summary.skipped += 1
        self.reasons[reason_group(reason)] += 1
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute(
                "INSERT OR REPLACE INTO skips(source, position, reason) VALUES (?,?,?)",
                (res.unit.key, "file", reason),
            )
        self.committed_units += 1

    def _write(self, group: list[UnitResult]) -> None:
        msgs: list[tuple] = []
        parts: list[tuple] = []
        aliases: list[tuple] = []
        skip_rows: list[tuple] = []
        sources: list[tuple] = []
        new_hash: dict[str, int] = {}
        new_alias: dict[str, int] = {}
        new_parts: dict[int, str] = {}
        stats = Counter[str]()
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        for res in group:
            u = res.unit
            stored = dup = already = 0
            for rec in res.records:
                mid, date = rec[REC_MESSAGE_ID], rec[REC_DATE]
                chash, ps = rec[REC_CONTENT_HASH], rec[REC_PARTICIPANTS]
                rowid = self.by_hash.get(chash) or new_hash.get(chash)
                known = self.by_alias.get(mid) or new_alias.get(mid)
                if known is not None:
                    if rowid is not None:
                        already += 1  # this copy was read before (or its text is stored under another id)
                        continue
                    # The same Message-ID on different text (broken mailers reuse ids): a different message,
                    # kept under an id made from its content rather than lost.
                    mid = f"<{chash}@{GENERATED_ID_DOMAIN}>"
                    if mid in self.by_alias or mid in new_alias:
                        already += 1
                        continue
                if rowid is None:
                    rowid = self.next_id + len(new_hash)
                    new_hash[chash] = rowid
                    self.dates[rowid] = date
                    msgs.append(_message_row(rowid, mid, rec, u.label))
                    stored += 1
                else:
                    dup += 1
                    date = self.dates.get(rowid)
                # A copy may name recipients the first did not (Enron's Bcc differs per copy): keep them all.
                if ps != "[]" and self.bulk:
                    ps = self._new_parts(rowid, ps, new_parts)
                if ps and ps != "[]":
                    parts.append((rowid, date, ps))
                new_alias[mid] = rowid
                aliases.append((mid, rowid, u.label))
            n_read = len(res.records) + sum(1 for pos, _ in res.skips if pos not in ("file", "lead"))
            skip_rows.extend((u.key, pos, reason) for pos, reason in res.skips)
            sources.append((u.key, u.size, u.mtime, n_read, stored, dup + already, len(res.skips), now))
            stats.update(read=n_read, stored=stored, dup=dup, already=already, skipped=len(res.skips))
        c = self.conn
        c.execute("BEGIN")
        c.executemany(
            "INSERT INTO messages(id, message_id, subject, from_addr, from_name, date, date_raw, date_ok,"
            " body, attachments, source, content_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            msgs,
        )
        c.executemany(_PARTS_FROM_JSON, parts)
        c.executemany("INSERT OR IGNORE INTO aliases(alias, message_rowid, source) VALUES (?,?,?)", aliases)
        # A unit written now replaces whatever an earlier failed run recorded for it (a "store error" after a full
        # disk): the skips describe the store as it is.
        c.executemany("DELETE FROM skips WHERE source = ?", [(res.unit.key,) for res in group])
        c.executemany("INSERT OR REPLACE INTO skips(source, position, reason) VALUES (?,?,?)", skip_rows)
        c.executemany(
            "INSERT OR REPLACE INTO ingested_sources(path, size, mtime, n_read, n_stored, n_duplicate,"
            " n_skipped, finished_at) VALUES (?,?,?,?,?,?,?,?)",
            sources,
        )
        if self.hooks.before_commit:
            self.hooks.before_commit(self.committed_units)
        c.execute("COMMIT")
        # Only now, with the group durable, do the in-memory maps and the summary move on.
        self.by_hash.update(new_hash)
        self.by_alias.update(new_alias)
        self.parts.update(new_parts)
        self.next_id += len(new_hash)
        s = self.summary
        s.messages_read += stats["read"]
        s.stored += stats["stored"]
        s.duplicates += stats["dup"]
        s.already_stored += stats["already"]
        s.skipped += stats["skipped"]
        for res in group:
            for _, reason in res.skips:
                self.reasons[reason_group(reason)] += 1
        self.committed_units += len(group)
        if self.hooks.after_commit:
            self.hooks.after_commit(self.committed_units)
