"""Email selection and the prompt, on the real store."""

from __future__ import annotations

import re
import sqlite3

import pytest

from inboxrl.questions.config import GenerateConfig
from inboxrl.questions.filters import NearDuplicateIndex, query_date
from inboxrl.questions.generate import owner_name
from inboxrl.questions.prompt import build_messages, clean_body, first_name
from inboxrl.questions.select import select_batches
from inboxrl.store.schema import connect
from questions_store import INBOX, questions_db  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def conn(questions_db: str) -> sqlite3.Connection:  # noqa: F811
    c = connect(questions_db, readonly=True)
    yield c
    c.close()


def test_selection_respects_inbox_dates_and_body_bounds(conn: sqlite3.Connection) -> None:
    cfg = GenerateConfig(batch_size=20, min_body_chars=200, max_body_chars=3000)
    sel = select_batches(conn, INBOX.upper(), cfg)  # addresses are case-insensitive
    emails = [e for b in sel.batches for e in b.emails]
    assert len(emails) > 100
    assert sel.selected + sel.bad_date + sel.body_out_of_bounds == sel.in_inbox
    assert sel.in_inbox == conn.execute("SELECT count(DISTINCT message_rowid) FROM participants WHERE address = ?",
                                        (INBOX,)).fetchone()[0]
    assert len({e.message_id for e in emails}) == len(emails)  # no mail in two batches
    assert all(len(b.emails) <= 20 for b in sel.batches)
    for e in emails[:300]:
        row = conn.execute("SELECT date_ok, length(body) FROM messages WHERE message_id = ?",
                           (e.message_id,)).fetchone()
        assert row[0] == 1 and 200 <= row[1] <= 3000
        roles = conn.execute("SELECT role FROM participants p JOIN messages m ON m.id = p.message_rowid "
                             "WHERE m.message_id = ? AND p.address = ?", (e.message_id, INBOX)).fetchall()
        assert roles, e.message_id


def test_batches_are_fixed_by_the_seed(conn: sqlite3.Connection) -> None:
    a = select_batches(conn, INBOX, GenerateConfig(seed=1, batch_size=10, max_batches_per_inbox=3))
    b = select_batches(conn, INBOX, GenerateConfig(seed=1, batch_size=10, max_batches_per_inbox=3))
    c = select_batches(conn, INBOX, GenerateConfig(seed=2, batch_size=10, max_batches_per_inbox=3))
    assert [x.message_ids for x in a.batches] == [x.message_ids for x in b.batches]
    assert [x.message_ids for x in a.batches] != [x.message_ids for x in c.batches]
    chrono = select_batches(conn, INBOX, GenerateConfig(order="chronological", batch_size=10,
                                                        max_batches_per_inbox=2))
    dates = [e.date for bt in chrono.batches for e in bt.emails]
    assert dates == sorted(dates)


def test_prompt_uses_batch_local_ids_and_cuts_bodies(conn: sqlite3.Connection) -> None:
    batch = select_batches(conn, INBOX, GenerateConfig(batch_size=6, max_batches_per_inbox=1)).batches[0]
    name = owner_name(conn, INBOX)
    assert first_name(name, INBOX) == "Vince"
    msgs = build_messages(batch, name, max_questions=5, email_chars=300)
    user = msgs[1]["content"]
    assert re.findall(r"^### Email (\d+)$", user, re.MULTILINE) == [str(i) for i in range(1, 7)]
    assert not any(e.message_id in user for e in batch.emails)  # Message-IDs never reach the model
    assert "Vince might really type" in msgs[0]["content"]
    emails_part = user.split("\n\nWrite at most")[0]
    for block in emails_part.split("### Email ")[1:]:
        body = block.split("\n\n", 1)[1] if "\n\n" in block else ""
        assert len(body.strip()) <= 300 + 30


def test_clean_body_drops_quoted_history_then_cuts_at_a_word() -> None:
    own = "Shirley, please book the room for Thursday at 10 am. " * 6
    body = own + "\n\n-----Original Message-----\nFrom: Ken\n" + "old text " * 200
    cut = clean_body(body, 500)
    assert cut.endswith("[earlier messages cut]") and "old text" not in cut
    long = "word " * 500
    out = clean_body(long, 300)
    assert len(out) <= 306 and out.endswith("[...]") and "wor [...]" not in out
    assert clean_body("short\r\n\r\n\r\n\r\nmail", 300) == "short\n\nmail"


def test_near_duplicates_and_dates_are_deterministic() -> None:
    idx = NearDuplicateIndex(0.8)
    assert idx.add("When is my meeting with John about the budget?")
    assert not idx.add("when's my meeting with John about the budget")
    assert idx.add("When is my meeting with John about the lease?")
    d1 = query_date("2001-02-27T10:00:00Z", 0, "qid")
    assert d1 == query_date("2001-02-27T10:00:00Z", 0, "qid")
    days = {query_date("2001-02-27", s, "k") for s in range(200)}
    assert min(days) >= "2001-02-28" and max(days) <= "2001-03-29" and len(days) > 20
