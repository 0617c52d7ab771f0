"""The ingest pipeline: find the mail files, parse them in parallel, hand whole units to the one writer.

Parsing is the cost, so worker processes read and parse whole units and the main process only writes (SQLite has
one writer anyway): `store.writer` writes each unit all-or-nothing, `store.bulk` drops and rebuilds the indexes of
a bulk load, and an exclusive lock keeps a second ingest out. A re-run skips finished units (same size and mtime)
and ends with exactly the counts of an uninterrupted run; until a killed bulk load is finished the store is
consistent but neither searchable nor scoped, and readers refuse it.
"""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from inboxrl.configfile import read_config_file
from inboxrl.store import schema
from inboxrl.store.bulk import begin_bulk, finish_bulk, meta, needs_finish
from inboxrl.store.parse import DEFAULT_MAX_YEAR, DEFAULT_MIN_YEAR
from inboxrl.store.sources import COMPRESSED, SourceUnit, discover
from inboxrl.store.worker import UnitResult, init_worker, parse_unit
from inboxrl.store.writer import IngestHooks, IngestSummary, Writer, reason_group

__all__ = ["IngestConfig", "IngestHooks", "IngestProgress", "IngestSummary", "StoreBusyError", "finish_bulk",
           "ingest", "load_config"]

# Below this much raw mail, starting worker processes costs more than it saves (tests force the pool with 0).
POOL_MIN_BYTES = int(os.environ.get("INBOXRL_INGEST_POOL_MIN_BYTES", str(8 << 20)))


class StoreBusyError(RuntimeError):
    """Another ingest is writing to the same store; the message is one line for the user."""


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


@dataclass
class IngestProgress:
    units_done: int
    units_total: int
    messages_read: int
    stored: int
    unit: str


def _prepare(conn: sqlite3.Connection, cfg: IngestConfig) -> None:
    conn.isolation_level = None  # explicit BEGIN/COMMIT per unit
    conn.execute("PRAGMA foreign_keys=OFF")  # the writer keeps row ids consistent itself; FK checks cost time
    conn.execute(f"PRAGMA cache_size=-{cfg.cache_mb * 1024}")
    conn.execute("PRAGMA temp_store=MEMORY")
    conn.execute("PRAGMA wal_autocheckpoint=20000")


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
                meta(conn, "ingest_sources", json.dumps([str(Path(p).absolute()) for p in sources]))
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
                reasons[reason_group(reason)] += 1

        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM messages)").fetchone()[0]
        resuming = meta(conn, "bulk_pending") == "1"
        bulk = bool(todo) and (cfg.bulk == "always" or (cfg.bulk == "auto" and (empty or resuming)))
        if bulk:
            # A rollback journal instead of WAL while loading: new pages are written once, not to the WAL and
            # again at checkpoints. Kill-safety is the same (a hot journal is rolled back on the next open).
            conn.execute("PRAGMA journal_mode=TRUNCATE")
            begin_bulk(conn, cfg.fts == "rebuild")

        writer = Writer(conn, bulk, cfg.batch_messages, summary, reasons, hooks)
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
        if needs_finish(conn):
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


def load_config(path: str | Path) -> IngestConfig:
    """An IngestConfig from a YAML, TOML or JSON file (the whole file, or its `ingest` table). A file that cannot
    be read or parsed is a ConfigFileError; bad values stay a pydantic ValidationError (both are ValueErrors)."""
    return IngestConfig.model_validate(read_config_file(path, section="ingest"))
