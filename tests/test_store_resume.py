"""Idempotency, duplicates/aliases, kill-and-resume: a killed ingest re-run ends like a clean run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from inboxrl.store.ingest import IngestConfig, ingest
from store_helpers import message_id, real_messages, to_mbox, with_header

FOLDERS = ["conferences", "universities", "ut", "rice", "stanford", "credit", "australia", "consultants"]


def _state(db) -> dict[str, object]:
    """Everything a resumed run must reproduce."""
    c = sqlite3.connect(db)
    try:
        out: dict[str, object] = {
            t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("messages", "aliases", "participants", "skips", "ingested_sources", "messages_fts")
        }
        out["alias_map"] = set(
            c.execute(
                "SELECT a.alias, m.content_hash FROM aliases a JOIN messages m ON m.id = a.message_rowid"
            )
        )
        out["participants_set"] = set(
            c.execute(
                "SELECT m.content_hash, p.address, p.role FROM participants p"
                " JOIN messages m ON m.id=p.message_rowid"
            )
        )
        out["fts_hits"] = c.execute(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'research'"
        ).fetchone()[0]
        c.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")
        return out
    finally:
        c.close()


@pytest.fixture(scope="module")
def paths(kaminski_dir):
    return [kaminski_dir / f"{f}.mbox.xz" for f in FOLDERS]


@pytest.fixture(scope="module")
def clean(tmp_path_factory, paths):
    db = tmp_path_factory.mktemp("clean") / "clean.db"
    summary = ingest(paths, db, workers=1)
    return db, summary, _state(db)


def test_second_run_adds_nothing(clean, paths, tmp_path):
    db, first, state = clean
    assert first.stored > 1000 and first.sources_ingested == len(FOLDERS)
    again = ingest(paths, db, workers=1)
    assert (again.sources_ingested, again.sources_unchanged, again.messages_read, again.stored) == (
        0,
        len(FOLDERS),
        0,
        0,
    )
    assert _state(db) == state
    # The same file under another path is read again, but every message is already there.
    copy = tmp_path / "copy.mbox.xz"
    copy.write_bytes(paths[0].read_bytes())
    s = ingest([copy], db, workers=1)
    assert s.messages_read > 0 and s.stored == 0 and s.already_stored == s.messages_read
    assert _state(db)["messages"] == state["messages"]


def test_duplicates_are_stored_once_and_every_copy_resolves(tmp_path, kaminski_dir):
    msgs = real_messages(kaminski_dir, "rice", 12)
    # The same mail filed in a second folder: its own Message-ID, and (as in Enron) a Bcc only it shows.
    copies = [with_header(m, "Message-ID", f"<copy{i}@other.folder>".encode()) for i, m in enumerate(msgs)]
    copies[0] = with_header(copies[0], "Bcc", b"hidden.reader@enron.com")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "inbox.mbox").write_bytes(to_mbox(msgs))
    (tmp_path / "a" / "projects.mbox").write_bytes(to_mbox(copies))
    db = tmp_path / "s.db"
    s = ingest([tmp_path / "a"], db, workers=1)
    assert s.stored + s.duplicates == 24 and s.duplicates >= 12
    c = sqlite3.connect(db)
    for orig, copy in zip(msgs, copies):
        a = c.execute("SELECT message_rowid FROM aliases WHERE alias=?", (message_id(orig),)).fetchone()
        b = c.execute("SELECT message_rowid FROM aliases WHERE alias=?", (message_id(copy),)).fetchone()
        assert a is not None and a == b
    rowid = c.execute("SELECT message_rowid FROM aliases WHERE alias='<copy0@other.folder>'").fetchone()[0]
    assert ("bcc", "hidden.reader@enron.com") in set(
        c.execute("SELECT role, address FROM participants WHERE message_rowid=?", (rowid,))
    )
    sources = {r[0] for r in c.execute("SELECT source FROM aliases WHERE message_rowid=?", (rowid,))}
    assert sources == {"a/inbox", "a/projects"}
    _assert_no_repeated_participants(c)


def _assert_no_repeated_participants(c: sqlite3.Connection) -> None:
    """A bulk load has no unique index while it writes: the writer alone keeps copies from repeating rows."""
    total = c.execute("SELECT count(*) FROM participants").fetchone()[0]
    distinct = c.execute("SELECT count(*) FROM (SELECT DISTINCT message_rowid, role, address FROM participants)"
                         ).fetchone()[0]
    assert total == distinct > 0
    unique = [r[1] for r in c.execute("PRAGMA index_list(participants)") if r[2]]
    assert unique, "participants must have its unique index after the load"


def test_real_enron_duplicate_groups_account_for_every_alias(enron_store):
    """kaminski-v files some mails in several folders: each group is one row whose aliases all point at it.
    The counts are those of the shared corpus's kaminski-v (7,022 mails); a dedup change moves them."""
    c = sqlite3.connect(f"file:{enron_store}?mode=ro", uri=True)
    groups = c.execute(
        "SELECT message_rowid, count(*), count(DISTINCT source) FROM aliases GROUP BY message_rowid"
        " HAVING count(*) > 1"
    ).fetchall()
    _assert_no_repeated_participants(c)
    n_msg, n_alias = c.execute(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM aliases)"
    ).fetchone()
    assert (n_msg, n_alias) == (6729, 7022)
    assert n_alias - n_msg == sum(n - 1 for _, n, _ in groups)
    # 247 mails stored once for several copies: 120 filed in two or more folders, 127 twice in one folder.
    assert len(groups) == 247
    assert sum(1 for _, _, folders in groups if folders >= 2) == 120


# An ingest in a child process with the writer's test hooks: "exit:N" leaves abruptly (as a kill would) once N
# units are committed; "pause:N:PATH" creates PATH inside the transaction after N committed units and waits there,
# so that the test can SIGKILL it (and its live workers) mid-transaction.
_RUN = """
import os, sys, time
from pathlib import Path
from inboxrl.store.ingest import IngestConfig, IngestHooks, ingest
workers, batch, mode, db, *paths = sys.argv[1:]
hooks = IngestHooks()
kind, _, arg = mode.partition(":")
if kind == "exit":
    hooks.after_commit = lambda n: os._exit(3) if n >= int(arg) else None
elif kind == "pause":
    n_str, path = arg.split(":", 1)
    def pause(n):
        if n >= int(n_str):
            Path(path).touch()
            time.sleep(600)
    hooks.before_commit = pause
ingest(paths, db, workers=int(workers), config=IngestConfig(batch_messages=int(batch)), hooks=hooks)
"""


def _spawn(db, paths, mode, env_extra=None, workers=1, batch=300) -> subprocess.Popen:
    """An ingest in its own process group, so a kill takes its worker processes with it. Small write
    transactions, so that there are several commits to be killed between."""
    return subprocess.Popen(
        [sys.executable, "-c", _RUN, str(workers), str(batch), mode, str(db), *map(str, paths)],
        env=dict(os.environ, **(env_extra or {})),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_killed_between_units_then_resumed_matches_a_clean_run(clean, paths, tmp_path):
    db = tmp_path / "k.db"
    p = _spawn(db, paths, "exit:3")
    _, err = p.communicate(timeout=300)
    assert p.returncode == 3, err.decode()[-2000:]
    c = sqlite3.connect(db)
    n_done = c.execute("SELECT count(*) FROM ingested_sources").fetchone()[0]
    assert 3 <= n_done < len(FOLDERS)
    # consistent mid-way: every committed unit's messages and aliases are there, nothing of the others
    n_stored, n_read = c.execute("SELECT sum(n_stored), sum(n_read) FROM ingested_sources").fetchone()
    assert c.execute("SELECT count(*) FROM messages").fetchone()[0] == n_stored
    assert c.execute("SELECT count(*) FROM aliases").fetchone()[0] == n_read
    assert c.execute("SELECT value FROM meta WHERE key='bulk_pending'").fetchone()[0] == "1"
    c.close()
    s = ingest(paths, db, workers=1)
    assert s.sources_unchanged == n_done and s.sources_ingested == len(FOLDERS) - n_done
    assert _state(db) == clean[2]


def test_sigkill_mid_transaction_with_worker_processes_then_resume(clean, paths, tmp_path):
    """SIGKILL the ingest and its live parsers inside a write transaction, re-run: the same store."""
    db = tmp_path / "k.db"
    marker = tmp_path / "in-transaction"
    p = _spawn(db, paths, f"pause:2:{marker}", {"INBOXRL_INGEST_POOL_MIN_BYTES": "0"}, workers=2)
    deadline = time.monotonic() + 240
    while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), p.communicate(timeout=30)[1].decode()[-2000:]
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    c = sqlite3.connect(db)  # opening rolls the interrupted transaction back
    n_done, n_stored = c.execute("SELECT count(*), sum(n_stored) FROM ingested_sources").fetchone()
    assert 2 <= n_done < len(FOLDERS)
    assert c.execute("SELECT count(*) FROM messages").fetchone()[0] == n_stored
    c.close()
    s = ingest(paths, db, workers=1)
    assert s.sources_unchanged == n_done
    assert _state(db) == clean[2]


def test_incremental_ingest_equals_one_run(clean, paths, tmp_path):
    """Adding folders to an existing store (row-by-row indexing, no bulk load) ends in the same store."""
    db = tmp_path / "inc.db"
    first = ingest(paths[:3], db, workers=1)
    second = ingest(paths[3:], db, workers=1)
    c = sqlite3.connect(db)
    assert c.execute("SELECT value FROM meta WHERE key='bulk_pending'").fetchone()[0] == "0"
    assert c.execute("SELECT count(*) FROM sqlite_master WHERE name='participants_stage'").fetchone()[0] == 0
    c.close()
    assert first.stored + second.stored == clean[1].stored
    assert _state(db) == clean[2]


@pytest.mark.parametrize(
    "cfg", [IngestConfig(fts="inline"), IngestConfig(batch_messages=1), IngestConfig(bulk="never")]
)
def test_write_strategies_give_the_same_store(clean, paths, tmp_path, cfg):
    """FTS kept in step by its trigger, one transaction per unit, no bulk mode: all end in the same store."""
    db = tmp_path / "v.db"
    ingest(paths, db, workers=1, config=cfg)
    assert _state(db) == clean[2]
