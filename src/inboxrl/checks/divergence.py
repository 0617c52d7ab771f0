"""Divergence in training: the reward rises while accuracy by the judge does not, or it rises through one
extra-credit term.

GRPO climbs whatever the reward pays for. The reward's tiers (scoring/reward.py) keep partial credit from ever
outweighing a right answer, but inside a tier a policy can still farm a term (read the source mail without
answering from it, stop citing wrong sources) or move between tiers without getting better (wrong answers become
"I don't know"). Both show as a reward that rises with a flat accuracy. The comparison is against the first set of
`history` (in training: the step-0 validation, the same questions as every later one), so that slow drifts add up.
"""

from __future__ import annotations

from collections.abc import Sequence

from inboxrl.checks.episodes import correct
from inboxrl.checks.report import DetectorResult, result
from inboxrl.scoring.reward import RewardConfig, tier
from inboxrl.trajectory import Rubric, Trajectory

# A rise of the mean reward smaller than this is noise (one episode of 20 moving from "wrong" to "I don't know").
MIN_RISE = 0.05
# An extra-credit term "carries" the rise when its own mean rises by at least this share of the reward's rise.
TERM_SHARE = 0.5
EXTRA_CREDIT = ("sources_bonus", "turns_bonus", "found_source_credit", "read_source_credit")


def reward_terms(r: Rubric, cfg: RewardConfig) -> dict[str, float]:
    """The reward of one episode split into its terms, before the clip into the tier's band."""
    t = tier(r)
    base = {"format_error": cfg.format_error_base, "wrong": cfg.wrong_base,
            "no_answer": cfg.no_answer_base, "correct": cfg.correct_base}[t]
    terms = {"tier": base, "sources_bonus": 0.0, "turns_bonus": 0.0, "found_source_credit": 0.0,
             "read_source_credit": 0.0}
    if t == "correct":
        terms["sources_bonus"] = cfg.sources_bonus * r.sources_correct
        terms["turns_bonus"] = cfg.turns_bonus * min(1.0, max(0.0, 1.0 - (r.num_turns - 1) / max(r.max_turns, 1)))
    else:
        terms["found_source_credit"] = cfg.found_source_credit * r.found_source_in_search
        terms["read_source_credit"] = cfg.read_source_credit * r.read_source
    terms["penalties"] = -(cfg.format_error_penalty * r.total_format_errors
                           + cfg.invalid_read_penalty * r.invalid_read_attempts
                           + cfg.refused_answer_penalty * r.refused_answers
                           + cfg.out_of_turns_penalty * r.ran_out_of_turns)
    return terms


def _means(trajs: Sequence[Trajectory], cfg: RewardConfig) -> tuple[float, float, dict[str, float]] | None:
    scored = [t for t in trajs if t.rubric is not None and t.reward is not None]
    if not scored:
        return None
    n = len(scored)
    terms: dict[str, float] = {}
    for t in scored:
        assert t.rubric is not None
        for k, v in reward_terms(t.rubric, cfg).items():
            terms[k] = terms.get(k, 0.0) + v / n
    return sum(t.reward or 0.0 for t in scored) / n, sum(correct(t) for t in scored) / n, terms


def detect(trajs: Sequence[Trajectory], ids: Sequence[str], history: Sequence[Sequence[Trajectory]] | None,
           reward_cfg: RewardConfig | None = None) -> DetectorResult:
    if not history:
        return result([], "no earlier validation to compare with (training runs only)")
    cfg = reward_cfg or RewardConfig()
    base, now = _means(history[0], cfg), _means(trajs, cfg)
    if base is None or now is None:
        return result([], "no scored episodes to compare")
    (r0, a0, terms0), (r1, a1, terms1) = base, now
    rise = r1 - r0
    deltas = {k: terms1.get(k, 0.0) - terms0.get(k, 0.0) for k in terms1}
    top = max(deltas, key=lambda k: deltas[k])
    detail = (f"mean reward {r0:+.3f} -> {r1:+.3f}, accuracy {a0:.0%} -> {a1:.0%} against the first validation; "
              f"largest rise: {top} {deltas[top]:+.3f}")
    reasons = []
    if rise >= MIN_RISE and a1 <= a0:
        reasons.append("the reward rose and accuracy did not")
    carried = [k for k in EXTRA_CREDIT if rise >= MIN_RISE and deltas.get(k, 0.0) >= TERM_SHARE * rise]
    if carried:
        reasons.append(f"the rise came through {carried[0]}")
    if not reasons:
        return result([], detail)
    # The episodes whose reward rose over their own question's first episode without becoming right; every episode
    # when no question is in both sets.
    first: dict[str, Trajectory] = {}
    for t in history[0]:
        first.setdefault(t.question_id, t)
    paired = [eid for t, eid in zip(trajs, ids) if t.question_id in first]
    flagged = [eid for t, eid in zip(trajs, ids) if t.question_id in first and t.reward is not None
               and first[t.question_id].reward is not None
               and t.reward > (first[t.question_id].reward or 0.0) + 1e-6
               and not (correct(t) and not correct(first[t.question_id]))]
    return result(flagged if paired else list(ids), f"{'; '.join(reasons)}: {detail}")
