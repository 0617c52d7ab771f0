"""The SQLite schema of the mail store. The tools query these tables directly, so names here are a contract.

- One row per distinct message in `messages`; a copy filed elsewhere (same subject, body and sender) is not stored
  again: its Message-ID becomes a row in `aliases` that resolves to the stored message. The stored message's own
  Message-ID is in `aliases` too, so every lookup goes through one table.
- `participants` holds the sender (role 'from') and every To/Cc/Bcc recipient, one row each. An inbox is an
  address: a message is in it when the address is any participant. ART-E's read_email lost recipients through a
  wrong join; keeping them in their own table with the role makes that impossible to get wrong.
- `messages_fts` is an external-content FTS5 index on subject and body, kept in step by triggers.
- `ingested_sources` and `skips` make ingest idempotent and its skips countable.
"""

from __future__ import annotations

import sqlite3

# 2: `participants` is a rowid table whose uniqueness is the index `participants_msg`, so that a bulk load appends
# rows and sorts them once into two indexes (version 1 kept a WITHOUT ROWID key as well: a third sorted copy).
# Both layouts answer the same queries; a store keeps the version it was created with.
SCHEMA_VERSION = 2

DDL = """
PRAGMA foreign_keys = ON;

CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS messages (
    id           INTEGER PRIMARY KEY,
    message_id   TEXT NOT NULL UNIQUE,      -- the first copy's Message-ID, with angle brackets as in the header
    subject      TEXT NOT NULL DEFAULT '',
    from_addr    TEXT NOT NULL DEFAULT '',  -- lower-cased address
    from_name    TEXT NOT NULL DEFAULT '',
    date         TEXT,                      -- UTC ISO 8601 'YYYY-MM-DDTHH:MM:SSZ'; NULL when unparseable
    date_raw     TEXT NOT NULL DEFAULT '',  -- the Date header as written
    date_ok      INTEGER NOT NULL DEFAULT 1,-- 0: unparseable or outside sane years; such mail is never in scope
    body         TEXT NOT NULL DEFAULT '',
    attachments  TEXT NOT NULL DEFAULT '[]',-- JSON list of attachment file names (content is not kept)
    source       TEXT NOT NULL DEFAULT '',  -- folder/file the first copy came from
    content_hash TEXT NOT NULL UNIQUE       -- sha1 of (subject, body, sender): the duplicate key
);
CREATE INDEX IF NOT EXISTS messages_date ON messages(date);

CREATE TABLE IF NOT EXISTS participants (
    message_rowid INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    address       TEXT NOT NULL,            -- lower-cased
    name          TEXT NOT NULL DEFAULT '',
    role          TEXT NOT NULL CHECK (role IN ('from', 'to', 'cc', 'bcc')),
    date          TEXT                      -- copy of messages.date, so scope checks need one index only
);
CREATE INDEX IF NOT EXISTS participants_addr_date ON participants(address, date, message_rowid);
CREATE UNIQUE INDEX IF NOT EXISTS participants_msg ON participants(message_rowid, role, address);

CREATE TABLE IF NOT EXISTS aliases (
    alias         TEXT PRIMARY KEY,         -- any copy's Message-ID (the stored one's included)
    message_rowid INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    source        TEXT NOT NULL DEFAULT ''
);

CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(
    subject, body, content='messages', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS messages_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
END;
CREATE TRIGGER IF NOT EXISTS messages_ad AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, subject, body) VALUES ('delete', old.id, old.subject, old.body);
END;

CREATE TABLE IF NOT EXISTS ingested_sources (
    path        TEXT PRIMARY KEY,           -- resolved path of a file (or file-in-folder) fully ingested
    size        INTEGER NOT NULL,
    mtime       REAL NOT NULL,
    n_read      INTEGER NOT NULL,
    n_stored    INTEGER NOT NULL,
    n_duplicate INTEGER NOT NULL,
    n_skipped   INTEGER NOT NULL,
    finished_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS skips (
    source   TEXT NOT NULL,
    position TEXT NOT NULL,                 -- index of the message in its file, or the file name
    reason   TEXT NOT NULL,
    PRIMARY KEY (source, position)
);
"""


class StoreIncompleteError(sqlite3.DatabaseError, ValueError):
    """A store whose ingest did not finish (killed, disk full): its full-text index is missing, so every search
    would find nothing. A ValueError too, so the commands that print one line for bad input print this one."""


def ingest_command(conn: sqlite3.Connection, path: str) -> str:
    """The command that completes the store's last ingest: the sources it was given, as `inboxrl ingest` recorded
    them (a store written by other code says SOURCES)."""
    import json
    import shlex

    try:
        row = conn.execute("SELECT value FROM meta WHERE key='ingest_sources'").fetchone()
        sources = [str(s) for s in json.loads(row[0])] if row else []
    except (sqlite3.Error, ValueError, TypeError):
        sources = []
    args = " ".join(shlex.quote(s) for s in sources) if sources else "SOURCES"
    return f"inboxrl ingest {args} --db {shlex.quote(path)}"


def check_complete(conn: sqlite3.Connection, path: str) -> None:
    """Raises StoreIncompleteError for a store whose bulk load or FTS rebuild is pending. A file without our `meta`
    table passes: the caller's own checks say it is not a store."""
    try:
        pending = dict(conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('bulk_pending', 'fts_stale')").fetchall())
    except sqlite3.Error as e:
        # A hot journal left by a killed write: only a writer can roll it back, which the next ingest does.
        if not getattr(e, "sqlite_errorname", "").startswith("SQLITE_READONLY"):
            return
        pending = {"interrupted": "1"}
    if "1" in pending.values():
        raise StoreIncompleteError(
            f"the ingest into {path} did not finish (its search index is not built): run "
            f"`{ingest_command(conn, path)}` again to complete it")


def connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    """Opens the store. Read-only connections are what the tools use: the agent must never write. A read-only
    open of a store whose ingest did not finish raises StoreIncompleteError: searching it would answer
    "no emails found" for mail that is there."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            check_complete(conn, path)
        except StoreIncompleteError:
            conn.close()
            raise
    else:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.row_factory = sqlite3.Row
    return conn


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(DDL)
    conn.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    conn.commit()
