"""`inboxrl search` / `inboxrl read`: --json shape, the agent's scope, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from inboxrl.cli import app

pytest_plugins = ["tools_store"]  # the tools_db / tools_raw fixtures

INBOX = "vince.kaminski@enron.com"

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_search_json_is_an_array_of_hits(tools_db):
    r = _run("search", "--db", tools_db, "--inbox", INBOX, "--before", "2001-06-01", "--limit", "7", "--json",
             "research", "group")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert isinstance(hits, list) and len(hits) == 7
    for h in hits:
        assert {"message_id", "date", "from", "subject", "snippet"} <= set(h)
        assert h["date"] < "2001-06-01"


def test_search_rank_date_and_filters(tools_db):
    r = _run("search", "--db", tools_db, "--inbox", INBOX, "--rank", "date", "--from", "shirley", "--after",
             "2000-01-01", "--json", "meeting")
    assert r.exit_code == 0, r.output
    hits = json.loads(r.stdout)
    assert hits and [h["date"] for h in hits] == sorted((h["date"] for h in hits), reverse=True)
    assert all("shirley" in h["from"] and h["date"] >= "2000-01-01" for h in hits)


def test_search_table_output(tools_db):
    r = _run("search", "--db", tools_db, "--inbox", INBOX, "[bold]research[/bold]")  # markup stays text
    assert r.exit_code == 0, r.output
    assert "hit(s) in vince.kaminski@enron.com" in r.stdout and "message_id" in r.stdout


def test_read_json_has_every_field_and_matches_search(tools_db, tools_raw):
    r = _run("search", "--db", tools_db, "--inbox", INBOX, "--json", "--limit", "1", "interview")
    mid = json.loads(r.stdout)[0]["message_id"]
    r = _run("read", "--db", tools_db, "--inbox", INBOX, "--json", mid)
    assert r.exit_code == 0, r.output
    mail = json.loads(r.stdout)
    assert {"message_id", "date", "from", "to", "cc", "bcc", "subject", "body"} <= set(mail)
    assert mail["message_id"] == mid
    rowid = tools_raw.execute("SELECT id FROM messages WHERE message_id = ?", (mid,)).fetchone()[0]
    n_recipients = tools_raw.execute("SELECT count(*) FROM participants WHERE message_rowid = ? AND role != 'from'",
                                     (rowid,)).fetchone()[0]
    assert len(mail["to"]) + len(mail["cc"]) + len(mail["bcc"]) == n_recipients
    r = _run("read", "--db", tools_db, "--inbox", INBOX, mid)
    assert r.exit_code == 0 and mail["subject"][:20] in r.stdout


@pytest.mark.parametrize("args,code,text", [
    (["search", "--db", "/nonexistent/x.db", "--inbox", INBOX, "a"], 1, "no mail store"),
    (["search", "--db", "{db}", "--inbox", INBOX, "--json", "!!!", "*"], 2, "no searchable word"),
    (["search", "--db", "{db}", "--inbox", INBOX, "--before", "yesterday", "a"], 2, "not a date"),
    (["search", "--db", "{db}", "--inbox", INBOX, "--rank", "random", "a"], 2, "--rank"),
    (["read", "--db", "{db}", "--inbox", INBOX, "--before", "1990-01-01", "<x@y>"], 1, "No email"),
    (["read", "--db", "{db}", "--inbox", "someone.else@enron.com", "--json", "<x@y>"], 1, "No email"),
])
def test_errors_are_one_line_with_a_nonzero_exit(tools_db, args, code, text):
    r = _run(*[a.replace("{db}", tools_db) for a in args])
    assert r.exit_code == code, r.output
    err = r.stderr.strip()
    assert text in err and len(err.splitlines()) == 1 and "Traceback" not in r.output
    assert r.stdout.strip() == ""


def test_a_file_that_is_not_a_store_is_one_line(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    r = _run("search", "--db", str(bad), "--inbox", INBOX, "a")
    assert r.exit_code == 1 and "not a readable inboxrl store" in r.stderr and len(r.stderr.splitlines()) == 1


def test_read_pages_long_bodies(tools_db, tools_raw):
    mid, n = tools_raw.execute(
        "SELECT m.message_id, length(m.body) FROM messages m WHERE m.date_ok = 1 AND length(m.body) > 900 AND "
        "m.id IN (SELECT message_rowid FROM participants WHERE address = ?) ORDER BY m.id LIMIT 1",
        (INBOX,)).fetchone()
    first = json.loads(_run("read", "--db", tools_db, "--inbox", INBOX, "--json", "--body-limit", "400", mid).stdout)
    assert len(first["body"]) == 400 and "offset=400" in first["note"]
    rest = json.loads(_run("read", "--db", tools_db, "--inbox", INBOX, "--json", "--body-limit", "100000",
                           "--offset", "400", mid).stdout)
    assert len(first["body"]) + len(rest["body"]) == n and "note" not in rest


def test_config_file_sets_the_tools_and_bad_files_are_one_line(tools_db, tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text("tools:\n  snippet_tokens: 5\n  or_fallback: false\n", encoding="utf-8")
    r = _run("search", "--db", tools_db, "--inbox", INBOX, "--config", str(good), "--json", "research")
    assert r.exit_code == 0, r.output
    assert all(len(re.findall(r"[^\W_]+", h["snippet"])) <= 5 for h in json.loads(r.stdout))
    bad = tmp_path / "bad.toml"
    bad.write_text("snippet_tokens = 0\n", encoding="utf-8")
    r = _run("search", "--db", tools_db, "--inbox", INBOX, "--config", str(bad), "research")
    assert r.exit_code == 2 and "snippet_tokens" in r.stderr and len(r.stderr.strip().splitlines()) == 1
