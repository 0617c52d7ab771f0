"""Rubric building and scoring on hand-made trajectories: every rubric field, alias resolution on the real store,
and `score_trajectories` with the real lexical judge (answers judged in one batch, "I don't know" never judged)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from inboxrl.judge.base import Verdict
from inboxrl.judge.lexical import LexicalJudge
from inboxrl.scoring.reward import RewardConfig, reward
from inboxrl.scoring.rubric import IdResolver, build_rubric, normalise_id
from inboxrl.scoring.score import score_trajectories
from inboxrl.trajectory import FormatErrorKind, ToolEvent, Trajectory, TurnRecord

INBOX = "vince.kaminski@enron.com"
GOLD = "<16015.1075856541326.JavaMail.evans@thyme>"
OTHER = "<99999.1075856541326.JavaMail.evans@thyme>"


def traj(**kw: object) -> Trajectory:
    base: dict[str, object] = dict(
        question_id="16015", question="How many Christmas cards did I ask Kevin to order?", golden_answer="50 cards.",
        golden_message_ids=[GOLD], inbox_address=INBOX, query_date="2000-11-09", model="hand-made")
    base.update(kw)
    return Trajectory.model_validate(base)


def turns(n: int, errors: dict[int, FormatErrorKind] | None = None) -> list[TurnRecord]:
    return [TurnRecord(index=i, format_error=(errors or {}).get(i)) for i in range(n)]


def test_rubric_of_a_full_correct_episode_fills_every_field() -> None:
    t = traj(
        turns=turns(5, {1: FormatErrorKind.UNPARSEABLE, 2: FormatErrorKind.BAD_ARGUMENTS}),
        tool_events=[
            ToolEvent(turn=0, name="search_inbox", arguments={"keywords": ["christmas cards"]}, result_ids=[]),
            ToolEvent(turn=3, name="search_inbox", arguments={"keywords": ["cards"]}, result_ids=[OTHER, GOLD]),
            ToolEvent(turn=3, name="read_email", arguments={"message_id": "<made-up@nowhere>"}, ok=False,
                      error="not_found"),
            ToolEvent(turn=4, name="read_email", arguments={"message_id": GOLD}, result_ids=[GOLD]),
        ],
        final_answer="You asked Kevin for fifty cards.", final_sources=[GOLD.strip("<>")], stop_reason="answered")
    r = build_rubric(t, Verdict(True, "same number", "lexical"), max_turns=10)
    assert r.attempted_answer and not r.said_dont_know
    assert r.answer_correct
    assert r.sources_correct  # angle brackets do not matter
    assert r.num_turns == 5 and r.max_turns == 10
    assert r.found_source_in_search and r.read_source
    assert r.invalid_read_attempts == 1
    assert r.format_errors == {"unparseable": 1, "bad_arguments": 1}
    assert not r.ended_by_format_error and not r.ran_out_of_turns
    assert r.judge_reason == "same number"


def test_rubric_wrong_sources_and_rejected_answer() -> None:
    t = traj(turns=turns(2), final_answer="500 cards.", final_sources=[GOLD, OTHER], stop_reason="answered",
             tool_events=[ToolEvent(turn=0, name="search_inbox", result_ids=[OTHER])])
    r = build_rubric(t, Verdict(False, "number differs"), max_turns=10)
    assert r.attempted_answer and not r.answer_correct
    assert not r.sources_correct  # one cited source is not golden
    assert not r.found_source_in_search and not r.read_source
    assert build_rubric(traj(final_answer="50", final_sources=[], stop_reason="answered"), Verdict(True),
                        10).sources_correct is False  # citing nothing is not "sources correct"


def test_rubric_dont_know_is_not_an_attempt_even_with_an_accepting_verdict() -> None:
    t = traj(turns=turns(3), final_answer="Sorry, I could not find that in your emails.", stop_reason="answered")
    r = build_rubric(t, Verdict(True, "should be ignored"), max_turns=10)
    assert r.said_dont_know and not r.attempted_answer and not r.answer_correct
    assert r.judge_reason is None


def test_rubric_out_of_turns_format_error_and_context_full() -> None:
    out = build_rubric(traj(turns=turns(10), stop_reason="out_of_turns"), None, max_turns=10)
    assert out.ran_out_of_turns and not out.attempted_answer and not out.said_dont_know
    full = build_rubric(traj(turns=turns(4), stop_reason="context_full"), None, max_turns=10)
    assert full.ran_out_of_turns
    fmt = build_rubric(traj(turns=turns(2, {1: FormatErrorKind.UNKNOWN_TOOL}), stop_reason="format_error"), None, 10)
    assert fmt.ended_by_format_error and fmt.format_errors == {"unknown_tool": 1} and not fmt.ran_out_of_turns


def test_rubric_invalid_reads_ignore_tool_crashes_and_malformed_calls() -> None:
    t = traj(turns=turns(3), stop_reason="out_of_turns", tool_events=[
        ToolEvent(turn=0, name="read_email", arguments={"message_id": "x"}, ok=False, error="not_found"),
        ToolEvent(turn=1, name="read_email", arguments={"message_id": "y"}, ok=False, error="not_found"),
        ToolEvent(turn=2, name="read_email", arguments={}, ok=False, error="TypeError: boom"),
        ToolEvent(turn=2, name="search_inbox", arguments={}, ok=False, error="empty_query"),
    ])
    assert build_rubric(t, None, 10).invalid_read_attempts == 2


@pytest.fixture(scope="module")
def alias_pair(enron_store: Path) -> tuple[str, str]:
    """A real (alias, stored id) pair: a copy of a mail filed twice, as ART-E golden ids often are."""
    conn = sqlite3.connect(f"file:{enron_store}?mode=ro", uri=True)
    row = conn.execute("SELECT a.alias, m.message_id FROM aliases a JOIN messages m ON m.id = a.message_rowid "
                       "WHERE a.alias != m.message_id ORDER BY a.alias LIMIT 1").fetchone()
    conn.close()
    assert row is not None, "the kaminski store has duplicate copies; one must have an alias"
    return row[0], row[1]


def test_rubric_resolves_golden_aliases_through_the_store(enron_store: Path, alias_pair: tuple[str, str]) -> None:
    alias, stored = alias_pair
    t = traj(golden_message_ids=[alias], turns=turns(3), final_answer="50 cards", final_sources=[stored],
             stop_reason="answered", tool_events=[
                 ToolEvent(turn=0, name="search_inbox", result_ids=[stored]),
                 ToolEvent(turn=1, name="read_email", arguments={"message_id": stored}, result_ids=[stored])])
    without = build_rubric(t, Verdict(True), 10)
    assert not without.sources_correct and not without.found_source_in_search and not without.read_source
    with_db = build_rubric(t, Verdict(True), 10, db=str(enron_store))
    assert with_db.sources_correct and with_db.found_source_in_search and with_db.read_source
    res = IdResolver(enron_store)
    assert res.key(alias) == res.key(stored) == res.key(normalise_id(stored)) != res.key(OTHER)
    res.close()


def test_rubric_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="mail store not found"):
        build_rubric(traj(), None, 10, db=tmp_path / "nope.db")


class CountingLexicalJudge(LexicalJudge):
    """The real lexical judge, recording what it was asked (to check batching and that IDK is never sent)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[tuple[str, str, str]]] = []

    def judge_many(self, items: list[tuple[str, str, str]]) -> list[Verdict]:
        self.batches.append(list(items))
        return super().judge_many(items)


def test_score_trajectories_judges_attempts_in_one_batch_and_writes_rubric_and_reward() -> None:
    trajs = [
        traj(question_id="a", turns=turns(3), final_answer="Fifty cards.", final_sources=[GOLD],
             stop_reason="answered"),
        traj(question_id="b", turns=turns(3), final_answer="500 cards.", stop_reason="answered"),
        traj(question_id="c", turns=turns(2), final_answer="I don't know.", stop_reason="answered"),
        traj(question_id="d", turns=turns(10), stop_reason="out_of_turns"),
        traj(question_id="e", turns=turns(1, {0: FormatErrorKind.UNPARSEABLE}), stop_reason="format_error"),
    ]
    judge = CountingLexicalJudge()
    cfg = RewardConfig()
    out = score_trajectories(trajs, judge, cfg, max_turns=10)
    assert len(judge.batches) == 1 and [c for _, _, c in judge.batches[0]] == ["Fifty cards.", "500 cards."]
    by = {t.question_id: t for t in out}
    assert by["a"].rubric and by["a"].rubric.answer_correct and by["a"].rubric.sources_correct
    assert by["b"].rubric and by["b"].rubric.attempted_answer and not by["b"].rubric.answer_correct
    assert by["c"].rubric and by["c"].rubric.said_dont_know
    assert by["d"].rubric and by["d"].rubric.ran_out_of_turns
    assert by["e"].rubric and by["e"].rubric.ended_by_format_error
    for t in out:
        assert t.rubric is not None and t.reward == reward(t.rubric, cfg)
    assert by["e"].reward < by["b"].reward < by["c"].reward < by["a"].reward  # type: ignore[operator]
    assert by["a"].meta["verdict"]["judge"] == "lexical" and "verdict" not in by["c"].meta
    assert [t.meta["tier"] for t in out] == ["correct", "wrong", "no_answer", "no_answer", "format_error"]


def test_score_trajectories_needs_a_judge_only_for_attempts() -> None:
    idk = [traj(turns=turns(2), final_answer="I don't know", stop_reason="answered")]
    assert score_trajectories(idk, None)[0].reward is not None
    with pytest.raises(ValueError, match="need a judge"):
        score_trajectories([traj(final_answer="50 cards", stop_reason="answered")], None)


def test_score_trajectories_reads_max_turns_from_meta() -> None:
    a = traj(turns=turns(4), final_answer="50 cards", stop_reason="answered", meta={"max_turns": 4})
    b = traj(turns=turns(4), final_answer="50 cards", stop_reason="answered", meta={"max_turns": 20})
    score_trajectories([a, b], LexicalJudge())
    assert a.rubric and a.rubric.max_turns == 4 and b.rubric and b.rubric.max_turns == 20
    assert a.reward is not None and b.reward is not None and a.reward < b.reward


def test_rubric_counts_answers_refused_before_any_search() -> None:
    refused = [ToolEvent(turn=i, name="return_final_answer", arguments={"answer": "May 3", "sources": ["<x>"]},
                         ok=False, error="answer_before_search") for i in range(3)]
    t = traj(tool_events=[*refused, ToolEvent(turn=3, name="search_inbox", result_ids=[OTHER])],
             turns=[TurnRecord(index=i) for i in range(5)], stop_reason="out_of_turns")
    r = build_rubric(t, None, max_turns=5)
    assert r.refused_answers == 3 and r.ran_out_of_turns and not r.attempted_answer
    assert reward(r) < reward(r.model_copy(update={"refused_answers": 0}))
