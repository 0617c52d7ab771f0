"""search_inbox on a real store of kaminski-v mail: hits, snippets, scope, filters, ranking, OR fallback, errors."""

from __future__ import annotations

import json
import sqlite3

import pytest

from inboxrl.tools.base import BadArgumentsError, Scope, ToolQueryError
from inboxrl.tools.inbox import InboxTools, ToolsConfig
from inboxrl.tools.query import STOP_WORDS, terms_from_keywords

pytest_plugins = ["tools_store"]  # the tools_db / tools_raw fixtures

INBOX = "vince.kaminski@enron.com"


def _fts_count(raw: sqlite3.Connection, word: str) -> int:
    return raw.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (f'"{word}"',)).fetchone()[0]


@pytest.fixture(scope="module")
def target(tools_raw: sqlite3.Connection) -> dict:
    """A real message of the inbox with a subject word that few messages share, so a search for it must find it."""
    rows = tools_raw.execute(
        "SELECT m.id, m.message_id, m.date, m.subject, m.from_addr FROM messages m "
        "JOIN participants p ON p.message_rowid = m.id AND p.address = ? "
        "WHERE m.date_ok = 1 AND length(m.subject) > 12 GROUP BY m.id ORDER BY m.date LIMIT 400", (INBOX,)
    ).fetchall()
    best = None
    for rowid, mid, date, subject, sender in rows[len(rows) // 2:]:
        for w in terms_from_keywords(subject).words:
            if w in STOP_WORDS or len(w) < 5 or not w.isalpha():
                continue
            n = _fts_count(tools_raw, w)
            if 1 <= n <= 5 and (best is None or n < best["n"]):
                best = {"rowid": rowid, "message_id": mid, "date": date, "word": w, "n": n, "from": sender,
                        "subject": subject}
    assert best is not None, "no message with a rare subject word in the test store"
    return best


def _tools(db: str, before: str | None = None, **cfg) -> InboxTools:
    return InboxTools(db, Scope(inbox=INBOX, before=before), ToolsConfig(**cfg))


def test_search_finds_the_message_with_marked_snippet(tools_db, target):
    with _tools(tools_db) as tools:
        hits = tools.search_inbox([target["word"].upper()])
    assert target["message_id"] in [h["message_id"] for h in hits]
    hit = next(h for h in hits if h["message_id"] == target["message_id"])
    assert set(hit) >= {"message_id", "date", "from", "subject", "snippet"}
    assert hit["date"] == target["date"] and hit["from"] == target["from"]
    assert "[" in hit["snippet"] and "]" in hit["snippet"]


def test_search_never_shows_mail_from_the_question_day_or_later(tools_db, target):
    day = target["date"][:10]
    with _tools(tools_db, before=day) as tools:
        assert target["message_id"] not in [h["message_id"] for h in tools.search_inbox([target["word"]])]
    with _tools(tools_db, before="2099-01-01") as tools:
        # sent_before narrows; a later sent_before never widens the scope past the question's date
        hits = tools.search_inbox([target["word"]], sent_before=day)
        assert target["message_id"] not in [h["message_id"] for h in hits]
        hits = tools.search_inbox([target["word"]], sent_after=day)
        assert target["message_id"] in [h["message_id"] for h in hits]
    with _tools(tools_db, before=day) as tools:
        hits = tools.search_inbox([target["word"]], sent_before="2099-01-01")
        assert target["message_id"] not in [h["message_id"] for h in hits]


def test_search_of_another_inbox_does_not_see_this_inbox(tools_db, tools_raw, target):
    rowid = target["rowid"]
    outsider = tools_raw.execute(
        "SELECT address FROM participants GROUP BY address HAVING count(*) > 3 AND sum(message_rowid = ?) = 0 "
        "LIMIT 1", (rowid,)).fetchone()[0]
    with InboxTools(tools_db, Scope(inbox=outsider)) as tools:
        assert target["message_id"] not in [h["message_id"] for h in tools.search_inbox([target["word"]])]


def test_from_and_to_filters_by_address_and_by_name(tools_db, tools_raw, target):
    with _tools(tools_db) as tools:
        assert target["message_id"] in [h["message_id"] for h in
                                         tools.search_inbox([target["word"]], from_addr=target["from"].upper())]
        assert tools.search_inbox([target["word"]], from_addr="nobody.at.all@example.invalid") == []
        fragment = target["from"].split("@")[0][:5]
        assert target["message_id"] in [h["message_id"] for h in
                                         tools.search_inbox([target["word"]], from_addr=fragment)]
        to = tools_raw.execute("SELECT address FROM participants WHERE message_rowid = ? AND role = 'to' LIMIT 1",
                               (target["rowid"],)).fetchone()
        if to:
            assert target["message_id"] in [h["message_id"] for h in
                                             tools.search_inbox([target["word"]], to_addr=f"Someone <{to[0]}>")]
        sender = tools_raw.execute(
            "SELECT p.address FROM participants p JOIN participants me ON me.message_rowid = p.message_rowid "
            "AND me.address = ? WHERE p.role = 'from' AND p.address != ? GROUP BY p.address "
            "ORDER BY count(*) DESC LIMIT 1", (INBOX, INBOX)).fetchone()[0]
        hits = tools.search_inbox(["vince"], from_addr=sender, max_results=50)
        assert len(hits) >= 5 and all(h["from"] == sender for h in hits)


def test_or_fallback_says_so_and_can_be_turned_off(tools_db, target):
    kw = [target["word"], "zqxjvbnonexistentword"]
    with _tools(tools_db) as tools:
        hits = tools.search_inbox(kw)
        assert target["message_id"] in [h["message_id"] for h in hits]
        assert hits.note and "some of them" in hits.note
        result = tools.call("search_inbox", {"keywords": kw})
        assert result.ok and "some of them" in json.loads(result.content)["note"]
    with _tools(tools_db, or_fallback=False) as tools:
        hits = tools.search_inbox(kw)
        assert hits == [] and "No emails found" in hits.note


def test_date_ranking_is_newest_first_and_bm25_is_by_relevance(tools_db):
    with _tools(tools_db, ranking="date", common_word_fraction=1.0) as tools:
        hits = tools.search_inbox(["research"], max_results=20)
    dates = [h["date"] for h in hits]
    assert len(dates) >= 5 and dates == sorted(dates, reverse=True)
    with _tools(tools_db, ranking="bm25", common_word_fraction=1.0) as tools:
        bm = tools.search_inbox(["research"], max_results=20)
    assert {h["message_id"] for h in bm} != {h["message_id"] for h in hits} or [h["date"] for h in bm] != dates


def test_max_results_is_respected_capped_and_coerced(tools_db):
    with _tools(tools_db) as tools:
        assert len(tools.search_inbox(["enron"], max_results=3)) == 3
        assert len(tools.call("search_inbox", {"keywords": "enron", "max_results": "4"}).ids) == 4
        assert len(tools.search_inbox(["enron"], max_results=10_000)) <= 50
        with pytest.raises(BadArgumentsError):
            tools.call("search_inbox", {"keywords": "enron", "max_results": 0})


@pytest.mark.parametrize("keywords", [[], "", ["", "  "], ["!!!", "*", "()"], ["😀🎉"], ["\x00", "\ud800"]])
def test_useless_query_is_a_clear_error_result(tools_db, keywords):
    with _tools(tools_db) as tools:
        with pytest.raises(ToolQueryError) as e:
            tools.search_inbox(keywords)
        assert e.value.code == "empty_query"
        result = tools.call("search_inbox", {"keywords": keywords})
    assert not result.ok and result.error == "empty_query" and "no searchable word" in result.content


def test_bad_date_is_a_clear_error_and_lenient_dates_work(tools_db, target):
    with _tools(tools_db) as tools:
        result = tools.call("search_inbox", {"keywords": [target["word"]], "sent_after": "last tuesday"})
        assert not result.ok and result.error == "bad_date" and "YYYY-MM-DD" in result.content
        y, m, d = target["date"][:10].split("-")
        us = f"{int(m)}/{int(d)}/{y}"
        assert target["message_id"] in tools.call("search_inbox",
                                                  {"keywords": [target["word"]], "sent_after": us}).ids


def test_operators_are_searched_as_text(tools_db, target):
    with _tools(tools_db) as tools:
        plain = [h["message_id"] for h in tools.search_inbox([target["word"]])]
        hostile = tools.search_inbox([f'"{target["word"]}* NOT', "AND", "(", ":", "^", '"', "OR)", "-"])
        near = tools.search_inbox([f"NEAR({target['word']} body:x, 3)"])
    assert [h["message_id"] for h in hostile] == plain
    # every operator became a quoted word (ANDed, or ORed by the fallback; very common ones may be dropped)
    parts = near.query.replace(" OR ", " ").split(" ")
    assert f'"{target["word"]}"' in parts and set(parts) <= {'"near"', f'"{target["word"]}"', '"body"', '"3"'}


def test_common_words_are_dropped_when_others_remain(tools_db, tools_raw, target):
    # with a low threshold, "vince" (in most of this inbox) counts as too common to search by
    with _tools(tools_db, common_word_df=300) as tools:
        hits = tools.search_inbox(["vince", target["word"]])
        assert target["message_id"] in [h["message_id"] for h in hits]
        assert "Ignored words" in hits.note and "vince" in hits.note and '"vince"' not in hits.query


def test_only_common_words_give_recent_matches_with_a_note(tools_db, tools_raw):
    with _tools(tools_db, before="2001-06-01", common_word_df=300) as tools:
        hits = tools.search_inbox(["vince"], max_results=10)
    assert len(hits) == 10 and "most emails" in hits.note
    assert [h["date"] for h in hits] == sorted((h["date"] for h in hits), reverse=True)
    for h in hits:  # every hit really contains the word and is in scope
        rowid = tools_raw.execute("SELECT id FROM messages WHERE message_id = ?", (h["message_id"],)).fetchone()[0]
        assert tools_raw.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'vince' AND rowid = ?",
                                 (rowid,)).fetchone()[0] == 1
        assert h["date"] < "2001-06-01"


def test_bm25_cap_limits_the_work_and_says_so(tools_db):
    with _tools(tools_db, bm25_cap=20, common_word_fraction=1.0) as tools:
        hits = tools.search_inbox(["vince"], max_results=5)
    assert len(hits) == 5 and "only 20 were ranked" in hits.note


def test_shared_connection_keeps_a_bounded_number_of_scope_tables(tools_db, target):
    # the agent loop shares one connection and never closes the tools: scope tables must not pile up, and a tool
    # whose table was evicted by 20 other scopes must rebuild it and give the same answer
    from inboxrl.store.schema import connect

    conn = connect(tools_db, readonly=True)
    first = InboxTools(conn, Scope(inbox=INBOX))
    before = [h["message_id"] for h in first.search_inbox([target["word"]])]
    others = [InboxTools(conn, Scope(inbox=INBOX, before=f"2001-{m:02d}-{d:02d}")) for m in (1, 2) for d in range(1, 11)]
    for t in others:
        t.search_inbox(["research"])
    n_tables = conn.execute("SELECT count(*) FROM sqlite_temp_master WHERE name GLOB 'inboxrl_scope_*'").fetchone()[0]
    assert n_tables <= 16
    assert [h["message_id"] for h in first.search_inbox([target["word"]])] == before
    assert target["message_id"] in before
    conn.close()


def test_config_default_result_count_is_used_and_unknown_settings_are_refused(tools_db):
    with _tools(tools_db, default_max_results=4) as tools:
        assert len(tools.search_inbox(["enron"])) == 4
        assert len(tools.call("search_inbox", {"keywords": "enron"}).ids) == 4
        assert len(tools.search_inbox(["enron"], max_results=6)) == 6
    with pytest.raises(ValueError, match="body_limit"):
        ToolsConfig(body_limit=100)  # a typo of body_char_limit
