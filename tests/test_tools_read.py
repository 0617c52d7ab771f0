"""read_email and return_final_answer on a real store: recipients, aliases, scope, body cut and paging."""

from __future__ import annotations

import json
import sqlite3

import pytest

from inboxrl.tools.base import Scope, ToolNotFound
from inboxrl.tools.inbox import InboxTools, ToolsConfig

pytest_plugins = ["tools_store"]  # the tools_db / tools_raw fixtures

INBOX = "vince.kaminski@enron.com"


def _tools(db: str, before: str | None = None, **cfg) -> InboxTools:
    return InboxTools(db, Scope(inbox=INBOX, before=before), ToolsConfig(**cfg))


def test_read_returns_every_recipient_from_the_participants_rows(tools_db, tools_raw):
    # the messages of this inbox with the most recipients: ART-E lost exactly these through a wrong join
    rows = tools_raw.execute(
        "SELECT m.id, m.message_id FROM messages m JOIN participants p ON p.message_rowid = m.id "
        "WHERE m.date_ok = 1 AND m.id IN (SELECT message_rowid FROM participants WHERE address = ?) "
        "GROUP BY m.id ORDER BY count(*) DESC LIMIT 20", (INBOX,)).fetchall()
    assert rows
    with _tools(tools_db) as tools:
        for rowid, mid in rows:
            mail = tools.read_email(mid)
            for role in ("to", "cc", "bcc"):
                raw = sorted(a for (a,) in tools_raw.execute(
                    "SELECT address FROM participants WHERE message_rowid = ? AND role = ?", (rowid, role)))
                shown = tools.config.recipients_shown  # a longer list is cut, and the note says so
                assert sorted(mail[role]) == raw[:shown], (mid, role)
                if len(raw) > shown:
                    assert f"{role}: {shown} of {len(raw)} recipients shown." in mail["note"]
            sender = tools_raw.execute("SELECT from_addr FROM messages WHERE id = ?", (rowid,)).fetchone()[0]
            assert mail["from"] == sender
    assert sum(len(tools_raw.execute("SELECT 1 FROM participants WHERE message_rowid = ? AND role != 'from'",
                                     (r,)).fetchall()) for r, _ in rows) > 20 * 5


def test_aliases_resolve_to_the_stored_message(tools_db, tools_raw):
    rows = tools_raw.execute(
        "SELECT a.alias, m.message_id FROM aliases a CROSS JOIN messages m ON m.id = a.message_rowid "
        "WHERE a.alias != m.message_id AND m.date_ok = 1 AND EXISTS (SELECT 1 FROM participants p "
        "WHERE p.address = ? AND p.message_rowid = m.id) LIMIT 10", (INBOX,)).fetchall()
    assert rows, "the kaminski-v store has duplicates filed in several folders"
    with _tools(tools_db) as tools:
        for alias, stored in rows:
            assert tools.read_email(alias)["message_id"] == stored
            assert tools.canonical_id(alias) == stored
            assert tools.call("read_email", {"message_id": alias}).ids == [stored]


def test_ids_without_angle_brackets_or_with_spaces_resolve(tools_db, tools_raw):
    mid = tools_raw.execute(
        "SELECT m.message_id FROM messages m JOIN participants p ON p.message_rowid = m.id AND p.address = ? "
        "WHERE m.date_ok = 1 LIMIT 1", (INBOX,)).fetchone()[0]
    with _tools(tools_db) as tools:
        assert tools.read_email(mid.strip("<>"))["message_id"] == mid
        assert tools.read_email(f"  {mid} ")["message_id"] == mid


def test_out_of_scope_reads_are_not_found_and_say_nothing_about_the_message(tools_db, tools_raw):
    mid, date = tools_raw.execute(
        "SELECT m.message_id, m.date FROM messages m JOIN participants p ON p.message_rowid = m.id "
        "AND p.address = ? WHERE m.date_ok = 1 ORDER BY m.date DESC LIMIT 1 OFFSET 50", (INBOX,)).fetchone()
    other = tools_raw.execute(
        "SELECT m.message_id FROM messages m WHERE m.date_ok = 1 AND NOT EXISTS (SELECT 1 FROM participants p "
        "WHERE p.message_rowid = m.id AND p.address = ?) LIMIT 1", (INBOX,)).fetchone()[0]
    with _tools(tools_db, before=date[:10]) as tools:  # the question is asked on the day the mail was sent
        for bad in (mid, other, "<no.such.id@nowhere>", "", "x" * 5000, "\ud800\x00"):
            with pytest.raises(ToolNotFound):
                tools.read_email(bad)
            result = tools.call("read_email", {"message_id": bad})
            assert not result.ok and result.error == "not_found" and result.ids == []
            assert "subject" not in result.content and "body" not in result.content
    undated = tools_raw.execute("SELECT message_id FROM messages WHERE date_ok = 0 LIMIT 1").fetchone()
    if undated:  # mail whose date could not be trusted is never in any scope
        with InboxTools(tools_db, Scope(inbox=INBOX)) as tools, pytest.raises(ToolNotFound):
            tools.read_email(undated[0])


def test_long_body_is_cut_with_a_note_and_pages_back_together(tools_db, tools_raw):
    mid, body = tools_raw.execute(
        "SELECT m.message_id, m.body FROM messages m JOIN participants p ON p.message_rowid = m.id "
        "AND p.address = ? WHERE m.date_ok = 1 AND length(m.body) BETWEEN 2500 AND 20000 "
        "ORDER BY length(m.body) DESC LIMIT 1", (INBOX,)).fetchone()
    with _tools(tools_db, body_char_limit=1000) as tools:
        first = tools.read_email(mid)
        assert len(first["body"]) == 1000 and "offset=1000" in first["note"] and str(len(body)) in first["note"]
        parts, offset = [first["body"]], 1000
        while True:
            page = tools.call("read_email", {"message_id": mid, "offset": str(offset)})
            assert page.ok
            data = json.loads(page.content)
            parts.append(data["body"])
            if "note" not in data:
                break
            offset += 1000
        assert "".join(parts) == body
        past = tools.read_email(mid, offset=len(body) + 5)
        assert past["body"] == "" and "past the end" in past["note"]


def test_read_json_has_the_documented_fields(tools_db, tools_raw):
    mid = tools_raw.execute(
        "SELECT m.message_id FROM messages m JOIN participants p ON p.message_rowid = m.id AND p.address = ? "
        "WHERE m.date_ok = 1 ORDER BY m.id LIMIT 1", (INBOX,)).fetchone()[0]
    with _tools(tools_db) as tools:
        mail = json.loads(tools.call("read_email", {"message_id": mid}).content)
    assert {"message_id", "date", "from", "to", "cc", "bcc", "subject", "body", "attachments"} <= set(mail)
    assert mail["message_id"] == mid and isinstance(mail["attachments"], list) and INBOX in (
        [mail["from"]] + mail["to"] + mail["cc"] + mail["bcc"])


@pytest.mark.parametrize("answer", ["I don't know", "Shirley will forward the logo."])
def test_final_answer_ends_the_episode(tools_db, answer):
    with _tools(tools_db) as tools:
        result = tools.call("return_final_answer", {"answer": answer, "sources": "<a@b>"})
    assert result.ok and result.final and result.answer == answer and result.sources == ["<a@b>"]
    assert json.loads(result.content) == {"answer": answer, "sources": ["<a@b>"]}


def test_tools_open_read_only(tools_db):
    with _tools(tools_db) as tools, pytest.raises(sqlite3.OperationalError):
        tools.conn.execute("DELETE FROM messages")
