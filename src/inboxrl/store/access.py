"""The one way into a built store for its readers: open read-only, normalise and resolve Message-IDs, check scope.

Tools, grounding, training data and scoring all ask the same questions of the store ("which stored message is
this id?", "may this inbox see it before that day?"); answering them here keeps one id convention and one scope
rule. Ids are normalised ONE way: trimmed and in angle brackets, the form the store keeps (`store.parse`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inboxrl.store import schema
from inboxrl.store.search import tuple_cursor

__all__ = ["Store", "StoreNotFound", "normalise_id", "open_readonly", "visible_sql"]

MAX_ID_CHARS = 1000  # longer than any real Message-ID: refused without a query


class StoreNotFound(FileNotFoundError):
    """No mail store at the given path."""


def normalise_id(mid: object) -> str:
    """'<abc@x>', 'abc@x' and ' <abc@x> ' are the same Message-ID: '<abc@x>', as stored ('' for an empty id)."""
    m = str(mid).strip()
    m = m.removeprefix("<")
    m = m.removesuffix(">")
    m = m.strip()
    return f"<{m}>" if m else ""


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the store at `path` (readers must never write), or StoreNotFound."""
    p = Path(path)
    if not p.is_file():
        raise StoreNotFound(f"mail store not found: {p} (build one with `inboxrl ingest`)")
    return schema.connect(str(p), readonly=True)


def visible_sql(id_condition: str, inbox: str, before: str | None = None,
                after: str | None = None) -> tuple[str, list[Any]]:
    """The one definition of "this inbox may see message m": a participant, a trusted date, inside [after, before).

    A WHERE fragment over `messages m` (callers add `id_condition`, e.g. "m.id = ?"), with its arguments after the
    condition's own.
    """
    sql = (f"m.date_ok = 1 AND m.date IS NOT NULL AND {id_condition} AND EXISTS "
           "(SELECT 1 FROM participants p WHERE p.address = ? AND p.message_rowid = m.id)")
    args: list[Any] = [inbox.strip().lower()]
    if before:
        sql += " AND m.date < ?"
        args.append(before)
    if after:
        sql += " AND m.date >= ?"
        args.append(after)
    return sql, args


class Store:
    """A reader's handle on a store: wraps one connection (its own when opened from a path)."""

    def __init__(self, conn: sqlite3.Connection, *, owned: bool = False):
        self.conn = conn
        self._owned = owned

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """The store at `path`, read-only."""
        return cls(open_readonly(path), owned=True)

    @classmethod
    def of(cls, db: str | Path | sqlite3.Connection | Store) -> Store:
        """A Store for a path (opened read-only, owned), a connection (borrowed) or a Store (itself)."""
        if isinstance(db, Store):
            return db
        if isinstance(db, sqlite3.Connection):
            return cls(db)
        return cls.open(db)

    def close(self) -> None:
        """Closes the connection if this Store opened it; a borrowed one stays open for its owner."""
        if self._owned:
            self.conn.close()
            self._owned = False

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- ids ----------------------------------------------------------------------------------------------------

    def resolve(self, mid: object) -> int | None:
        """The stored row of any copy's Message-ID (duplicates resolve through `aliases`), or None."""
        key = normalise_id(mid)
        if not key or len(key) > MAX_ID_CHARS:
            return None
        row = self.conn.execute("SELECT message_rowid FROM aliases WHERE alias = ?", (key,)).fetchone()
        if row is None:  # a store whose aliases lack a stored id still answers by the message itself
            row = self.conn.execute("SELECT id FROM messages WHERE message_id = ?", (key,)).fetchone()
        return int(row[0]) if row is not None else None

    def resolve_many(self, mids: Iterable[str]) -> dict[str, int]:
        """Cited id (as given) -> stored row, for the ids that resolve."""
        out: dict[str, int] = {}
        for mid in mids:
            rowid = self.resolve(mid)
            if rowid is not None:
                out[mid] = rowid
        return out

    def message_id(self, rowid: int) -> str | None:
        """The stored (canonical) Message-ID of a row."""
        row = self.conn.execute("SELECT message_id FROM messages WHERE id = ?", (rowid,)).fetchone()
        return str(row[0]) if row is not None else None

    # -- scope --------------------------------------------------------------------------------------------------

    def visible(self, rowid: int, inbox: str, before: str | None = None, after: str | None = None) -> bool:
        """May `inbox` see this message on a day before `before` (and not before `after`)? See `visible_sql`."""
        cond, args = visible_sql("m.id = ?", inbox, before, after)
        return self.conn.execute(f"SELECT 1 FROM messages m WHERE {cond}", [rowid, *args]).fetchone() is not None

    def visible_rows(self, rowids: list[int], inbox: str, before: str | None = None,
                     after: str | None = None) -> dict[int, tuple[Any, ...]]:
        """rowid -> (id, message_id, date, from_addr, subject, body) of those rowids the inbox may see."""
        cond, args = visible_sql(f"m.id IN ({','.join('?' * len(rowids))})", inbox, before, after)
        return {r[0]: r for r in tuple_cursor(self.conn).execute(
            f"SELECT m.id, m.message_id, m.date, m.from_addr, m.subject, m.body FROM messages m WHERE {cond}",
            [*rowids, *args])}

    def scope_size(self, inbox: str, before: str | None = None, after: str | None = None) -> int:
        """How many messages the inbox may see."""
        cond, args = visible_sql("m.id = s.id", inbox, before, after)
        return int(self.conn.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT message_rowid AS id FROM participants WHERE address = ?) s "
            f"JOIN messages m ON m.id = s.id WHERE {cond}", [inbox.strip().lower(), *args]).fetchone()[0])

    # -- one message ------------------------------------------------------------------------------------------------

    def message(self, rowid: int) -> tuple[Any, ...] | None:
        """(message_id, date, from_addr, from_name, subject, body, attachments) of a stored row."""
        row = self.conn.execute(
            "SELECT message_id, date, from_addr, from_name, subject, body, attachments FROM messages WHERE id = ?",
            (rowid,)).fetchone()
        return tuple(row) if row is not None else None

    def participants(self, rowid: int) -> list[tuple[str, str]]:
        """(address, role) of every participant of a message, by role then address."""
        return [(str(a), str(r)) for a, r in self.conn.execute(
            "SELECT address, role FROM participants WHERE message_rowid = ? ORDER BY role, address", (rowid,))]

    # -- an inbox's mail (question generation reads it in bulk) ------------------------------------------------------

    def inbox_counts(self, inbox: str) -> tuple[int, int]:
        """(distinct mails with the address as any participant, those of them with a trusted date)."""
        row = self.conn.execute(
            "SELECT count(*), coalesce(sum(m.date_ok = 1 AND m.date IS NOT NULL), 0) FROM messages m "
            "WHERE m.id IN (SELECT message_rowid FROM participants WHERE address = ?)",
            (inbox.strip().lower(),),
        ).fetchone()
        return int(row[0]), int(row[1])

    def inbox_mail(self, inbox: str, min_body_chars: int, max_body_chars: int) -> list[tuple[Any, ...]]:
        """(id, message_id, subject, from_addr, from_name, date, body) of an inbox's dated mail whose body length is
        within the bounds, oldest first."""
        return self.conn.execute(
            "SELECT m.id, m.message_id, m.subject, m.from_addr, m.from_name, m.date, m.body FROM messages m"
            " WHERE m.id IN (SELECT message_rowid FROM participants WHERE address = ?)"
            " AND m.date_ok = 1 AND m.date IS NOT NULL AND length(m.body) BETWEEN ? AND ?"
            " ORDER BY m.date, m.id",
            (inbox.strip().lower(), min_body_chars, max_body_chars),
        ).fetchall()

    def recipients(self, rowids: Iterable[int]) -> list[tuple[int, str, str]]:
        """(row, name, address) of the To and Cc recipients of these messages, To first, by address."""
        ids = list(rowids)
        out: list[tuple[int, str, str]] = []
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-variable limit
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            out += [(int(r[0]), r[1] or "", str(r[2])) for r in self.conn.execute(
                f"SELECT message_rowid, name, address FROM participants WHERE message_rowid IN ({marks}) "
                "AND role IN ('to', 'cc') ORDER BY message_rowid, role DESC, address", chunk)]
        return out

    def owner_name(self, inbox: str) -> str:
        """The display name most often written next to the address: what the owner is called in their own mail."""
        row = self.conn.execute(
            "SELECT name FROM participants WHERE address = ? AND name != '' AND name NOT LIKE '%@%' "
            "GROUP BY name ORDER BY count(*) DESC, name LIMIT 1",
            (inbox,),
        ).fetchone()
        return str(row[0]).strip() if row else ""

    def path(self) -> str | None:
        """The store file this connection reads (None for an in-memory one)."""
        for _, name, file in self.conn.execute("PRAGMA database_list").fetchall():
            if name == "main" and file:
                return str(file)
        return None

    def has_inbox(self, inbox: str) -> bool:
        """Is the address a participant of any stored message?"""
        return self.conn.execute("SELECT 1 FROM participants WHERE address = ? LIMIT 1",
                                 (inbox,)).fetchone() is not None

    def check(self) -> None:
        """Fails (sqlite3.DatabaseError) at once on a file that is not an inboxrl store."""
        self.conn.execute("SELECT 1 FROM messages JOIN participants LIMIT 1").fetchall()
        self.conn.execute("SELECT id, date_ok FROM messages LIMIT 1").fetchall()
        self.conn.execute("SELECT address FROM participants LIMIT 1").fetchall()
