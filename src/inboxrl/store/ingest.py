"""Loading mail into the store: parse in parallel, write from one process in transactions of whole units.

Why this shape:
- Parsing is the cost (about 10k messages/s per core), so worker processes read and parse whole units and the
  main process only inserts. SQLite has one writer anyway.
- A unit's messages, aliases, participants, skips and its `ingested_sources` row go in the same transaction (a
  transaction holds a few thousand messages' worth of whole units), so a kill at any moment leaves the store
  as if the uncommitted units had never been started; a re-run skips finished units (same size and mtime) and
  ends with exactly the counts of an uninterrupted run.
- Duplicates are found in memory (content hash -> row id, alias -> row id, loaded from the store at start),
  which keeps the writer to plain `executemany` inserts.
- On a bulk load into an empty store the FTS insert trigger and the secondary indexes (participants' unique
  index among them) are dropped, participants are appended, and both are built once at the end: FTS 'rebuild'
  and CREATE INDEX cost far less than keeping them in step row by row (docs/history/ingest.md). Without the unique index, the writer itself
  keeps a duplicate copy from adding a participant twice (`_Writer.parts`). `meta.bulk_pending`
  remembers a bulk load that a kill interrupted; the next run finishes it. Until then the store is consistent
  (every committed unit complete) but neither searchable nor scoped by inbox.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inboxrl.configfile import read_config_file
from inboxrl.store import schema
from inboxrl.store.parse import DEFAULT_MAX_YEAR, DEFAULT_MIN_YEAR, GENERATED_ID_DOMAIN
from inboxrl.store.sources import COMPRESSED, SourceUnit, discover
from inboxrl.store.worker import (
    REC_CONTENT_HASH,
    REC_DATE,
    REC_MESSAGE_ID,
    REC_PARTICIPANTS,
    REC_SUBJECT,
    Record,
    UnitResult,
    init_worker,
    parse_unit,
)

# Below this much raw mail, starting worker processes costs more than it saves (tests force the pool with 0).
POOL_MIN_BYTES = int(os.environ.get("INBOXRL_INGEST_POOL_MIN_BYTES", str(8 << 20)))

_FTS_TRIGGER = """CREATE TRIGGER IF NOT EXISTS messages_ai AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
END;"""
_PARTS_FROM_JSON = (
    "INSERT OR IGNORE INTO participants(message_rowid, address, name, role, date)"
    " SELECT ?1, j.value->>0, j.value->>1, j.value->>2, ?2 FROM json_each(?3) j"
)
FTS_REBUILD_HASH_BYTES = 64 << 20
FTS_DEFAULT_HASH_BYTES = 1 << 20  # FTS5's own default
# Where a load by inboxrl <= 0.1 (schema version 1) staged participants; a store it left half-loaded still has it.
_OLD_STAGE = "participants_stage"
# The secondary indexes of schema.DDL, taken from it so that the two cannot drift apart.
_INDEXES = {
    m.group(1): m.group(0).rstrip(";")
    for m in re.finditer(r"CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+) ON [^;]+;", schema.DDL)
}


class StoreBusyError(RuntimeError):
    """Another ingest is writing to the same store; the message is one line for the user."""


@dataclass
class IngestHooks:
    """Calls at the writer's transaction boundaries, with the number of units committed so far. Tests use them to
    kill an ingest inside a transaction or right after a commit; production passes none."""

    before_commit: Callable[[int], None] | None = None  # inside the open transaction, just before COMMIT
    after_commit: Callable[[int], None] | None = None  # right after a COMMIT


class IngestConfig(BaseModel):
    """Ingest settings; loadable from YAML/TOML with `load_config`. Unknown keys are refused: a typo is an error."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(2, ge=1, description="parser processes; 1 parses in the writing process")
    min_year: int = DEFAULT_MIN_YEAR
    max_year: int = DEFAULT_MAX_YEAR
    bulk: Literal["auto", "always", "never"] = Field(
        "auto",
        description="build participants and the secondary indexes once at the end (auto: when the store"
        " starts empty or a killed bulk load is being resumed) instead of keeping them in step per row",
    )
    fts: Literal["inline", "rebuild"] = Field(
        "rebuild",
        description="bulk loads: index text as it is written, or rebuild the FTS index once at the end",
    )
    batch_messages: int = Field(4000, ge=1, description="messages per write transaction")
    cache_mb: int = 256
    page_size: int = Field(
        4096,
        description="page size of a new store. 16 KiB saved no measurable ingest time on the full corpus and"
        " made scoped searches ~15% slower (CPU p50 2.5 vs 2.2 ms), so SQLite's default stays",
    )


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


@dataclass
class IngestProgress:
    units_done: int
    units_total: int
    messages_read: int
    stored: int
    unit: str


def _reason_group(reason: str) -> str:
    """Skip reasons grouped for the summary: the detail after ':' varies per message."""
    return reason.split(":", 1)[0]


def _message_row(rowid: int, message_id: str, rec: Record, source: str) -> tuple:
    """The `messages` row of a parsed record, in the column order of `_Writer._write`'s INSERT. The row id and
    Message-ID are the writer's (a reused Message-ID is replaced by one made from the content); the rest is the
    record's own, copied as one slice because the record keeps those fields in the table's order."""
    return (rowid, message_id, *rec[REC_SUBJECT:REC_CONTENT_HASH], source, rec[REC_CONTENT_HASH])


class _Writer:
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
        self.reasons[_reason_group(reason)] += 1
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
                self.reasons[_reason_group(reason)] += 1
        self.committed_units += len(group)
        if self.hooks.after_commit:
            self.hooks.after_commit(self.committed_units)


def _prepare(conn: sqlite3.Connection, cfg: IngestConfig) -> None:
    conn.isolation_level = None  # explicit BEGIN/COMMIT per unit
    conn.execute("PRAGMA foreign_keys=OFF")  # the writer keeps row ids consistent itself; FK checks cost time
    conn.execute(f"PRAGMA cache_size=-{cfg.cache_mb * 1024}")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA wal_autocheckpoint=20000")


def _meta(conn: sqlite3.Connection, key: str, value: str | None = None) -> str | None:
    if value is None:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))
    return value


def _results(units: list[SourceUnit], cfg: IngestConfig) -> Iterator[UnitResult]:
    raw_bytes = sum(u.size * (5 if u.path.lower().endswith(COMPRESSED) else 1) for u in units)
    if cfg.workers <= 1 or len(units) <= 1 or raw_bytes < POOL_MIN_BYTES:
        init_worker(cfg.min_year, cfg.max_year)
        for u in units:
            yield parse_unit(u)
        return
    ctx = multiprocessing.get_context("spawn")  # never fork a process that may hold torch threads
    with ctx.Pool(
        min(cfg.workers, len(units)), initializer=init_worker, initargs=(cfg.min_year, cfg.max_year)
    ) as pool:
        yield from pool.imap(parse_unit, units, chunksize=1)


def ingest(
    sources: Iterable[str | Path],
    db_path: str | Path,
    workers: int | None = None,
    progress: Callable[[IngestProgress], None] | None = None,
    config: IngestConfig | None = None,
    hooks: IngestHooks | None = None,
) -> IngestSummary:
    """Ingests mail files/folders into the store at db_path (created if missing). Safe to re-run and to kill.

    Raises SourceError for a source path that does not exist, StoreBusyError while another ingest writes to the
    same store, and sqlite3.Error when the database cannot be opened; bad mail never raises, it is counted in the
    summary and recorded in `skips`.
    """
    t0 = time.perf_counter()
    cfg = (config or IngestConfig()).model_copy()
    if workers is not None:
        cfg.workers = workers
    sources = list(sources)
    units, unknown = discover(sources)  # before touching the db: a bad path changes nothing
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock(db_path, cfg.page_size)
    try:
        return _ingest(sources, units, unknown, db_path, cfg, progress, hooks, t0)
    finally:
        os.close(lock)


def _lock(db_path: Path, page_size: int) -> int:
    """An exclusive lock on the store file for the whole ingest (flock: released by the kernel when the process
    dies, and apart from SQLite's own locks). Two writers would each hand out the same row ids."""
    fd = os.open(db_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreBusyError(f"another ingest is writing to {db_path}; wait for it to finish, then run this one"
                             " again") from None
    if os.fstat(fd).st_size == 0:
        _create_file(db_path, page_size)
    return fd


def _ingest(sources: list[str | Path], units: list[SourceUnit], unknown: list[tuple[str, str]], db_path: Path,
            cfg: IngestConfig, progress: Callable[[IngestProgress], None] | None, hooks: IngestHooks | None,
            t0: float) -> IngestSummary:
    conn = schema.connect(str(db_path))
    try:
        schema.create(conn)
        _prepare(conn, cfg)
        if sources:  # what an error about an unfinished ingest tells the user to run again
            with conn:
                conn.execute("BEGIN")
                _meta(conn, "ingest_sources", json.dumps([str(Path(p).absolute()) for p in sources]))
        summary = IngestSummary(sources_found=len(units), db_path=str(db_path))
        reasons: Counter[str] = Counter()

        done = {
            row[0]: (row[1], row[2]) for row in conn.execute("SELECT path, size, mtime FROM ingested_sources")
        }
        todo = [u for u in units if done.get(u.key) != (u.size, u.mtime)]
        summary.sources_unchanged = len(units) - len(todo)
        todo.sort(key=lambda u: (-u.size, u.key))  # biggest first: the pool's tail stays short

        if unknown:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT OR REPLACE INTO skips(source, position, reason) VALUES (?, 'file', ?)", unknown
                )
            summary.skipped += len(unknown)
            for _, reason in unknown:
                reasons[_reason_group(reason)] += 1

        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM messages)").fetchone()[0]
        resuming = _meta(conn, "bulk_pending") == "1"
        bulk = bool(todo) and (cfg.bulk == "always" or (cfg.bulk == "auto" and (empty or resuming)))
        if bulk:
            # A rollback journal instead of WAL while loading: new pages are written once, not to the WAL and
            # again at checkpoints. Kill-safety is the same (a hot journal is rolled back on the next open).
            conn.execute("PRAGMA journal_mode=TRUNCATE")
            conn.execute("BEGIN")
            _meta(conn, "bulk_pending", "1")
            for name in _INDEXES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
            if cfg.fts == "rebuild":
                _meta(conn, "fts_stale", "1")
                conn.execute("DROP TRIGGER IF EXISTS messages_ai")
            conn.execute("COMMIT")

        writer = _Writer(conn, bulk, cfg.batch_messages, summary, reasons, hooks)
        phase: dict[str, float] = {"wait": 0.0, "write": 0.0}
        cpu0 = time.process_time()
        t_wait = time.perf_counter()
        for i, res in enumerate(_results(todo, cfg), 1):
            t_write = time.perf_counter()
            phase["wait"] += t_write - t_wait
            writer.add(res)
            if i == len(todo):
                writer.flush()
            t_wait = time.perf_counter()
            phase["write"] += t_wait - t_write
            summary.sources_ingested += 1
            if progress:
                progress(IngestProgress(i, len(todo), summary.messages_read, summary.stored, res.unit.label))
        writer.flush()

        cpu1 = time.process_time()
        t_fin = time.perf_counter()
        finish_cpu: dict[str, float] = {}
        if _meta(conn, "bulk_pending") == "1" or _meta(conn, "fts_stale") == "1":
            finish_cpu = finish_bulk(conn)
        conn.execute("PRAGMA journal_mode=WAL")  # readers and the next writer work side by side again
        conn.execute("PRAGMA optimize")
        phase["finish"] = time.perf_counter() - t_fin
        summary.phase_s = {k: round(v, 2) for k, v in phase.items()}
        cpu2 = time.process_time()
        summary.writer_cpu_s = {"stream": round(cpu1 - cpu0, 2), "finish": round(cpu2 - cpu1, 2)}
        summary.writer_cpu_s.update({f"finish.{k}": v for k, v in finish_cpu.items()})

        summary.skip_reasons = dict(reasons.most_common())
        summary.elapsed_s = round(time.perf_counter() - t0, 3)
        summary.msgs_per_s = round(summary.messages_read / summary.elapsed_s, 1) if summary.elapsed_s else 0.0
        for name, table in (
            ("store_messages", "messages"),
            ("store_aliases", "aliases"),
            ("store_participants", "participants"),
            ("store_skips", "skips"),
        ):
            setattr(summary, name, conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return summary
    finally:
        conn.close()


def _create_file(db_path: Path, page_size: int) -> None:
    """A new, empty database file with the given page size (it cannot change once WAL is on)."""
    c = sqlite3.connect(db_path)
    try:
        c.execute(f"PRAGMA page_size={int(page_size)}")
        c.execute("VACUUM")
    finally:
        c.close()


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
    if _meta(conn, "fts_stale") == "1":
        # A larger in-memory term hash while rebuilding: fewer, bigger segments to merge (measured faster,
        # docs/history/ingest.md). Set back afterwards, so later small ingests keep FTS5's default.
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('hashsize', ?)", (FTS_REBUILD_HASH_BYTES,))
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES('rebuild')")
        conn.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('hashsize', ?)", (FTS_DEFAULT_HASH_BYTES,))
    lap("fts")
    conn.execute(_FTS_TRIGGER)
    _meta(conn, "fts_stale", "0")
    _meta(conn, "bulk_pending", "0")
    conn.execute("COMMIT")
    lap("commit")
    return cpu


def load_config(path: str | Path) -> IngestConfig:
    """An IngestConfig from a YAML, TOML or JSON file (the whole file, or its `ingest` table). A file that cannot
    be read or parsed is a ConfigFileError; bad values stay a pydantic ValidationError (both are ValueErrors)."""
    return IngestConfig.model_validate(read_config_file(path, section="ingest"))
