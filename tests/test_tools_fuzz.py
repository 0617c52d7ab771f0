"""Fuzz: hostile keywords (and other hostile arguments) never crash the tools, never inject, never leak.

At least 10,000 generated keyword lists in total: Hypothesis explores freely (any Unicode, surrogates, NULs, FTS5
syntax, SQL), and a seeded generator combines hand-written nasties in bulk. Every call must end in a ToolResult
that is either ok (with only in-scope ids) or the documented `empty_query` error; nothing else is allowed.
"""

from __future__ import annotations

import json
import random
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxrl.tools.base import BadArgumentsError, Scope, ToolResult
from inboxrl.tools.inbox import InboxTools

pytest_plugins = ["tools_store"]  # the tools_db / tools_raw fixtures

INBOX = "vince.kaminski@enron.com"

BEFORE = "2001-01-01"

NASTIES = [
    '"', '""', "'", "''", '"research', 'research"', '"a" "b"', "AND", "OR", "NOT", "NEAR", "near/3", "NEAR(a b, 5)",
    "NEAR(", "*", "re*", "*ch", "-", "-research", "--", ":", "subject:", "subject:research", "body:model",
    "{subject body}:x", "^", "^research", "(", ")", "()", "((research)", "research)", "+", "+research", "a AND",
    "OR OR OR", "AND NOT", "'; DROP TABLE messages; --", '" OR 1=1 --', "1; SELECT * FROM aliases",
    "') UNION SELECT body FROM messages --", "%", "_", "%_%", "\\", "\\\"", "\x00", "a\x00b", "\ud800", "\udfff",
    "x\udc80y", "😀", "👨‍👩‍👧", "🔥🔥 model", "\u202eevil", "\u200b", "\ufeff", "ｆｕｌｌｗｉｄｔｈ", "e\u0301",
    "ǅ", "İstanbul", "straße", "\n\t\r", "\x1b[31m", "rowid", "rank", "bm25(messages_fts)", "messages_fts MATCH",
    "snippet(", "x" * 10_000, "research " * 1_500, "a" * 65, "ä" * 64, "9" * 80, "0", "-1", "1e308", "NaN", "null",
    "None", "[]", "{}", "<script>alert(1)</script>", "../../etc/passwd", "vince.kaminski@enron.com",
    "<31391108.1075857067177.JavaMail.evans@thyme>", "research group", "Vince Kaminski", "Shirley", "2000-07-16",
    "😀" * 3000, "مرحبا", "你好世界", "Ελληνικά", "кириллица",
]

_any_text = st.text(st.characters(codec=None, categories=["L", "N", "P", "S", "Z", "Cc", "Cf", "Cs", "Co", "M"]),
                    max_size=40)
_keyword = st.one_of(
    _any_text,
    st.sampled_from(NASTIES),
    st.lists(st.sampled_from(NASTIES) | _any_text, min_size=1, max_size=4).map(" ".join),
)
_keywords = st.one_of(st.lists(_keyword, max_size=8), _keyword)

# Hypothesis explores (but spends about 4 ms generating each example); the seeded generator supplies the bulk.
HYPOTHESIS_EXAMPLES = 700
SEEDED_LISTS = 9_400


@pytest.fixture(scope="module")
def fuzz_env(tools_db, tools_raw):
    # A colleague's inbox of about a hundred messages: the fuzz is about what keywords do to the query, and a
    # small scope keeps 10,000 searches fast. Vince's own inbox gets its share in the property test.
    inbox = tools_raw.execute(
        "SELECT address FROM participants WHERE address != ? AND date < ? GROUP BY address "
        "HAVING count(*) BETWEEN 60 AND 150 ORDER BY count(*) DESC, address LIMIT 1", (INBOX, BEFORE)).fetchone()[0]
    tools = InboxTools(tools_db, Scope(inbox=inbox, before=BEFORE))
    # what this scope may return, computed independently of the tools' own scope code
    allowed = {mid for (mid,) in tools_raw.execute(
        "SELECT DISTINCT m.message_id FROM messages m JOIN participants p ON p.message_rowid = m.id "
        "WHERE p.address = ? AND m.date_ok = 1 AND m.date < ?", (inbox, BEFORE))}
    counts = _table_counts(tools_raw)
    stats = {"calls": 0, "ok": 0, "empty_query": 0, "hits": 0}
    yield tools, allowed, stats
    tools.close()
    assert _table_counts(tools_raw) == counts  # nothing was written, dropped or injected


def _table_counts(conn: sqlite3.Connection) -> tuple[int, ...]:
    return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("messages", "participants", "aliases", "messages_fts"))


def _check(tools: InboxTools, allowed: set[str], stats: dict, args: dict) -> None:
    result = tools.call("search_inbox", args)
    assert isinstance(result, ToolResult)
    payload = json.loads(result.content)
    result.content.encode("utf-8")  # what the model sees is always valid text
    stats["calls"] += 1
    if result.ok:
        stats["ok"] += 1
        stats["hits"] += bool(result.ids)
        assert set(result.ids) <= allowed
        assert [h["message_id"] for h in payload["results"]] == result.ids
    else:
        assert result.error == "empty_query", (args, result)
        stats["empty_query"] += 1


def test_fuzz_hypothesis_keywords(fuzz_env):
    tools, allowed, stats = fuzz_env
    before = stats["calls"]

    @settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(keywords=_keywords)
    def fuzz(keywords):
        _check(tools, allowed, stats, {"keywords": keywords})

    fuzz()
    assert stats["calls"] - before >= HYPOTHESIS_EXAMPLES


def test_fuzz_seeded_nasty_combinations(fuzz_env):
    tools, allowed, stats = fuzz_env
    rng = random.Random(20261123)
    alphabet = [chr(c) for c in (*range(0x80), 0xA0, 0xAD, 0x2028, 0xD800, 0xDBFF, 0xDC00, 0xFFFD, 0xFFFF,
                                 0x1F600, 0x10FFFF, 0x0301, 0x05D0, 0x4E00)]
    before = stats["calls"]
    for _ in range(SEEDED_LISTS):
        kws = []
        for _ in range(rng.randint(0, 6)):
            r = rng.random()
            if r < 0.45:
                kws.append(rng.choice(NASTIES))
            elif r < 0.65:
                kws.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))))
            elif r < 0.8:  # any code point at all, surrogates included
                kws.append("".join(chr(rng.randrange(0x110000)) for _ in range(rng.randint(1, 8))))
            else:
                kws.append(" ".join(rng.choice(NASTIES) for _ in range(rng.randint(1, 5))))
        _check(tools, allowed, stats, {"keywords": kws if rng.random() < 0.9 else " ".join(kws)})
    assert stats["calls"] - before == SEEDED_LISTS
    assert stats["empty_query"] > 100 and stats["hits"] > 100, stats  # both outcomes were exercised


def test_fuzz_count_is_at_least_10000():
    assert HYPOTHESIS_EXAMPLES + SEEDED_LISTS >= 10_000  # each fuzzer asserts it ran its own share


_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _any_text | st.sampled_from(NASTIES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["search_inbox", "read_email", "return_final_answer"]),
       args=st.dictionaries(st.sampled_from(["keywords", "from_addr", "to_addr", "sent_after", "sent_before",
                                             "max_results", "message_id", "offset", "answer", "sources"]),
                            _json_value, max_size=5))
def test_fuzz_any_arguments_to_any_tool(fuzz_env, name, args):
    """Arbitrary JSON arguments: either a documented malformed-call exception or a ToolResult, never anything else."""
    tools, allowed, _ = fuzz_env
    try:
        result = tools.call(name, args)
    except BadArgumentsError as e:
        assert name in str(e)
        return
    json.loads(result.content)
    if result.ok and name != "return_final_answer":
        assert set(result.ids) <= allowed
    if not result.ok:
        assert result.error in {"empty_query", "bad_date", "not_found"}
