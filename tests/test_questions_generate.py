"""The generation pipeline on a real store, with hand-made generator outputs from a scripted backend.

A scripted backend is used only here, for the deterministic edge cases of validation, caching, early stopping and
the support check; the real small model runs end to end in test_questions_cli.py.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date

import pytest

from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.models.base import BackendError, ChatRequest, ChatResponse
from inboxrl.questions.cache import CallCache
from inboxrl.questions.config import GenerateConfig
from inboxrl.questions.generate import GenerationResult, generate_questions
from inboxrl.questions.select import select_batches
from inboxrl.questions.support import LexicalSupport
from inboxrl.store.schema import connect
from questions_store import INBOX, questions_db  # noqa: F401  (fixture)


def n_emails(req: ChatRequest) -> int:
    return req.messages[-1]["content"].count("### Email ")


def subjects(req: ChatRequest) -> list[str]:
    return re.findall(r"^Subject: (.*)$", req.messages[-1]["content"], re.MULTILINE)


@pytest.fixture()
def conn(questions_db: str) -> sqlite3.Connection:  # noqa: F811
    c = connect(questions_db, readonly=True)
    yield c
    c.close()


def q(question: str, answer: str = "Friday at 3 pm", ids: object = (1,), realism: object = 0.9) -> dict:
    return {"question": question, "answer": answer, "source_ids": list(ids) if isinstance(ids, tuple) else ids,
            "how_realistic": realism}


def assert_balanced(res: GenerationResult) -> None:
    for st in [*res.stages.values(), *(s for per in res.per_inbox.values() for s in per.values())]:
        assert st.seen == st.kept + st.total_dropped, st
    s = res.stages
    assert s["validation"].kept == s["realism"].seen
    assert s["realism"].kept == s["dedup"].seen
    assert s["dedup"].kept == s["support"].seen
    assert s["support"].kept == s["per_inbox"].seen
    assert s["per_inbox"].kept == len(res.questions)


def test_validation_rules_on_hand_made_output_scripted_backend(conn: sqlite3.Connection) -> None:
    items = [
        q("When is my talk at Rice with Christie?"),  # kept
        q("", "x"),  # empty question
        q("What did Ken say?", "   "),  # empty answer
        {"question": "Who called me?", "answer": "Jeff", "how_realistic": 0.9},  # no source ids
        q("Where is the dinner?", ids=(99,)),  # id not in the batch
        q("Who sent the agenda?", ids=["x"]),  # not an id at all
        q("How much is the fee?", ids=["email 2", "#3", 2]),  # readable forms of valid ids: kept, deduplicated
        q("What is the room?", realism="high"),  # unreadable realism
        q("Which hotel did I book for the conference?", realism=8),  # 0-10 scale: 0.8, kept
        "Who is the speaker?",  # not an object
        q("What day is the budget review meeting?", realism=0.2),  # below threshold
        q("when is my talk at rice with christie", realism=0.6),  # near duplicate of the first
    ]
    backend = ScriptedBackend(reply=lambda r, i: "```json\n" + json.dumps({"questions": items}) + "\n```")
    cfg = GenerateConfig(batch_size=4, max_batches_per_inbox=1)
    res = generate_questions(conn, [INBOX], backend, cfg)

    v = res.stages["validation"]
    assert (v.seen, v.kept) == (12, 5)
    assert v.dropped == {"empty_question": 1, "empty_answer": 1, "no_source_ids": 1, "unknown_source_id": 2,
                         "bad_how_realistic": 1, "not_an_object": 1}
    assert res.stages["realism"].dropped == {"below_realism_threshold": 1}
    assert res.stages["dedup"].dropped == {"near_duplicate": 1}
    assert_balanced(res)
    assert sorted(x.question for x in res.questions) == [
        "How much is the fee?", "When is my talk at Rice with Christie?",
        "Which hotel did I book for the conference?"]
    assert {r.reason.value for r in res.rejected} >= set(v.dropped) | {"near_duplicate", "below_realism_threshold"}

    batch = select_batches(conn, INBOX, cfg).batches[0]
    by_q = {x.question: x for x in res.questions}
    assert by_q["How much is the fee?"].message_ids == [batch.emails[1].message_id, batch.emails[2].message_id]
    assert by_q["Which hotel did I book for the conference?"].how_realistic == pytest.approx(0.8)
    for x in res.questions:
        assert x.inbox_address == INBOX
        for mid in x.message_ids:  # a real stored mail, with the inbox among its participants
            row = conn.execute("SELECT m.date FROM messages m JOIN participants p ON p.message_rowid = m.id "
                               "WHERE m.message_id = ? AND p.address = ?", (mid, INBOX)).fetchone()
            assert row is not None
        latest = max(date.fromisoformat(conn.execute("SELECT substr(date, 1, 10) FROM messages WHERE message_id = ?",
                                                     (m,)).fetchone()[0]) for m in x.message_ids)
        assert 1 <= (date.fromisoformat(x.query_date) - latest).days <= 30


def test_unparseable_and_backend_errors_are_counted_scripted_backend(conn: sqlite3.Connection) -> None:
    def script(r: ChatRequest, i: int) -> ChatResponse | str:
        if i == 1:
            return "These emails are about a conference. I cannot write questions."
        if i == 2:
            return ChatResponse(error="context overflow")
        return json.dumps([q(f"What is the room number for meeting {i}?")])

    res = generate_questions(conn, [INBOX], ScriptedBackend(reply=script), GenerateConfig(batch_size=3,
                                                                                     max_batches_per_inbox=3))
    g = res.stages["generation"]
    assert (g.seen, g.kept, g.dropped) == (3, 1, {"unparseable_output": 1, "backend_error": 1})
    assert len(res.questions) == 1
    unparseable = [r for r in res.rejected if r.reason.value == "unparseable_output"]
    assert "cannot write questions" in unparseable[0].item  # the raw output is kept for the drop log
    assert_balanced(res)


def test_dead_backend_stops_the_run_scripted_backend(conn: sqlite3.Connection) -> None:
    backend = ScriptedBackend(reply=lambda r, i: ChatResponse(error="connection refused"))
    with pytest.raises(BackendError, match="connection refused"):
        generate_questions(conn, [INBOX], backend, GenerateConfig(batch_size=2, max_batches_per_inbox=10))
    assert backend.calls == 4


def test_cache_hit_on_rerun_scripted_backend(conn: sqlite3.Connection, tmp_path) -> None:
    def script(r: ChatRequest, i: int) -> str:
        return json.dumps({"questions": [q(f"What did I hear about {subjects(r)[0][:30]}?", ids=(1,))]})

    cfg = GenerateConfig(batch_size=3, max_batches_per_inbox=3)
    first = ScriptedBackend(reply=script)
    cache = CallCache(tmp_path / "cache.sqlite")
    res1 = generate_questions(conn, [INBOX], first, cfg, cache=cache)
    cache.close()
    assert first.calls == 3 and len(first.ended) == 3

    again = ScriptedBackend(reply=lambda r, i: pytest.fail("a cached batch was sent to the model"))
    cache = CallCache(tmp_path / "cache.sqlite")
    res2 = generate_questions(conn, [INBOX], again, cfg, cache=cache)
    assert again.calls == 0 and cache.hits == 3
    assert [x.model_dump() for x in res2.questions] == [x.model_dump() for x in res1.questions]
    assert res2.stages["generation"].notes["cache_hits"] == 3

    # A different email cut is a different prompt: not a stale hit.
    changed = ScriptedBackend(reply=script)
    generate_questions(conn, [INBOX], changed, cfg.model_copy(update={"email_chars": 300}), cache=cache)
    assert changed.calls == 3
    cache.close()


def test_per_inbox_stops_early_and_is_deterministic_across_concurrency_scripted_backend(
    conn: sqlite3.Connection,
) -> None:
    def script(r: ChatRequest, i: int) -> str:
        s = subjects(r)
        return json.dumps([q(f"What was said in {s[0]} number one?", ids=(1,)),
                           q(f"Who wrote {s[-1]} second?", ids=(n_emails(r),), realism=0.7)])

    base = GenerateConfig(batch_size=2, max_batches_per_inbox=6, per_inbox=3)
    serial = ScriptedBackend(reply=script)
    res1 = generate_questions(conn, [INBOX], serial, base)
    assert len(res1.questions) == 3 and serial.calls == 2
    assert res1.stages["generation"].dropped == {"skipped_target_reached": 4}
    assert res1.stages["per_inbox"].dropped == {"over_per_inbox": 1}
    assert_balanced(res1)

    wide = ScriptedBackend(reply=script)
    res2 = generate_questions(conn, [INBOX], wide, base.model_copy(update={"concurrency": 4}))
    assert wide.calls == 4
    assert [x.id for x in res2.questions] == [x.id for x in res1.questions]
    assert res2.stages["per_inbox"].dropped == {"over_per_inbox": 5}
    assert_balanced(res2)


def test_support_check_with_a_model_scripted_backend(conn: sqlite3.Connection) -> None:
    gen = ScriptedBackend(reply=lambda r, i: json.dumps([q("When is my flight to Austin?", ids=(1,)),
                                                   q("Who is presenting the paper at Rice?", ids=(2,)),
                                                   q("What is the budget for the class project?", ids=(3,))]))

    def judge(r: ChatRequest, i: int) -> str:
        text = r.messages[-1]["content"]
        if "flight" in text:
            return '{"supported": true, "reason": "stated"}'
        if "presenting" in text:
            return '{"supported": false, "reason": "not in the email"}'
        return "I like turtles"

    sup = ScriptedBackend(reply=judge, name="scripted-judge")
    res = generate_questions(conn, [INBOX], gen, GenerateConfig(batch_size=3, max_batches_per_inbox=1),
                             support=sup)
    s = res.stages["support"]
    assert (s.seen, s.kept) == (3, 1)
    assert s.dropped == {"unsupported": 1, "support_check_failed": 1}
    assert s.notes["checker"] == "scripted-judge"
    assert [x.question for x in res.questions] == ["When is my flight to Austin?"]
    assert "Question: When is my flight" in sup_request_text(sup)
    assert_balanced(res)


def sup_request_text(sup: ScriptedBackend) -> str:
    """What the support checker was asked (the scripted backend records every request)."""
    return "\n".join(str(r.messages[-1]["content"]) for r in sup.requests)


def test_lexical_support_check_drops_invented_numbers_scripted_backend(conn: sqlite3.Connection) -> None:
    cfg = GenerateConfig(batch_size=1, max_batches_per_inbox=1)
    email = select_batches(conn, INBOX, cfg).batches[0].emails[0]
    words = [w for w in re.findall(r"[A-Za-z]{5,}", email.body)][:4]
    grounded = " ".join(words)
    gen = ScriptedBackend(reply=lambda r, i: json.dumps([
        q("What did the mail say?", answer=grounded),
        q("How much did I pay for the tickets?", answer="$987654321"),
        q("When is my lunch with Zebulon at the Petroleum Club?", answer=grounded),  # names not in the mail
    ]))
    res = generate_questions(conn, [INBOX], gen, cfg, support=LexicalSupport())
    assert res.stages["support"].dropped == {"unsupported": 2}
    assert [x.answer for x in res.questions] == [grounded]
    details = sorted(r.detail for r in res.rejected if r.reason.value == "unsupported")
    assert details[0].startswith("numbers not in sources: 987654321")
    assert details[1].startswith("question names not in sources: Zebulon")


def test_unknown_inbox_yields_counted_nothing_scripted_backend(conn: sqlite3.Connection) -> None:
    backend = ScriptedBackend(reply=lambda r, i: pytest.fail("no batch should be sent"))
    res = generate_questions(conn, ["nobody@nowhere.example"], backend, GenerateConfig())
    assert res.questions == [] and backend.calls == 0
    assert res.stages["selection"].seen == 0
    assert res.stages["selection"].notes["inboxes_without_usable_mail"] == 1
