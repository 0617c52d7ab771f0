"""Every source format, made on the fly from real kaminski-v messages, ingests to the same messages."""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import sqlite3

import pytest

from inboxrl.store import sources
from inboxrl.store.ingest import ingest
from inboxrl.store.parse import parse_message
from inboxrl.store.sources import discover
from store_helpers import message_id, real_messages, to_mbox

N = 40


@pytest.fixture(scope="module")
def msgs(kaminski_dir):
    return real_messages(kaminski_dir, "conferences", N)


def _ids(db) -> set[str]:
    c = sqlite3.connect(db)
    try:
        return {r[0] for r in c.execute("SELECT alias FROM aliases")}
    finally:
        c.close()


def _bodies(db) -> dict[str, str]:
    c = sqlite3.connect(db)
    try:
        return dict(c.execute("SELECT message_id, body FROM messages"))
    finally:
        c.close()


def _check(db, msgs, summary) -> None:
    want = {message_id(m) for m in msgs}
    assert _ids(db) == want
    assert summary.messages_read == len(msgs) and summary.skipped == 0
    bodies = _bodies(db)
    for m in msgs[:10]:
        p = parse_message(m)
        if p.message_id in bodies:
            assert bodies[p.message_id].strip() == p.body.strip()


@pytest.mark.parametrize("kind", ["plain", "gz", "bz2"])
def test_mbox_plain_gz_bz2(tmp_path, msgs, kind):
    data = to_mbox(msgs)
    path = tmp_path / {"plain": "inbox.mbox", "gz": "inbox.mbox.gz", "bz2": "inbox.mbox.bz2"}[kind]
    path.write_bytes({"plain": data, "gz": gzip.compress(data), "bz2": bz2.compress(data)}[kind])
    s = ingest([path], tmp_path / "s.db", workers=1)
    _check(tmp_path / "s.db", msgs, s)


def test_mbox_xz_from_the_shared_corpus(tmp_path, kaminski_dir):
    path = kaminski_dir / "conferences.mbox.xz"
    s = ingest([path], tmp_path / "s.db", workers=1)
    _check(tmp_path / "s.db", real_messages(kaminski_dir, "conferences"), s)
    c = sqlite3.connect(tmp_path / "s.db")
    assert {r[0] for r in c.execute("SELECT DISTINCT source FROM messages")} == {"kaminski-v/conferences"}


def test_from_quoting_is_undone(tmp_path, msgs):
    raw = msgs[0].rstrip(b"\n") + b"\nFrom here on, the meeting is moved.\n>From the minutes.\n"
    path = tmp_path / "q.mbox"
    path.write_bytes(to_mbox([raw, msgs[1]]))
    assert b"\n>From here on" in path.read_bytes()
    ingest([path], tmp_path / "s.db", workers=1)
    body = _bodies(tmp_path / "s.db")[message_id(raw)]
    assert "\nFrom here on, the meeting is moved." in body
    assert "\n>From the minutes." not in body and "\nFrom the minutes." in body  # mboxrd: one level removed


def test_maildir_cur_and_new_not_tmp(tmp_path, msgs):
    md = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    for i, m in enumerate(msgs):
        (md / ("cur" if i % 2 else "new") / f"1700000000.{i}.host:2,S").write_bytes(m)
    (md / "tmp" / "1700000000.999.host").write_bytes(b"Message-ID: <half-delivered@x>\n\npartial")
    units, unknown = discover([md])
    assert [u.kind for u in units] == ["maildir"] and not unknown
    s = ingest([md], tmp_path / "s.db", workers=1)
    _check(tmp_path / "s.db", msgs, s)


def test_enron_maildir_folders_recursive(tmp_path, msgs):
    root = tmp_path / "maildir" / "kaminski-v"
    for folder, part in (("inbox", msgs[:25]), ("inbox/projects", msgs[25:])):
        d = root / folder
        d.mkdir(parents=True)
        for i, m in enumerate(part, 1):
            (d / f"{i}.").write_bytes(m)
    units, _ = discover([tmp_path / "maildir"])
    assert sorted((u.kind, u.label) for u in units) == [
        ("enron-dir", "inbox/projects"),
        ("enron-dir", "kaminski-v/inbox"),
    ]
    s = ingest([tmp_path / "maildir"], tmp_path / "s.db", workers=1)
    _check(tmp_path / "s.db", msgs, s)


def test_single_eml_files(tmp_path, msgs):
    paths = []
    for i, m in enumerate(msgs[:5]):
        p = tmp_path / f"m{i}.eml"
        p.write_bytes(m.replace(b"\n", b"\r\n"))  # as saved by a Windows mail client
        paths.append(p)
    s = ingest(paths, tmp_path / "s.db", workers=1)
    _check(tmp_path / "s.db", msgs[:5], s)
    for m in msgs[:5]:
        assert "\r" not in _bodies(tmp_path / "s.db").get(message_id(m), "")


def _kaggle_csv(msgs) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "message"])
    for i, m in enumerate(msgs, 1):
        w.writerow([f"kaminski-v/conferences/{i}.", m.decode("utf-8", "surrogateescape")])
    return buf.getvalue().encode("utf-8", "surrogateescape")


def test_kaggle_csv(tmp_path, msgs):
    path = tmp_path / "emails.csv"
    path.write_bytes(_kaggle_csv(msgs))
    s = ingest([path], tmp_path / "s.db", workers=1)
    _check(tmp_path / "s.db", msgs, s)


def test_kaggle_csv_in_ranges_gives_the_same_store(tmp_path, msgs, monkeypatch):
    """A big CSV is cut into byte ranges on record boundaries; the messages must be exactly the same."""
    path = tmp_path / "emails.csv"
    path.write_bytes(_kaggle_csv(msgs))
    monkeypatch.setattr(sources, "CSV_CHUNK_BYTES", 4000)
    units, _ = discover([path])
    assert len(units) > 5 and all(u.kind == "csv" for u in units)
    s = ingest([path], tmp_path / "s.db", workers=2)
    _check(tmp_path / "s.db", msgs, s)


def test_mixed_folder_with_two_worker_processes(tmp_path, msgs, kaminski_dir, monkeypatch):
    from inboxrl.store import ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "POOL_MIN_BYTES", 0)  # small input: force the real process pool
    (tmp_path / "mix").mkdir()
    (tmp_path / "mix" / "a.mbox").write_bytes(to_mbox(msgs[:20]))
    (tmp_path / "mix" / "b.mbox.gz").write_bytes(gzip.compress(to_mbox(msgs[20:])))
    (tmp_path / "mix" / "notes.txt").write_text("shopping list: milk")
    s = ingest([tmp_path / "mix", kaminski_dir / "ut.mbox.xz"], tmp_path / "s.db", workers=2)
    ut = real_messages(kaminski_dir, "ut")
    assert _ids(tmp_path / "s.db") == {message_id(m) for m in msgs + ut}
    assert s.skip_reasons == {"not a mail file (unknown format)": 1}
    assert s.messages_read == len(msgs) + len(ut)
