"""Collapse: a policy that gives one answer to every question, or that stops answering.

Both are cheap ways to a stable reward: the same name or date is right often enough by chance, and "I don't know"
sits in the tier above a wrong answer. Neither shows in a reward curve that still rises.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from inboxrl.checks.episodes import attempted, said_dont_know
from inboxrl.checks.report import DetectorResult, result
from inboxrl.trajectory import Trajectory

# Flag when one normalised answer is given to more than this share of a model's questions...
ANSWER_COLLAPSE_SHARE = 0.25
# ...and to at least this many different questions, so that a small eval run cannot trip it by coincidence.
ANSWER_COLLAPSE_MIN_QUESTIONS = 3
# Flag when the "I don't know" rate rises by more than this against the previous validation...
ABSTENTION_JUMP = 0.15
# ...and by at least this many episodes.
ABSTENTION_MIN_EPISODES = 2


def normalise(answer: str) -> str:
    """Case, punctuation and spacing removed: "Vince Kaminski." and "vince kaminski" are one answer."""
    return " ".join(re.sub(r"[^\w\s]", " ", answer.lower()).split())


def detect_answer_collapse(trajs: Sequence[Trajectory], ids: Sequence[str]) -> DetectorResult:
    by_model: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(trajs):
        by_model[t.model].append(i)
    flagged: list[str] = []
    worst = (0.0, "", 0, 0, "")  # share, answer, questions giving it, questions, model
    for model, idx in by_model.items():
        questions = {trajs[i].question_id for i in idx}
        givers: dict[str, set[str]] = defaultdict(set)
        for i in idx:
            t = trajs[i]
            if attempted(t) and normalise(t.final_answer or ""):
                givers[normalise(t.final_answer or "")].add(t.question_id)
        if not givers:
            continue
        answer, qs = max(givers.items(), key=lambda kv: len(kv[1]))
        share = len(qs) / len(questions)
        if share > worst[0]:
            worst = (share, answer, len(qs), len(questions), model)
        if share > ANSWER_COLLAPSE_SHARE and len(qs) >= ANSWER_COLLAPSE_MIN_QUESTIONS:
            flagged += [ids[i] for i in idx if attempted(trajs[i]) and normalise(trajs[i].final_answer or "") == answer]
    share, answer, k, n, model = worst
    if not answer:
        return result([], "no attempted answers")
    detail = (f"most common answer {answer[:60]!r} given to {k} of {n} questions ({share:.0%}) by {model}; "
              f"flagged above {ANSWER_COLLAPSE_SHARE:.0%} and {ANSWER_COLLAPSE_MIN_QUESTIONS} questions")
    return result(flagged, detail)


def detect_abstention_collapse(trajs: Sequence[Trajectory], ids: Sequence[str],
                               previous: Sequence[Trajectory] | None) -> DetectorResult:
    if not previous:
        return result([], "no previous validation to compare with")
    now = [said_dont_know(t) for t in trajs]
    before = [said_dont_know(t) for t in previous]
    rate_now, rate_before = sum(now) / max(len(now), 1), sum(before) / max(len(before), 1)
    jump = rate_now - rate_before
    detail = (f"\"I don't know\" rate {rate_before:.0%} -> {rate_now:.0%}; flagged when it rises by more than "
              f"{ABSTENTION_JUMP:.0%} and {ABSTENTION_MIN_EPISODES} episodes")
    if jump <= ABSTENTION_JUMP or sum(now) - sum(before) * len(now) / max(len(before), 1) < ABSTENTION_MIN_EPISODES:
        return result([], detail)
    # The episodes that abstain now where the same question was answered before; all abstentions if none pair up.
    answered_before = Counter(t.question_id for t in previous if not said_dont_know(t))
    paired = [eid for t, eid, idk in zip(trajs, ids, now) if idk and answered_before[t.question_id]]
    return result(paired or [eid for eid, idk in zip(ids, now) if idk], detail)
