"""Hostile testing of the store (issue 23): a half-built store, symlink loops, a FIFO, two ingests at once, stale
skips, huge headers. Real stores from real Enron mail, real `inboxrl` processes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inboxrl.store.ingest import IngestConfig, StoreBusyError, ingest
from inboxrl.store.schema import StoreIncompleteError, connect
from inboxrl.tools.base import Scope
from inboxrl.tools.inbox import InboxTools, StoreOpenError
from store_helpers import real_messages, to_mbox, with_header

FOLDERS = ["conferences", "universities", "ut", "rice"]
INBOX = "vince.kaminski@enron.com"
CLI = "from inboxrl.cli import app; app()"


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], check=False, capture_output=True, text=True,
                          timeout=timeout)


_KILLED_INGEST = """
import os, sys
from inboxrl.store.ingest import IngestConfig, IngestHooks, ingest
db, *paths = sys.argv[1:]
ingest(paths, db, workers=1, config=IngestConfig(batch_messages=50),
       hooks=IngestHooks(after_commit=lambda n: os._exit(3)))
"""


@pytest.fixture(scope="module")
def half_built(tmp_path_factory, kaminski_dir):
    """A store whose bulk ingest stopped right after its first commit, as a kill leaves it."""
    db = tmp_path_factory.mktemp("half") / "half.db"
    paths = [str(kaminski_dir / f"{f}.mbox.xz") for f in FOLDERS]
    p = subprocess.run([sys.executable, "-c", _KILLED_INGEST, str(db), *paths], check=False, capture_output=True,
                       timeout=120)
    assert p.returncode == 3, p.stderr.decode()[-2000:]
    return db, paths


def test_a_half_built_store_is_refused_with_the_command_that_completes_it(half_built):
    db, paths = half_built
    c = sqlite3.connect(db)
    assert c.execute("SELECT value FROM meta WHERE key='bulk_pending'").fetchone()[0] == "1"
    assert c.execute("SELECT count(*) FROM messages").fetchone()[0] > 0  # mail is there, unsearchable
    c.close()
    with pytest.raises(StoreIncompleteError, match="did not finish"):
        connect(str(db), readonly=True)
    with pytest.raises(StoreOpenError, match="inboxrl ingest"):
        InboxTools(db, Scope(INBOX))
    r = _cli("search", "research", "--db", str(db), "--inbox", INBOX)
    assert r.returncode != 0
    assert "No emails found" not in r.stdout and "Traceback" not in r.stderr
    err = " ".join(r.stderr.split())
    assert "did not finish" in err and "inboxrl ingest" in err and paths[0] in err, err


def test_eval_refuses_a_half_built_store(half_built, questions_path, tmp_path):
    db, _ = half_built
    out = tmp_path / "run"
    r = _cli("eval", "--db", str(db), "--questions", str(questions_path), "--model", "nobody/model",
             "--base-url", "http://127.0.0.1:9/v1", "--judge", "lexical", "--out", str(out), "--limit", "2")
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "did not finish" in " ".join(r.stderr.split())
    assert not (out / "trajectories.jsonl").exists()


def test_the_named_command_completes_the_store(half_built, tmp_path):
    db, paths = half_built
    copy = tmp_path / "copy.db"
    copy.write_bytes(db.read_bytes())
    ingest(paths, copy, workers=1)
    with InboxTools(copy, Scope(INBOX)) as tools:
        assert tools.search_inbox(["research"])


def test_a_directory_symlink_loop_is_walked_once(tmp_path, kaminski_dir):
    """`mkdir -p L/a; ln -s . L/self; ln -s .. L/a/back`: the walk used to grow exponentially and never end."""
    root = tmp_path / "L"
    (root / "a").mkdir(parents=True)
    (root / "self").symlink_to(".")
    (root / "a" / "back").symlink_to("..")
    (root / "a" / "m.mbox").write_bytes(to_mbox(real_messages(kaminski_dir, "universities", 5)))
    r = _cli("ingest", str(root), "--db", str(tmp_path / "x.db"), "--json", timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["sources_found"] == 1 and s["store_messages"] == 5


def test_a_fifo_source_is_skipped_counted_and_named(tmp_path, kaminski_dir):
    fifo = tmp_path / "pipe.mbox"
    os.mkfifo(fifo)
    folder = tmp_path / "mail"
    folder.mkdir()
    os.mkfifo(folder / "inner.mbox")
    (folder / "m.mbox").write_bytes(to_mbox(real_messages(kaminski_dir, "universities", 3)))
    r = _cli("ingest", str(fifo), str(folder), "--db", str(tmp_path / "x.db"), "--json", timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["store_messages"] == 3
    assert s["skip_reasons"].get("not a regular file (FIFO)") == 2, s
    c = sqlite3.connect(tmp_path / "x.db")
    named = {row[0] for row in c.execute("SELECT source FROM skips WHERE reason LIKE 'not a regular file%'")}
    c.close()
    assert named == {str(fifo), str(folder / "inner.mbox")}


def test_a_second_ingest_into_the_same_store_is_refused_while_the_first_runs(tmp_path, kaminski_dir):
    db = tmp_path / "x.db"
    marker = tmp_path / "in-transaction"
    paths = [str(kaminski_dir / f"{f}.mbox.xz") for f in FOLDERS]
    script = (
        "import sys, time; from pathlib import Path\n"
        "from inboxrl.store.ingest import IngestHooks, ingest\n"
        "def hold(n):\n"
        f"    Path({str(marker)!r}).touch(); time.sleep(600)\n"
        "ingest(sys.argv[2:], sys.argv[1], workers=1, hooks=IngestHooks(before_commit=hold))\n"
    )
    p = subprocess.Popen([sys.executable, "-c", script, str(db), *paths], start_new_session=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), p.communicate(timeout=10)[1].decode()[-2000:]
        with pytest.raises(StoreBusyError, match="another ingest"):
            ingest(paths, db, workers=1)
        r = _cli("ingest", *paths, "--db", str(db))
        assert r.returncode == 2 and "another ingest is writing to" in " ".join(r.stderr.split()), r.stderr
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    # the lock dies with its process: the same ingest now completes the store, nothing skipped
    s = ingest(paths, db, workers=1)
    assert s.skipped == 0 and s.sources_ingested == len(FOLDERS)


def test_store_error_skips_of_a_failed_run_go_when_a_rerun_succeeds(tmp_path, kaminski_dir):
    """A unit that failed to write (full disk: 'store error') is retried by the next run; its old skip row must
    not outlive the success."""
    src = tmp_path / "m.mbox"
    src.write_bytes(to_mbox(real_messages(kaminski_dir, "universities", 20)))
    db = tmp_path / "x.db"
    ingest([], db, workers=1)  # an empty store with its schema
    c = sqlite3.connect(db)
    c.execute("INSERT INTO skips(source, position, reason) VALUES (?, 'file', ?)",
              (str(src.resolve()), "store error: OperationalError: database or disk is full"))
    c.commit()
    c.close()
    s = ingest([src], db, workers=1)
    assert s.store_skips == 0 and s.stored == 20


def test_huge_headers_are_cut_before_the_model_sees_them(tmp_path, kaminski_dir):
    """A 1 MB Subject (and a 1 MB From name) used to reach the model whole, in search results and read_email."""
    raw = real_messages(kaminski_dir, "universities", 1)[0]
    raw = with_header(raw, "Subject", b"research " + b"x" * (1 << 20))
    raw = with_header(raw, "From", b'"' + b"N" * (1 << 20) + b'" <' + INBOX.encode() + b">")
    (tmp_path / "m.mbox").write_bytes(to_mbox([raw]))
    db = tmp_path / "x.db"
    ingest([tmp_path / "m.mbox"], db, workers=1)
    with InboxTools(db, Scope(INBOX)) as tools:
        found = tools.call("search_inbox", {"keywords": ["research"]})
        assert found.ok and len(found.content) < 5000, len(found.content)
        mid = found.ids[0]
        mail = tools.call("read_email", {"message_id": mid})
        limit = tools.config.body_char_limit
        assert mail.ok and len(mail.content) < limit + 5000, len(mail.content)
        assert json.loads(mail.content)["subject"].endswith("…")


def test_an_ingest_config_with_unknown_keys_is_refused(tmp_path):
    cfg = tmp_path / "ingest.yaml"
    cfg.write_text("workers: 1\nbatch_mesages: 5\n")
    from inboxrl.store.ingest import load_config

    with pytest.raises(ValueError):
        load_config(cfg)
    assert IngestConfig().workers == 2


def test_invalid_base64_is_kept_as_sent_and_flagged():
    from inboxrl.store.parse import INVALID_BASE64_NOTE, parse_message

    raw = (b"From: a@b.com\nTo: c@d.com\nSubject: b64\nMessage-ID: <2@x>\nContent-Type: text/plain\n"
           b"Content-Transfer-Encoding: base64\n\nMeeting moved to Friday\n")
    assert parse_message(raw).body == INVALID_BASE64_NOTE + "Meeting moved to Friday\n"  # not decoded junk
    good = raw.replace(b"Meeting moved to Friday", b"TWVldGluZyBtb3ZlZCB0byBGcmlkYXk=")
    assert parse_message(good).body == "Meeting moved to Friday"


def test_a_mixed_encoding_from_header_decodes_each_part():
    """A latin-1 name beside a UTF-8 address used to become `jã¶rg@x.com`."""
    from inboxrl.store.parse import parse_message

    m = parse_message(b"From: J\xf6rg <j\xc3\xb6rg@x.com>\nTo: a@b.com\nSubject: hi\nMessage-ID: <1@x>\n\nbody\n")
    assert (m.from_name, m.from_addr) == ("J\u00f6rg", "j\u00f6rg@x.com")


def test_train_refuses_a_half_built_store(half_built, tmp_path):
    from inboxrl.training.config import default_shared_dir

    db, _ = half_built
    r = _cli("train", "--config", str(Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"),
             "--set", f"data.db={db}", "--set", f"run_dir={tmp_path / 'run'}")
    assert default_shared_dir().is_dir()
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "did not finish" in " ".join(r.stderr.split())
