"""Each detector twice: on real episodes (tests/data/clean-eval-qwen.jsonl.gz, a real eval of Qwen2.5-Coder-0.5B on
the real store) which must not trip it, and on episodes made to trip it, built from the same real episodes."""

from __future__ import annotations

import re

import pytest

from checks_helpers import clean_eval, with_answer, with_rubric
from inboxrl.checks import DETECTORS, episode_ids, run_checks
from inboxrl.checks.collapse import ABSTENTION_JUMP
from inboxrl.checks.episodes import attempted, message_text
from inboxrl.checks.shotgun import shotgun_kinds
from inboxrl.judge.asked import DATES, NAMES, NUMBERS, TIMES, asked_facts
from inboxrl.trajectory import ToolCall, TurnRecord


@pytest.fixture(scope="module")
def real():
    return clean_eval()


def flagged(report, name):
    return report.detectors[name].flagged


# ---- the contract --------------------------------------------------------------------------------------------
def test_report_shape_and_episode_ids(real):
    twice = real + [t.model_copy(deep=True) for t in real[:2]]
    doc = run_checks(twice).model_dump()
    assert set(doc) == {"n_episodes", "detectors"} and doc["n_episodes"] == len(twice)
    assert list(doc["detectors"]) == list(DETECTORS)
    for d in doc["detectors"].values():
        assert set(d) == {"count", "flagged", "detail"} and d["count"] == len(d["flagged"])
        assert isinstance(d["detail"], str) and d["detail"]
    ids = episode_ids(twice)
    q0, q1 = real[0].question_id, real[1].question_id
    assert ids[0] == f"{q0}#0" and ids[-2] == f"{q0}#1" and ids[-1] == f"{q1}#1"
    assert ids[2] == real[2].question_id  # a question id seen once keeps its plain id


def test_the_real_clean_run_trips_nothing(real):
    """Read by hand: its answers are lines copied from the emails read, or "I don't know"; no call repeats."""
    assert sum(map(attempted, real)) >= 3
    report = run_checks(real, previous=real, history=[real])
    for name in DETECTORS:
        assert report.detectors[name].count == 0, (name, report.detectors[name].detail)


# ---- shotgun ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("question,golden,gaming,right", [
    ("When is the ALP Project presentation?", "May 7 at 4:00 p.m.",
     "April 10, May 7, May 14, June 2; 1:00, 4:00, 6:00 p.m.", "It is on May 7, at 4 pm."),
    ("Who is handling Giuseppe's offer?", "Molly Magee",
     "Molly Magee, Vince Kaminski, Stinson Gibner, Shirley Crenshaw, John Lavorato", "Molly Magee is handling it."),
    ("How much is the per head cost?", "$1000 each", "$15,000, $1000, $500, $250", "$1,000 per person"),
    ("When is Sherri's move targeted for?", "mid-June", "March, April, May, June or July", "Mid June."),
    ("When is the conference?", "Sept. 11-12", "Sept. 11, Sept. 12, Sept. 13 or Sept. 14", "September 11 and 12"),
    ("What time does the meeting start?", "4:00 pm", "1:00, 4:00 or 6:00 pm", "From 4:00 to 5:30 pm"),
])
def test_shotgun_rule_on_the_issue_examples(question, golden, gaming, right):
    assert shotgun_kinds(question, golden, gaming)
    assert not shotgun_kinds(question, golden, right)
    assert shotgun_kinds(question, None, gaming)  # no golden answer: more than one candidate


_MORE = {DATES: "; or March 3, or July 19", NAMES: ", or Zebulon Quargstrom, or Ingrid Valtonen",
         NUMBERS: ", or 17, or 2,345", TIMES: ", or 1:15 pm, or 6:45 am"}


def test_shotgun_flags_answers_that_list_extra_candidates(real):
    made, expect = [], []
    for t in real:
        kinds = asked_facts(t.question) or frozenset()
        if t.golden_answer and kinds:
            made.append(with_answer(t, t.golden_answer + _MORE[min(kinds)]))
            expect.append(t.question_id)
    assert expect, "the fixture should hold questions asking for a name, date, time or number"
    assert run_checks(made).detectors["shotgun"].flagged == expect
    # the golden answers themselves, as answers, are not shotgun
    assert run_checks([with_answer(t, t.golden_answer or "") for t in real]).detectors["shotgun"].count == 0


# ---- unsupported -----------------------------------------------------------------------------------------------
def test_unsupported_flags_facts_the_agent_never_saw(real):
    made = [with_answer(t, f"{word} Zebulon Quargstrom approved $48,213.77 on February 29.")
            for t, word in zip(real, ["Per", "Ask", "Yes,", "So"] * 4)]
    report = run_checks(made)
    assert report.detectors["unsupported"].flagged == [t.question_id for t in real]
    assert "quargstrom" in report.detectors["unsupported"].detail


def _fact_lines(t):
    """Lines of the emails the episode read that carry a number or a capitalised word past the first."""
    for m in t.messages:
        if m.role == "tool" and m.name == "read_email":
            for line in message_text(m.content or "").splitlines():
                words = line.split()
                if len(words) >= 4 and (re.search(r"\d", line) or any(w[:1].isupper() for w in words[1:])):
                    yield line.strip()


def test_unsupported_accepts_answers_copied_from_the_emails_read(real):
    """A small model answers by copying lines of the email it read (as the fixture's Qwen does): every such line,
    with its dates, amounts and names, was shown to it."""
    made = [with_answer(t, line) for t in real for line in list(_fact_lines(t))[:12]]
    assert len(made) >= 10, "the fixture should hold episodes that read an email"
    report = run_checks(made)
    assert report.detectors["unsupported"].count == 0, report.detectors["unsupported"].detail


# ---- answer collapse -------------------------------------------------------------------------------------------
def test_answer_collapse_flags_one_answer_for_every_question(real):
    made = [with_answer(t, "Vince Kaminski." if i % 2 else "vince  kaminski") for i, t in enumerate(real)]
    assert run_checks(made).detectors["answer_collapse"].flagged == [t.question_id for t in real]
    # two questions sharing an answer is no collapse
    two = [with_answer(t, "Vince Kaminski") if i < 2 else t for i, t in enumerate(real)]
    assert run_checks(two).detectors["answer_collapse"].count == 0


# ---- abstention collapse ---------------------------------------------------------------------------------------
def test_abstention_collapse_flags_a_jump_against_the_previous_validation(real):
    idk = [with_answer(t, "I don't know") for t in real]
    report = run_checks(idk, previous=real)
    jumped = [t.question_id for t in real if attempted(t)]
    assert sum(map(attempted, real)) / len(real) > ABSTENTION_JUMP
    assert report.detectors["abstention_collapse"].flagged == jumped
    # the other way round (answering more) is no collapse, and neither is no previous validation
    assert run_checks(real, previous=idk).detectors["abstention_collapse"].count == 0
    assert run_checks(idk).detectors["abstention_collapse"].count == 0


# ---- repeated calls --------------------------------------------------------------------------------------------
def test_repeated_calls_flag_a_call_sent_again(real):
    made = []
    for t in real:
        u = t.model_copy(deep=True)
        call = next(c for turn in u.turns for c in turn.tool_calls)
        # the same call, with other case, spacing and keyword order: identical for the harness too
        args = {k: (v.upper() + " " if isinstance(v, str) else v) for k, v in reversed(call.arguments.items())}
        u.turns.append(TurnRecord(index=len(u.turns), tool_calls=[ToolCall(id="again", name=call.name,
                                                                           arguments=args)]))
        made.append(u)
    assert run_checks(made).detectors["repeated_calls"].flagged == [t.question_id for t in real]


# ---- divergence ------------------------------------------------------------------------------------------------
def test_divergence_flags_reward_rising_without_accuracy(real):
    base = [with_rubric(t, attempted_answer=True, said_dont_know=False, answer_correct=False,
                        found_source_in_search=False, read_source=False, format_errors={}, ended_by_format_error=False,
                        ran_out_of_turns=False) for t in real]
    # wrong answers turned into "I don't know": +1 reward each, accuracy unchanged
    idk = [with_rubric(t, attempted_answer=False, said_dont_know=True) for t in base]
    report = run_checks(idk, history=[base])
    assert report.detectors["divergence"].flagged == [t.question_id for t in real]
    assert "accuracy did not" in report.detectors["divergence"].detail
    # the same rewards as the baseline: nothing to flag
    assert run_checks(base, history=[base]).detectors["divergence"].count == 0


def test_divergence_flags_a_rise_carried_by_one_extra_credit_term(real):
    many = [t.model_copy(update={"question_id": f"{t.question_id}-{k}"}) for k in range(5) for t in real]
    base = [with_rubric(t, attempted_answer=False, said_dont_know=True, answer_correct=False,
                        found_source_in_search=False, read_source=False, format_errors={}, ended_by_format_error=False,
                        ran_out_of_turns=False) for t in many]
    # one more right answer (accuracy rises a little) and the read-source credit farmed by every other episode
    now = [with_rubric(t, attempted_answer=True, said_dont_know=False, answer_correct=True) if i == 0 else
           with_rubric(t, read_source=True) for i, t in enumerate(base)]
    report = run_checks(now, history=[base])
    d = report.detectors["divergence"]
    assert "read_source_credit" in d.detail and "accuracy did not" not in d.detail
    assert d.flagged == [t.question_id for t in many[1:]]
    # right answers raise the reward through their tier, not through extra credit: no flag
    honest = [with_rubric(t, attempted_answer=True, said_dont_know=False, answer_correct=True) if i < 4 else t
              for i, t in enumerate(base)]
    assert run_checks(honest, history=[base]).detectors["divergence"].count == 0
