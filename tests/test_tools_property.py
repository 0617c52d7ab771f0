"""Property: over 1,000+ random searches and 1,000+ random reads, in many inboxes at many dates, nothing outside
the inbox, on or after the question's date, or with an untrusted date is ever returned; and every message that is
in scope can be read. Each answer is checked against the store with SQL written independently of the tools."""

from __future__ import annotations

import random
import re
import sqlite3

import pytest

from inboxrl.tools.base import BadArgumentsError, Scope
from inboxrl.tools.inbox import InboxTools, ToolsConfig

pytest_plugins = ["tools_store"]  # the tools_db / tools_raw fixtures

INBOX = "vince.kaminski@enron.com"

N_SCOPES = 40
PER_SCOPE = 26  # searches and reads per scope: 40 * 26 = 1,040 of each


@pytest.fixture(scope="module")
def world(tools_raw: sqlite3.Connection) -> dict:
    rng = random.Random(1123)
    busy = [a for (a,) in tools_raw.execute(
        "SELECT address FROM participants GROUP BY address ORDER BY count(*) DESC, address LIMIT 40")]
    inboxes = [INBOX] * 10 + rng.sample(busy, 12) + ["nobody@nowhere.invalid"]
    days = [d for (d,) in tools_raw.execute(
        "SELECT DISTINCT substr(date, 1, 10) FROM messages WHERE date_ok = 1 ORDER BY 1")]
    texts = tools_raw.execute("SELECT subject || ' ' || substr(body, 1, 2000) FROM messages "
                              "ORDER BY id LIMIT 400").fetchall()
    vocab = sorted({w.lower() for (t,) in texts for w in re.findall(r"[A-Za-z]{4,12}", t)})
    all_ids = [m for (m,) in tools_raw.execute("SELECT alias FROM aliases ORDER BY alias")]
    dup_aliases = [a for (a,) in tools_raw.execute(
        "SELECT a.alias FROM aliases a JOIN messages m ON m.id = a.message_rowid WHERE a.alias != m.message_id "
        "ORDER BY a.alias")]
    assert dup_aliases, "the store has duplicate copies whose ids are aliases"
    return {"rng": rng, "inboxes": inboxes, "days": days, "vocab": vocab, "all_ids": all_ids,
            "dup_aliases": dup_aliases}


def _visible(raw: sqlite3.Connection, inbox: str, before: str) -> dict[str, int]:
    """message_id -> rowid of everything this scope may show, written without the tools' code."""
    return {mid: rowid for mid, rowid in raw.execute(
        "SELECT m.message_id, m.id FROM messages m WHERE m.date_ok = 1 AND m.date < ? AND m.id IN "
        "(SELECT message_rowid FROM participants WHERE address = ?)", (before, inbox))}


def _resolve(raw: sqlite3.Connection, any_id: str) -> int | None:
    row = raw.execute("SELECT message_rowid FROM aliases WHERE alias = ?", (any_id,)).fetchone()
    return row[0] if row else None


def test_nothing_out_of_scope_is_ever_returned(tools_db, tools_raw, world):
    rng, vocab = world["rng"], world["vocab"]
    stats = {"searches": 0, "search_hits": 0, "reads": 0, "reads_ok": 0, "reads_refused": 0}
    for i in range(N_SCOPES):
        inbox = rng.choice(world["inboxes"])
        before = rng.choice(world["days"])
        cfg = ToolsConfig(ranking=rng.choice(["bm25", "date"]), or_fallback=rng.random() < 0.7,
                          common_word_fraction=rng.choice([0.02, 0.1, 1.0]), bm25_cap=rng.choice([30, 1000]))
        visible = _visible(tools_raw, inbox, before)
        rowid_to_mid = {r: m for m, r in visible.items()}
        future = [m for (m,) in tools_raw.execute(  # this inbox's mail from the question's day on
            "SELECT message_id FROM messages WHERE date >= ? AND id IN "
            "(SELECT message_rowid FROM participants WHERE address = ?) ORDER BY id LIMIT 200", (before, inbox))]
        with InboxTools(tools_db, Scope(inbox=inbox, before=before), cfg) as tools:
            for _ in range(PER_SCOPE):
                args: dict = {"keywords": rng.sample(vocab, rng.randint(1, 3)), "max_results": rng.randint(1, 50)}
                after = before_filter = None
                if rng.random() < 0.3:
                    after = args["sent_after"] = rng.choice(world["days"])
                if rng.random() < 0.3:
                    before_filter = args["sent_before"] = rng.choice(world["days"])
                if visible and rng.random() < 0.2:
                    sender = tools_raw.execute("SELECT from_addr FROM messages WHERE id = ?",
                                               (rng.choice(list(visible.values())),)).fetchone()[0]
                    args["from_addr"] = sender if rng.random() < 0.5 else sender.split("@")[0][:6]
                result = tools.call("search_inbox", args)
                stats["searches"] += 1
                assert result.ok, result.content
                stats["search_hits"] += bool(result.ids)
                for mid in result.ids:
                    assert mid in visible, (inbox, before, mid)  # the inbox and the date, checked independently
                    date = tools_raw.execute("SELECT date FROM messages WHERE message_id = ?", (mid,)).fetchone()[0]
                    assert after is None or date >= after
                    assert before_filter is None or date < before_filter
            for _ in range(PER_SCOPE):
                r = rng.random()
                if r < 0.35 and visible:
                    any_id = rng.choice(list(visible))  # in scope: must be readable
                elif r < 0.5:
                    any_id = rng.choice(world["dup_aliases"])  # another copy's id: resolves to the stored one
                elif r < 0.7 and future:
                    any_id = rng.choice(future)  # this inbox, but sent on or after the question's day
                else:
                    any_id = rng.choice(world["all_ids"])  # anything in the store, mostly other inboxes
                if rng.random() < 0.1:
                    any_id = any_id.strip("<>")
                rowid = _resolve(tools_raw, any_id if any_id.startswith("<") else f"<{any_id}>")
                expected = rowid is not None and rowid in rowid_to_mid
                result = tools.call("read_email", {"message_id": any_id})
                stats["reads"] += 1
                assert result.ok == expected, (inbox, before, any_id, result.content[:200])
                if result.ok:
                    stats["reads_ok"] += 1
                    assert result.ids == [rowid_to_mid[rowid]]
                else:
                    stats["reads_refused"] += 1
                    assert result.error == "not_found" and result.ids == []
    assert stats["searches"] >= 1000 and stats["reads"] >= 1000, stats
    # not vacuous: plenty of searches found mail, plenty of reads succeeded and plenty were refused
    assert stats["search_hits"] >= 300 and stats["reads_ok"] >= 200 and stats["reads_refused"] >= 200, stats


def test_malformed_property_inputs_never_leak(tools_db, tools_raw, world):
    """Bad values in every argument: a documented error or an in-scope answer, nothing else."""
    rng = world["rng"]
    visible = _visible(tools_raw, INBOX, "2001-01-01")
    junk = ["", " ", "<>", "%", "_", "*", "' OR 1=1 --", "\x00", "\ud800", "x" * 3000, "2001-13-45", "None"]
    with InboxTools(tools_db, Scope(inbox=INBOX, before="2001-01-01")) as tools:
        for _ in range(300):
            args = {"keywords": [rng.choice(world["vocab"]), rng.choice(junk)]}
            for key in ("from_addr", "to_addr", "sent_after", "sent_before"):
                if rng.random() < 0.3:
                    args[key] = rng.choice(junk)
            try:
                result = tools.call("search_inbox", args)
            except BadArgumentsError:
                continue
            assert result.ok or result.error in {"bad_date", "empty_query"}
            assert set(result.ids) <= set(visible)
