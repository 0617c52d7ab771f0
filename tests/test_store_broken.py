"""Ingest of broken input: everything good is kept, every skip is counted with its reason, nothing aborts."""

from __future__ import annotations

import gzip
import lzma
import sqlite3

import pytest
from typer.testing import CliRunner

from inboxrl.store.ingest import ingest
from inboxrl.store.sources import split_mbox
from store_helpers import message_id, real_messages, store_app, to_mbox, with_header


@pytest.fixture(scope="module")
def msgs(kaminski_dir):
    return real_messages(kaminski_dir, "conferences", 30)


def _rows(db, sql, *args):
    c = sqlite3.connect(db)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def _aliases(db) -> set[str]:
    return {r[0] for r in _rows(db, "SELECT alias FROM aliases")}


def test_broken_messages_in_an_mbox_are_counted_and_the_rest_kept(tmp_path, msgs):
    good = msgs[:20]
    no_id = with_header(msgs[20], "Message-ID", None)
    bad_date = with_header(msgs[21], "Date", b"Tuesday, sometime after lunch")
    future = with_header(msgs[22], "Date", b"Thu, 1 Jan 2043 10:00:00 +0000")
    no_from_no_date = with_header(with_header(msgs[23], "From", None), "Date", None)
    invalid_bytes = (
        with_header(msgs[24], "Subject", b"\xff\xfe\x00 caf\xe9 \x9d\x81") + b"\n\xc3\x28\xa0\xa1\x00\x01"
    )
    no_headers = b"this line is not a header\n\x00\x01\x02\xff binary junk\n"
    empty = b"\n"
    data = to_mbox(good + [no_id, bad_date, future, no_from_no_date, invalid_bytes]) + (
        b"From MAILER-DAEMON Mon Apr 18 14:19:09 2022\n" + no_headers + b"\n"
        b"From MAILER-DAEMON Mon Apr 18 14:19:09 2022\n" + empty
    )
    path = tmp_path / "broken.mbox"
    path.write_bytes(data)
    db = tmp_path / "s.db"
    s = ingest([path], db, workers=1)

    assert s.messages_read == 27
    assert s.stored == 25 and s.skipped == 2
    assert s.skip_reasons == {"no mail headers": 1, "empty message": 1}
    assert sorted(r[0] for r in _rows(db, "SELECT reason FROM skips")) == ["empty message", "no mail headers"]
    assert _aliases(db) >= {message_id(m) for m in good + [bad_date, future, no_from_no_date, invalid_bytes]}
    gen = _rows(db, "SELECT message_id FROM messages WHERE message_id LIKE '%@inboxrl.generated>'")
    assert len(gen) == 1
    flagged = dict(_rows(db, "SELECT message_id, date FROM messages WHERE date_ok = 0"))
    assert flagged == {
        message_id(bad_date): None,
        message_id(future): "2043-01-01T10:00:00Z",
        message_id(no_from_no_date): None,
    }
    subj, body = _rows(
        db, "SELECT subject, body FROM messages WHERE message_id=?", message_id(invalid_bytes)
    )[0]
    assert "caf" in subj and "\x00" not in subj + body
    assert _rows(db, "SELECT n_read, n_stored, n_skipped FROM ingested_sources") == [(27, 25, 2)]


def test_truncated_plain_mbox_keeps_whole_messages(tmp_path, msgs):
    data = to_mbox(msgs)
    cut = data.index(b"Subject:", data.index(message_id(msgs[25]).encode()))  # in message 26's headers
    path = tmp_path / "cut.mbox"
    path.write_bytes(data[: cut + 5])
    db = tmp_path / "s.db"
    s = ingest([path], db, workers=1)
    assert _aliases(db) == {message_id(m) for m in msgs[:25]}
    assert s.stored == 25 and s.messages_read == 26
    assert s.skip_reasons == {"truncated mbox": 1, "incomplete message (source truncated)": 1}


def test_truncated_xz_keeps_what_decompresses(tmp_path, kaminski_dir):
    whole = (kaminski_dir / "conferences.mbox.xz").read_bytes()
    path = tmp_path / "conferences.mbox.xz"
    path.write_bytes(whole[: len(whole) * 6 // 10])
    prefix = lzma.LZMADecompressor().decompress(path.read_bytes())  # what any reader can recover
    complete = split_mbox(prefix)[0][:-1]
    assert len(complete) > 50
    db = tmp_path / "s.db"
    s = ingest([path], db, workers=1)
    assert _aliases(db) == {message_id(m) for m in complete}
    assert s.stored + s.duplicates == len(complete)
    assert s.skip_reasons == {"truncated xz": 1, "incomplete message (source truncated)": 1}
    reasons = dict(_rows(db, "SELECT position, reason FROM skips"))
    assert reasons["file"].startswith("truncated xz") and reasons[str(len(complete))].startswith("incomplete")


def test_corrupt_gz_and_empty_xz_never_abort(tmp_path, msgs, kaminski_dir):
    data = gzip.compress(to_mbox(msgs))
    bad = bytearray(data)
    for i in range(len(bad) // 2, len(bad) // 2 + 64):
        bad[i] ^= 0x5A
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bad.mbox.gz").write_bytes(bytes(bad))
    (tmp_path / "src" / "empty.mbox.xz").write_bytes(b"")
    (tmp_path / "src" / "garbage.mbox.xz").write_bytes(b"\xfd7zXZ\x00 definitely not xz")
    good = kaminski_dir / "ut.mbox.xz"
    db = tmp_path / "s.db"
    s = ingest([tmp_path / "src", good], db, workers=1)
    ut = real_messages(kaminski_dir, "ut")
    assert _aliases(db) >= {message_id(m) for m in ut}  # the good file is whole
    stored_from_bad = _aliases(db) - {message_id(m) for m in ut}
    assert stored_from_bad < {message_id(m) for m in msgs}  # a prefix of the corrupt one, nothing invented
    assert s.skip_reasons["corrupt gz"] == 1
    assert s.skip_reasons["truncated xz"] + s.skip_reasons.get("corrupt xz", 0) == 2
    assert s.sources_ingested == 4


def test_cli_reports_skips_and_exit_codes(tmp_path, msgs):
    path = tmp_path / "b.mbox"
    path.write_bytes(to_mbox(msgs[:3]) + b"From MAILER-DAEMON x\nnot mail at all\n")
    runner = CliRunner()
    app = store_app()
    r = runner.invoke(app, ["ingest", str(path), "--db", str(tmp_path / "s.db"), "--json"])
    assert r.exit_code == 0, r.output
    import json

    out = json.loads(r.stdout[r.stdout.index("{") :])
    assert out["stored"] == 3 and out["skip_reasons"] == {"no mail headers": 1}
    r = runner.invoke(app, ["ingest", str(tmp_path / "missing.mbox"), "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 2 and "source not found" in r.output and "Traceback" not in r.output
    notdb = tmp_path / "notdb.db"
    notdb.write_bytes(b"this is not sqlite" * 100)
    r = runner.invoke(app, ["ingest", str(path), "--db", str(notdb)])
    assert r.exit_code == 2 and "not a database" in r.output and len(r.output.strip().splitlines()) <= 3


def test_reused_message_id_on_different_text_keeps_both(tmp_path, msgs):
    """Reused Message-IDs: the second, different message is kept under an id made from its text."""
    clash = with_header(msgs[1], "Message-ID", message_id(msgs[0]).encode())
    path = tmp_path / "clash.mbox"
    path.write_bytes(to_mbox([msgs[0], clash, msgs[0]]))
    db = tmp_path / "s.db"
    s = ingest([path], db, workers=1)
    assert (s.messages_read, s.stored, s.already_stored) == (3, 2, 1)
    ids = {r[0] for r in _rows(db, "SELECT message_id FROM messages")}
    assert message_id(msgs[0]) in ids and len(ids) == 2
    (gen,) = ids - {message_id(msgs[0])}
    assert gen.endswith("@inboxrl.generated>")
    assert ingest([path], tmp_path / "s2.db", workers=1).stored == 2
    assert ingest([path], db, workers=1).stored == 0
