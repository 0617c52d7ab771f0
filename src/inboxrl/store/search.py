"""Full-text search constrained to one inbox's scope, designed for a whole-corpus store (200k-300k messages).

What the design rests on (measured; the figures are in docs/history/search.md):
- Walking an FTS5 doclist in C is cheap (tens of nanoseconds a row), even for a word in half the corpus. Handing a
  row to Python costs far more, `bm25()` more again (microseconds a row), and `bm25()` also walks the whole doclist
  of every word once per query to get its IDF. `MATCH ? AND rowid IN (...)` / `rowid = ?` lookups are slow.
- So FTS5 drives and the scope filter runs in C: the scope is copied once (INSERT ... SELECT, no Python) into a
  temp table keyed by rowid and joined to the match with `CROSS JOIN`, which keeps FTS5 as the outer loop. Only
  in-scope rows reach `bm25()` or Python.
- Words found in a large part of the corpus ("enron", "please") would still make every query walk huge doclists,
  and they cannot rank anything anyway. Their document frequency is probed once per store and word (a bounded
  count), and they are dropped when the query has other words; a query of only such words gets a few dozen
  in-scope matches from the rowid runs where the scope is densest, newest first, with a note asking for a more
  specific word.
- bm25 scores at most `cap` in-scope matches (the most recently stored), and says so when it had to cut.
- Snippets are made in Python (tools/snippets.py), not by FTS5's `snippet()`, for the cost reasons given there.
- Per-query CPU (docs/history/search.md): the store is read through mmap (set once per connection,
  unless the caller chose a size), rows come back as plain tuples, bm25's top n are chosen by SQLite's sorter (only
  n rows reach Python, not up to `cap`), and a query whose words are too rare for the cap to bite skips the
  newest-first walk. What remains is mostly FTS5's own work: bm25() costs about 4 µs per scored row (it reads each
  row's length from the docsize table) plus a walk of each phrase's whole doclist for its IDF.

Nothing here decides what the agent may see: callers re-check every returned rowid against the store itself.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MAX_SCOPE_TABLES = 16  # scope tables kept per connection (Vince Kaminski's 3,400 messages take about 150 kB)
# Reading the store through mmap instead of read() into SQLite's page cache cut search CPU by 5 to 10% (and ART-E's
# query shape on the same connection by a third). SQLite clamps this to its compile-time maximum (2 GB by default);
# it is address space shared with the OS page cache, not extra memory.
MMAP_BYTES = 1 << 31

_ids = itertools.count(1)
_df_cache: dict[tuple[str, int, str], int] = {}  # (store file, probe limit, word) -> matches, capped at the limit
_DF_CACHE_MAX = 200_000
# A scope table's dense rowid runs, by the table's `made` number and the run parameters: `made` is unique to one
# creation of one table in this process, and the table's rows never change until it is dropped, so an entry can
# never be stale.
_runs_cache: dict[tuple[int, int, int], list[tuple[int, int]]] = {}
_RUNS_CACHE_MAX = 4096


@dataclass(frozen=True)
class ParticipantFilter:
    """Sender or recipient filter: an exact address, or a LIKE pattern on address and display name."""

    roles: tuple[str, ...]
    exact: str | None = None
    like: str | None = None


def _store_file(conn: sqlite3.Connection) -> str:
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return row[2] or ""
    return ""


class _Tx:
    """Commits temp-table writes, unless the caller's connection was already inside its own transaction."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn, self.outer = conn, conn.in_transaction

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        if not self.outer and self.conn.in_transaction:
            self.conn.commit()


class ScopedSearch:
    """One inbox+date scope as a temp table on the store connection, and the queries that use it.

    The agent loop shares one connection between all episodes and never closes the tools, and a GRPO group runs
    the same question several times; so a scope's table is named after the scope, reused by every instance with
    that scope, and only the `MAX_SCOPE_TABLES` most recently made stay on a connection. A query whose table was
    evicted meanwhile rebuilds it and runs again.
    """

    def __init__(self, conn: sqlite3.Connection, inbox: str, after: str | None, before: str | None):
        self.conn = conn
        self._scope = (inbox, after, before)
        digest = hashlib.sha1(repr(self._scope).encode("utf-8", "replace")).hexdigest()[:16]
        self._name = f"inboxrl_scope_{digest}"
        self.scope_table = f"temp.{self._name}"
        self._lock = threading.Lock()
        self._store = _store_file(conn)
        self._local_df: dict[tuple[int, str], int] = {}
        self._runs: list[tuple[int, int]] | None = None
        with self._lock:
            _use_mmap(conn)
            self._ensure_table()

    def _ensure_table(self) -> None:
        conn = self.conn
        if conn.execute("SELECT 1 FROM sqlite_temp_master WHERE name = ?", (self._name,)).fetchone():
            return
        inbox, after, before = self._scope
        sql = (f"INSERT OR IGNORE INTO {self.scope_table}(id, date) SELECT message_rowid, date FROM participants "
               "WHERE address = ? AND date IS NOT NULL")
        cond, cargs = _date_range("date", after, before)
        sql += cond
        args: list[object] = [inbox, *cargs]
        with _Tx(conn):
            conn.execute("CREATE TABLE IF NOT EXISTS temp.inboxrl_scopes (name TEXT PRIMARY KEY, made INTEGER)")
            old = [r[0] for r in conn.execute("SELECT name FROM temp.inboxrl_scopes ORDER BY made DESC")]
            for name in old[MAX_SCOPE_TABLES - 1:]:
                conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
                conn.execute("DELETE FROM temp.inboxrl_scopes WHERE name = ?", (name,))
            conn.execute(f"CREATE TABLE {self.scope_table} (id INTEGER PRIMARY KEY, date TEXT NOT NULL)")
            conn.execute(sql, args)
            conn.execute("INSERT OR REPLACE INTO temp.inboxrl_scopes VALUES (?, ?)", (self._name, next(_ids)))

    def _query(self, sql: str, args: Sequence[object]) -> list[Any]:
        """Runs a query on the scope table, rebuilding the table once if another scope evicted it."""
        with self._lock:
            try:
                return tuple_cursor(self.conn).execute(sql, args).fetchall()
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):
                    raise
                self._ensure_table()
                return tuple_cursor(self.conn).execute(sql, args).fetchall()

    def size(self) -> int:
        return self._query(f"SELECT count(*) FROM {self.scope_table}", ())[0][0]

    # -- how common a word is ------------------------------------------------------------------------------------

    def common_limit(self, absolute: int, fraction: float) -> int:
        """How many messages make a word too common: `absolute`, or `fraction` of the store if that is fewer."""
        key = (self._store, -1, "")
        if not self._store or key not in _df_cache:
            with self._lock:
                size = self.conn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
            if not self._store:
                return max(50, min(absolute, int(fraction * size)))
            _df_cache[key] = size
        return max(50, min(absolute, int(fraction * _df_cache[key])))

    def doc_freq(self, word: str, limit: int) -> int:
        """Messages in the whole store containing `word`, counted up to `limit` (a C-only walk, then cached)."""
        key = (self._store, limit, word)
        cache = _df_cache if self._store else None
        if cache is not None and key in cache:
            return cache[key]
        if (limit, word) in self._local_df:
            return self._local_df[(limit, word)]
        with self._lock:
            n = self.conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ? LIMIT ?)",
                (_quote(word), limit),
            ).fetchone()[0]
        if cache is not None:
            if len(cache) >= _DF_CACHE_MAX:
                cache.clear()
            cache[key] = n
        else:
            self._local_df[(limit, word)] = n
        return n

    # -- ranking -----------------------------------------------------------------------------------------------------

    def _where(self, after: str | None, before: str | None,
               filters: Iterable[ParticipantFilter]) -> tuple[str, list[object]]:
        cond, cargs = _date_range("s.date", after, before)
        sql = "WHERE messages_fts MATCH ?" + cond
        args: list[object] = list(cargs)
        for f in filters:
            roles = ",".join("?" * len(f.roles))
            if f.exact is not None:
                cond, cargs = "p.address = ?", [f.exact]
            else:
                cond, cargs = "(p.address LIKE ? ESCAPE '\\' OR lower(p.name) LIKE ? ESCAPE '\\')", [f.like, f.like]
            sql += (f" AND EXISTS (SELECT 1 FROM participants p WHERE p.message_rowid = f.rowid "
                    f"AND p.role IN ({roles}) AND {cond})")
            args += [*f.roles, *cargs]
        return sql, args

    def by_bm25(self, expr: str, after: str | None, before: str | None, filters: list[ParticipantFilter],
                n: int, cap: int, weights: tuple[float, float],
                max_matches: int | None = None) -> tuple[list[int], bool]:
        """Top n by bm25 among in-scope matches; True when more than `cap` matched and only `cap` were scored.

        SQLite's sorter picks the top n (bm25() is lower for better matches; ties: newest first), so only n rows
        reach Python. `max_matches` is an upper bound on the expression's matches in the whole store, if the caller
        knows one (from `doc_freq`): when it is at most `cap` the cap cannot bite, and FTS5 walks in rowid order
        (cheaper than newest first) with no CTE. Scoring all in-scope matches first and walking again only when
        there were more than `cap` was tried too: a little faster at the median, but unbounded for a word that is
        mostly in the inbox's own mail (its owner's name), which is what the cap is for.
        """
        where, args = self._where(after, before, filters)
        table = self.scope_table
        if max_matches is not None and max_matches <= cap:
            sql = (f"SELECT f.rowid FROM messages_fts f CROSS JOIN {table} s ON s.id = f.rowid {where} "
                   f"ORDER BY bm25(messages_fts, ?, ?), f.rowid DESC LIMIT ?")
            return [r[0] for r in self._query(sql, (expr, *args, *weights, n))], False
        # The newest cap+1 in-scope matches are scored once (a materialized CTE; the last only tells that there
        # were more than cap); the best n+1 are picked with the count and the oldest rowid, which is left out
        # when there were more than cap.
        sql = (f"WITH c AS MATERIALIZED (SELECT f.rowid AS id, bm25(messages_fts, ?, ?) AS score "
               f"FROM messages_fts f CROSS JOIN {table} s ON s.id = f.rowid {where} "
               f"ORDER BY f.rowid DESC LIMIT ?) "
               f"SELECT id, (SELECT count(*) FROM c), (SELECT min(id) FROM c) FROM c ORDER BY score, id DESC LIMIT ?")
        rows = self._query(sql, (*weights, expr, *args, cap + 1, n + 1))
        capped = bool(rows) and rows[0][1] > cap
        left_out = rows[0][2] if capped else None
        return [r[0] for r in rows if r[0] != left_out][:n], capped

    def by_date(self, expr: str, after: str | None, before: str | None, filters: list[ParticipantFilter],
                n: int) -> list[int]:
        """Newest n in-scope matches (ART-E's order). The sort runs in C, over in-scope matches only."""
        where, args = self._where(after, before, filters)
        sql = (f"SELECT f.rowid FROM messages_fts f CROSS JOIN {self.scope_table} s ON s.id = f.rowid {where} "
               f"ORDER BY s.date DESC, f.rowid DESC LIMIT ?")
        return [r[0] for r in self._query(sql, (expr, *args, n))]

    def recent(self, expr: str, after: str | None, before: str | None, filters: list[ParticipantFilter],
               n: int, k: int) -> list[int]:
        """For words in most mail: about k in-scope matches, newest first, found without walking whole doclists.

        Walking a doclist of 100k rows and testing each against the scope costs tens of milliseconds, so the walk
        is confined to the rowid runs where the scope is dense (a custodian's folders are stored together) and
        stops once k matches are found; only when that finds nothing does it walk everything.
        """
        where, args = self._where(after, before, filters)
        sql = (f"SELECT f.rowid, s.date FROM messages_fts f CROSS JOIN {self.scope_table} s ON s.id = f.rowid "
               f"{where} AND f.rowid BETWEEN ? AND ? ORDER BY f.rowid DESC LIMIT ?")
        rows: list[tuple[int, str]] = []
        for lo, hi in self._dense_runs():
            rows += self._query(sql, (expr, *args, lo, hi, k - len(rows)))
            if len(rows) >= k:
                break
        if not rows:
            rows = self._query(sql, (expr, *args, 0, 2**62, k))
        rows.sort(key=lambda r: (r[1], r[0]), reverse=True)
        return [r[0] for r in rows[:n]]

    def _dense_runs(self, max_gap: int = 32, max_runs: int = 8) -> list[tuple[int, int]]:
        """The scope's largest runs of nearby rowids, biggest first (computed once, on first need)."""
        if self._runs is None:
            made = self._query("SELECT made FROM temp.inboxrl_scopes WHERE name = ?", (self._name,))
            key = (made[0][0], max_gap, max_runs) if made else None
            if key is not None and key in _runs_cache:
                self._runs = _runs_cache[key]
                return self._runs
            ids = [r[0] for r in self._query(f"SELECT id FROM {self.scope_table} ORDER BY id", ())]
            runs: list[tuple[int, int, int]] = []
            start = prev = None
            count = 0
            for i in ids:
                if prev is not None and i - prev > max_gap:
                    runs.append((count, start, prev))  # type: ignore[arg-type]
                    start, count = i, 0
                if start is None:
                    start = i
                count += 1
                prev = i
            if prev is not None:
                runs.append((count, start, prev))  # type: ignore[arg-type]
            runs.sort(reverse=True)
            self._runs = [(lo, hi) for _, lo, hi in runs[:max_runs]]
            if key is not None:
                if len(_runs_cache) >= _RUNS_CACHE_MAX:
                    _runs_cache.clear()
                _runs_cache[key] = self._runs
        return self._runs

    def close(self) -> None:
        """Nothing to free: the scope table stays for the next episode with this scope (see the class doc)."""


def _quote(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def tuple_cursor(conn: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor that returns plain tuples whatever the connection's row_factory (sqlite3.Row costs per row)."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur


def _use_mmap(conn: sqlite3.Connection) -> None:
    """Reads the store through mmap, unless the connection's owner already set a size (or the build cannot)."""
    try:
        if conn.execute("PRAGMA main.mmap_size").fetchone()[0] == 0:
            conn.execute(f"PRAGMA main.mmap_size = {MMAP_BYTES}")
    except (sqlite3.DatabaseError, TypeError):
        pass


def _date_range(column: str, after: str | None, before: str | None) -> tuple[str, list[object]]:
    """The `AND` clauses of a [after, before) date window on `column`: one definition of the window's edges for
    the scope table and the search."""
    sql = ""
    args: list[object] = []
    if after:
        sql += f" AND {column} >= ?"
        args.append(after)
    if before:
        sql += f" AND {column} < ?"
        args.append(before)
    return sql, args
