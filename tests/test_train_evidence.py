"""Re-grounding training questions by answer evidence, on the real store: the mail found must show the golden answer,
and validation must never change or leak."""

from __future__ import annotations

from pathlib import Path

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.runner import make_tools, open_store
from inboxrl.questions.grounding import resolve_ids
from inboxrl.tools.base import normalise_id
from inboxrl.training.config import DataSettings
from inboxrl.training.data import is_validation, load_split
from inboxrl.training.evidence import content_words, reground
from train_helpers import grounded

CFG = AgentConfig(tools={"body_char_limit": 1500, "default_max_results": 5})


def test_reground_finds_the_source_from_the_question_and_answer_alone(enron_store: Path,
                                                                        questions_path: Path) -> None:
    qs = grounded(enron_store, questions_path, 12)
    hidden = [q.model_copy(update={"message_ids": ["<not-in-the-store@example>"]}) for q in qs]
    out, report = reground(hidden, str(enron_store), CFG)
    assert report.regrounded == len(out) >= 6, report
    assert report.regrounded + sum(report.skipped.values()) == len(qs)
    original = {q.id: {normalise_id(m) for m in q.message_ids} for q in qs}
    same = 0
    conn = open_store(enron_store)
    try:
        for q in out:
            (mid,) = q.message_ids
            same += normalise_id(mid) in original[q.id]
            # The evidence is in what the agent's own first read of that mail shows.
            mail = make_tools(conn, q, CFG).read_email(mid)
            assert content_words(q.answer) <= content_words(f"{mail['subject']} {mail['body']}")
    finally:
        conn.close()
    assert same >= len(out) // 2, f"only {same} of {len(out)} re-grounded on the very mail the question cites"


def test_reground_skips_answers_too_short_to_evidence(enron_store: Path, questions_path: Path) -> None:
    q = grounded(enron_store, questions_path, 1)[0].model_copy(update={"answer": "Yes."})
    out, report = reground([q], str(enron_store), CFG)
    assert out == [] and report.skipped == {"answer_too_short": 1}


def test_split_regrounds_training_side_only_and_never_a_validation_source(enron_store: Path,
                                                                          questions_path: Path) -> None:
    strict = DataSettings(db=str(enron_store), train_questions=str(questions_path), val_fraction=0.5)
    wide = strict.model_copy(update={"reground_train": True})
    a, b = load_split(strict), load_split(wide, CFG)
    assert [q.id for q in b.val] == [q.id for q in a.val]  # validation is untouched
    assert {q.id for q in a.train} < {q.id for q in b.train}
    new_ids = {q.id for q in b.train} - {q.id for q in a.train}
    assert b.leaks is not None and a.leaks is not None
    # Every re-grounded question trains unless it shares a mail with a validation question or duplicates one.
    leaked = {i for ids in b.leaks.dropped.values() for i in ids} - {i for ids in a.leaks.dropped.values() for i in ids}
    assert b.regrounded == len(new_ids) + len(leaked) and len(new_ids) > 50 and leaked
    assert not any(is_validation(q.id, wide.split_salt, wide.val_fraction) for q in b.train)
    assert b.dropped["not_grounded"] == a.dropped["not_grounded"] - b.regrounded
    assert b.dropped["reground_no_evidence"] > 0
    conn = open_store(enron_store)
    try:
        held = {r for q in b.val for r in resolve_ids(conn, q.message_ids).values()}
        new = [q for q in b.train if q.id not in {x.id for x in a.train}]
        assert all(not set(resolve_ids(conn, q.message_ids).values()) & held for q in new)
        assert all(len(resolve_ids(conn, q.message_ids)) == 1 for q in new)  # each names one stored mail
    finally:
        conn.close()
