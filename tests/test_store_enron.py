"""The session store built from all of kaminski-v: counts, recipients against the raw headers, grounding."""

from __future__ import annotations

import email
import json
import lzma
import sqlite3
from email.policy import compat32

from inboxrl.questions.grounding import ground, grounded_questions
from inboxrl.store.parse import parse_addresses
from inboxrl.store.sources import split_mbox

INBOX = "vince.kaminski@enron.com"


def _conn(db) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def test_every_kaminski_message_is_stored_or_an_alias(enron_store, kaminski_dir):
    n_raw = sum(
        lzma.decompress(p.read_bytes()).count(b"\nFrom MAILER-DAEMON") + 1
        for p in kaminski_dir.glob("*.mbox.xz")
    )
    c = _conn(enron_store)
    n_alias = c.execute("SELECT count(*) FROM aliases").fetchone()[0]
    n_msg = c.execute("SELECT count(*) FROM messages").fetchone()[0]
    n_skip = c.execute("SELECT count(*) FROM skips").fetchone()[0]
    # Message-IDs are unique in the corpus, so every copy read is one alias row; duplicates mean fewer rows.
    assert n_alias + n_skip == n_raw
    assert n_skip == 0
    assert 0 < n_msg < n_alias
    assert c.execute("SELECT count(*) FROM ingested_sources").fetchone()[0] == len(
        list(kaminski_dir.glob("*.xz"))
    )


def test_fts_index_matches_messages(enron_store):
    c = _conn(enron_store)
    n_msg = c.execute("SELECT count(*) FROM messages").fetchone()[0]
    hits = c.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'kaminski'").fetchone()[0]
    assert hits > 1000
    # FTS5's own consistency check against the content table (raises if the index is out of step)
    w = sqlite3.connect(enron_store)
    w.execute("INSERT INTO messages_fts(messages_fts, rank) VALUES('integrity-check', 1)")
    w.close()
    assert c.execute("SELECT value FROM meta WHERE key='bulk_pending'").fetchone()[0] == "0"
    assert c.execute("SELECT count(*) FROM messages_fts").fetchone()[0] == n_msg


def test_recipients_match_raw_headers(enron_store, kaminski_dir):
    """Every To/Cc/Bcc address of a raw message is a participant of the row its Message-ID resolves to."""
    raw = lzma.decompress((kaminski_dir / "inbox.mbox.xz").read_bytes())
    msgs, _ = split_mbox(raw)
    c = _conn(enron_store)
    checked = with_cc = with_bcc = 0
    for m in msgs[:400]:
        hdr = email.message_from_bytes(m, policy=compat32)
        rowid = c.execute(
            "SELECT message_rowid FROM aliases WHERE alias=?", (hdr["Message-ID"].strip(),)
        ).fetchone()[0]
        stored = set(c.execute("SELECT role, address FROM participants WHERE message_rowid=?", (rowid,)))
        for role in ("to", "cc", "bcc"):
            want = {(role, a) for v in hdr.get_all(role, []) for _, a in parse_addresses(str(v)) if a}
            assert want <= stored, (hdr["Message-ID"], role, want - stored)
            with_cc += role == "cc" and bool(want)
            with_bcc += role == "bcc" and bool(want)
        checked += 1
    assert checked == 400 and with_cc > 10 and with_bcc > 10


def test_dates_are_utc_iso(enron_store):
    c = _conn(enron_store)
    row = c.execute(
        "SELECT date, date_raw FROM messages WHERE message_id='<12345254.1075840783118.JavaMail.evans@thyme>'"
    ).fetchone()
    assert row == ("2002-01-25T19:22:16Z", "Fri, 25 Jan 2002 11:22:16 -0800 (PST)")
    bad = c.execute(
        "SELECT count(*) FROM messages WHERE date_ok=1 AND date NOT GLOB "
        "'[12][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z'"
    ).fetchone()[0]
    assert bad == 0


def test_participant_dates_copy_message_dates(enron_store):
    c = _conn(enron_store)
    assert (
        c.execute(
            "SELECT count(*) FROM participants p JOIN messages m ON m.id=p.message_rowid "
            "WHERE p.date IS NOT m.date"
        ).fetchone()[0]
        == 0
    )
    assert json.loads(c.execute("SELECT attachments FROM messages LIMIT 1").fetchone()[0]) == []


def test_grounded_questions_resolve_through_aliases(enron_store, questions_path):
    g = ground(enron_store, questions_path)
    assert len(g.grounded) + len(g.ungrounded) == 2510
    # 107 questions are grounded in the whole corpus; kaminski-v alone holds the sources of 100 of them.
    assert 90 <= len(g.grounded) <= 107
    scoped = grounded_questions(enron_store, questions_path, in_scope=True)
    assert {q.id for q in scoped} <= {q.id for q in g.grounded}
    assert len(scoped) >= 90
    c = _conn(enron_store)
    for q in g.grounded[:20]:
        for mid in q.message_ids:
            assert c.execute("SELECT 1 FROM aliases WHERE alias=?", (mid,)).fetchone()
