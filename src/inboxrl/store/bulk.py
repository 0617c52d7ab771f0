"""A bulk load's indexes: dropped while an empty store fills, built once at the end.

FTS 'rebuild' and CREATE INDEX once cost far less than keeping them in step row by row (docs/history/ingest.md).
`meta.bulk_pending` remembers a bulk load that a kill interrupted; the next ingest finishes it.
"""

from __future__ import annotations

import re
import sqlite3
import time

from inboxrl.store import schema

_FTS_TRIGGER = """CREATE TRIGGER IF NOT EXISTS messages_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
END;"""
FTS_REBUILD_HASH_BYTES = 64 << 20
FTS_DEFAULT_HASH_BYTES = 1 << 20  # FTS5's own default
# Where a load by inboxrl <= 0.1 (schema version 1) staged participants; a store it left half-loaded still has it.
_OLD_STAGE = "participants_stage"
# The secondary indexes of schema.DDL, taken from it so that the two cannot drift apart.
_INDEXES = {
    m.group(1): m.group(0).rstrip(";")
    for m in re.finditer(r"CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+) ON [^;]+;", schema.DDL)
}


def meta(conn: sqlite3.Connection, key: str, value: str | None = None) -> str | None:
    if value is None:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
    return value


def begin_bulk(conn: sqlite3.Connection, fts_rebuild: bool) -> None:
    """Marks the load pending and drops what `finish_bulk` builds again, in one transaction."""
    conn.execute("BEGIN")
    meta(conn, "bulk_pending", "1")
    for name in _INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {name}")
    if fts_rebuild:
        meta(conn, "fts_stale", "1")
        conn.execute("DROP TRIGGER IF EXISTS messages_ai")
    conn.execute("COMMIT")


def needs_finish(conn: sqlite3.Connection) -> bool:
    return meta(conn, "bulk_pending") == "1" or meta(conn, "fts_stale") == "1"


def finish_bulk(conn: sqlite3.Connection) -> dict[str, float]:
    """Ends a bulk load: the secondary indexes, the FTS index if it was left for the end, the insert trigger;
    one transaction, so a kill here is simply finished by the next run.

    Returns the CPU seconds of each step."""
    cpu: dict[str, float] = {}
    t = time.process_time()

    def lap(name: str) -> None:
        nonlocal t
        now = time.process_time()
        cpu[name] = round(now - t, 2)
        t = now

    conn.execute("BEGIN")
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name=?", (_OLD_STAGE,)).fetchone():
        conn.execute(f"INSERT OR IGNORE INTO participants(message_rowid, address, name, role, date)"
                     f" SELECT s.message_rowid, j.value->>0, j.value->>1, j.value->>2, s.date"
                     f" FROM {_OLD_STAGE} s, json_each(s.parts) j")
        conn.execute(f"DROP TABLE {_OLD_STAGE}")
    for ddl in _INDEXES.values():
        conn.execute(ddl)
    lap("indexes")
    if meta(conn, "fts_stale") == "1":
        # A larger in-memory term hash while rebuilding: fewer, bigger segments to merge (measured faster,
        # docs/history/ingest.md). Set back afterwards, so later small ingests keep FTS5's default.
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('hashsize', ?)", (FTS_REBUILD_HASH_BYTES,))
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES('rebuild')")
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('hashsize', ?)", (FTS_DEFAULT_HASH_BYTES,))
    lap("fts")
    conn.execute(_FTS_TRIGGER)
    meta(conn, "fts_stale", "0")
    meta(conn, "bulk_pending", "0")
    conn.execute("COMMIT")
    lap("commit")
    return cpu
