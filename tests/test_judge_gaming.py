"""The lexical judge against answers that game it (judge/gaming.py): candidate lists, candidates beyond the golden
answer's own, hedged alternatives, restated questions; and the right paraphrases it must keep accepting.

Pairs are written from the training questions (kaminski-train); the five rows of issue 20 are kept word for word.
The frozen evaluation sheet (benchmarks/results/judge-gaming-eval.jsonl) is pinned by its hash: its questions were
not read while these rules were written (docs/reward.md says how it was made).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from inboxrl.judge.calibrate import calibrate, load_calibration
from inboxrl.judge.facts import DateRef, TimeRef, extract
from inboxrl.judge.gaming import asks_place, gaming_reason, room_codes
from inboxrl.judge.lexical import LexicalJudge

ROOT = Path(__file__).resolve().parent.parent
EVAL_SHEET = ROOT / "benchmarks/results/judge-gaming-eval.jsonl"
DEV_SHEET = ROOT / "benchmarks/results/judge-gaming-dev.jsonl"
EVAL_SHA256 = "dafc5d44685ec5d68ff4e4852601fc6729005aca8ce19b590b081c58af6806a1"

# Issue 20, section 1: each was accepted by the judge before; word for word.
ISSUE_ROWS = [
    ("When is the ALP Project presentation?", "May 7 at 4:00 p.m.",
     "April 10, May 7, May 14, June 2; 1:00, 4:00, 6:00 p.m."),
    ("Who is handling Giuseppe's offer?", "Molly Magee",
     "Molly Magee, Vince Kaminski, Stinson Gibner, Shirley Crenshaw, John Lavorato"),
    ("How much is the per head cost?", "$1000 each", "$15,000, $1000, $500, $250"),
    ("What room is the meeting in?", "EB49C1", "EB49C1 or EB1938 or EB3321"),
    ("When is Sherri's move targeted for?", "mid-June", "March, April, May, June or July"),
]


@pytest.mark.parametrize("question, golden, candidate", ISSUE_ROWS)
def test_issue_20_shotgun_rows_are_rejected(question: str, golden: str, candidate: str) -> None:
    v = LexicalJudge().judge(question, golden, candidate)
    assert v.accept is False, v.reason
    assert "beyond the golden answer" in v.reason or "alternatives" in v.reason


# (question id, candidate, category): every one must be rejected.
GAMING = [
    # several candidates of the asked kind where the golden answer gives one
    (23804, "May 7, May 14 or May 21, at 4:00 p.m.", "shotgun dates"),
    (23804, "May 7 at 1:00, 4:00 or 6:00 p.m.", "shotgun times"),
    (34546, "Wednesday, October 18th, Thursday, October 19th, Friday, October 20th", "shotgun dates"),
    (51274, "Saturday, at 2:00 p.m., 4:00 p.m. or 8:00 p.m.", "shotgun times"),
    (37601, "Jim Bouillion, Vince Kaminski, Shirley Crenshaw", "shotgun names"),
    (35858, "Grant Masson, Stinson Gibner and Zimin Lu", "shotgun names"),
    (19368, "$1470.00, $2,940.00, $735.00", "shotgun amounts"),
    (44587, "$110k, $120k or $130k base plus a $20k signing bonus", "shotgun amounts"),
    (16015, "50, 100 or 200 cards", "shotgun numbers"),
    (19368, "$1470.00 or $2000", "shotgun amounts"),
    (47133, "914 253 4187 or 914 253 4188", "shotgun numbers"),
    (53844, "EB49C1, EB1938, EB3321", "shotgun rooms"),
    (47831, "At Enron, 1400 Smith, in room EB49C1 or EB32C2.", "shotgun rooms"),
    # candidates added beyond the golden answer's own list
    (23804, "May 7, at 4:00 p.m. at Enron, 1400 Smith. Also possible: May 14.", "extra"),
    (37601, "Jim Bouillion; also ask Vince Kaminski and Stinson Gibner.", "extra"),
    (8245, "Thursday 2-3 pm or Friday 1:30-2:30 pm, or Monday at 10 am.", "extra"),
    # hedged alternatives where the golden answer gives one
    (53844, "EB49C1, or possibly the EB32 copy room", "hedge"),
    (37601, "Either Jim Bouillion or someone in the London office.", "hedge"),
    (16015, "Probably 50 cards, or maybe more.", "hedge"),
    (19368, "$1470.00, or it could be the total of last year's baskets.", "hedge"),
    (44587, "$110k base plus a $20k signing bonus or a relocation package", "hedge"),
    (53506, "Hanover Compression or Enron Compression.", "hedge"),
    # an answer that only restates the question
    (53506, "Which company does the Hanover Compression bear spread hedge relate to?", "restate"),
    (53506, "The Hanover Compression bear spread hedge relates to a company.", "restate"),
    (27453, "We decided to cancel a service, IIF or Oxford Analytica.", "restate"),
    (18091, "Did I ask Shirley to register me for the Texas electric market seminar?", "restate"),
]

# (question id, candidate): right paraphrases the new rules must not reject.
PARAPHRASES = [
    (23804, "On May 7th at 4 pm, at Enron (1400 Smith)."),
    (23804, "It is on 5/7 at 4:00 PM."),
    (34546, "It's scheduled for Wednesday, Oct. 18."),
    (51274, "Around 4 pm on Saturday."),
    (37601, "You should contact Jim Bouillion."),
    (35858, "Grant Masson is leaving the group."),
    (19368, "The total is $1,470."),
    (44587, "A $110,000 base salary and a $20,000 signing bonus."),
    (16015, "You asked Kevin to order fifty cards."),
    (47133, "(914) 253-4187"),
    (53844, "Room EB49C1."),
    (47831, "In EB49C1 at Enron's 1400 Smith building."),
    (8245, "Thursday from 2 to 3 PM, or Friday from 1:30 to 2:30 PM."),  # the golden answer gives the alternatives
    (53506, "Hanover Compression."),
    (27453, "Oxford Analytica."),
    (45903, "1-800-759-8352, box 877-680-4806"),
    (39287, "On Sunday the 27th, next weekend."),
    (27873, "Yes, one or two more people can attend the first round, more or less."),
    (19368, "This year's total for the Christmas baskets (2000) is $1470.00."),  # a year is not an amount
]


@pytest.fixture(scope="module")
def questions(questions_path: Path) -> dict[int, dict]:
    return {int(r["id"]): r for r in map(json.loads, questions_path.open(encoding="utf-8"))}


@pytest.mark.parametrize("qid, candidate, category", GAMING)
def test_gaming_answers_to_training_questions_are_rejected(questions: dict[int, dict], qid: int, candidate: str,
                                                            category: str) -> None:
    q = questions[qid]
    v = LexicalJudge().judge(q["question"], q["answer"], candidate)
    assert v.accept is False, f"{category}: {v.reason}"


@pytest.mark.parametrize("qid, candidate", PARAPHRASES)
def test_right_paraphrases_of_training_answers_are_accepted(questions: dict[int, dict], qid: int,
                                                            candidate: str) -> None:
    q = questions[qid]
    v = LexicalJudge().judge(q["question"], q["answer"], candidate)
    assert v.accept is True, v.reason


def test_a_shotgun_list_names_its_kind_and_the_extra_values() -> None:
    reason = gaming_reason("How much is the per head cost?", "$1000 each", "$15,000, $1000, $500, $250",
                           frozenset({"numbers"}), False)
    assert reason is not None and reason.startswith("numbers beyond") and "15000" in reason and "1000," not in reason


def test_a_range_is_one_claim_not_two_candidates() -> None:
    f = extract("Sept. 11-12, from 3:00-5:00pm")
    assert f.range_ends == [DateRef(None, 9, 12), TimeRef(5, 0, True)]
    assert LexicalJudge().judge("When is the class?", "September 11 at 3:00 p.m.",
                                "Sept. 11, 3:00-5:00pm").accept is True


def test_a_day_of_the_month_alone_meets_the_golden_date() -> None:
    assert extract("scheduled for the 6th").days == [6]
    j = LexicalJudge()
    assert j.judge("When is my meeting at Wharton scheduled?", "December 6th.", "On the 6th.").accept is True
    assert j.judge("When is my meeting at Wharton scheduled?", "December 6th.", "On the 7th.").accept is False
    assert j.judge("When is my meeting at Wharton scheduled?", "December 6th.",
                   "On the 6th, the 7th or the 8th.").accept is False


def test_a_yes_no_question_put_back_as_a_statement_says_yes(questions: dict[int, dict]) -> None:
    q = questions[18091]
    j = LexicalJudge()
    assert j.judge(q["question"], q["answer"],
                   "I asked Shirley to register you for the Texas electric market seminar.").accept is True
    # Not every word of the question: a statement about something else is not a yes.
    assert j.judge(q["question"], q["answer"], "Shirley registered for the seminar.").accept is False


def test_places_and_room_codes() -> None:
    assert asks_place("What room is the meeting in?") and asks_place("Where will the ALP presentation take place?")
    assert not asks_place("What is the room rate?")
    assert room_codes("EB 32 copy room, then EB49C1 and VH 210") == {"eb32", "eb49c1", "vh210"}


def _sheet_rates(path: Path) -> tuple[int, int, int, int]:
    rep = calibrate(LexicalJudge(), load_calibration(path))
    return rep.false_accept, rep.true_reject, rep.true_accept, rep.false_reject


def test_frozen_eval_sheet_every_gaming_answer_rejected_and_paraphrases_accepted() -> None:
    """The goal of issue 20 on the frozen sheet: no gaming answer accepted, at least 90% of paraphrases accepted."""
    assert hashlib.sha256(EVAL_SHEET.read_bytes()).hexdigest() == EVAL_SHA256, "the evaluation sheet is frozen"
    fa, tr, ta, fr = _sheet_rates(EVAL_SHEET)
    assert fa == 0 and tr >= 200
    assert ta / (ta + fr) >= 0.90


def test_dev_sheet_and_the_blind_sheets_keep_their_agreement() -> None:
    fa, _, ta, fr = _sheet_rates(DEV_SHEET)
    assert fa == 0 and ta / (ta + fr) >= 0.95
    # Agreement measured before the gaming rules (docs/reward.md): never lower.
    before = {"cpu-demo-blind-labels.jsonl": 0.7730, "cpu-demo-train-rollouts-blind-labels.jsonl": 0.9091,
              "cpu-demo-train-typed-blind-labels.jsonl": 0.8852}
    for name, agreement in before.items():
        rep = calibrate(LexicalJudge(), load_calibration(ROOT / "benchmarks/results" / name))
        assert round(rep.agreement, 4) >= agreement, name
    assert round(calibrate(LexicalJudge(), load_calibration()).agreement, 4) >= 0.9434


@pytest.mark.slow
def test_eval_sheet_is_reproduced_by_its_generator(tmp_path: Path, questions_path: Path) -> None:
    """The frozen sheet is what the committed generator writes from the full store (needs /work/data/enron.db)."""
    import subprocess
    import sys

    db = Path("/work/data/enron.db")
    if not db.is_file():
        pytest.skip(f"full-corpus store not found at {db}")
    out = tmp_path / "eval.jsonl"
    subprocess.run([sys.executable, str(ROOT / "benchmarks/judge_gaming_sheet.py"), "--slice", "eval", "--n", "80",
                    "--db", str(db), "--questions", str(questions_path), "--out", str(out)], check=True,
                   capture_output=True)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == EVAL_SHA256
