"""The reward: a pure function of the rubric, with weights in config.

Tiers, lowest first: format error < wrong answer < "I don't know" or out of turns < correct.
Each tier is a band `[base, base + band)`; partial credit and penalties move a reward only inside its band, and the
bands never overlap, so no amount of partial credit can lift an episode into the next tier. That is what keeps the
policy from trading correctness for, say, reading lots of emails.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from inboxrl.trajectory import Rubric


class RewardConfig(BaseModel):
    # Tier bases. A wrong answer costs more than "I don't know": we would rather the agent admit it than invent.
    format_error_base: float = -2.0
    wrong_base: float = -1.0
    no_answer_base: float = 0.0
    correct_base: float = 1.0
    # Width of each tier's band: all partial credit and penalties are clipped into [base, base + band).
    band: float = 0.9
    # Where an episode with no credit and no penalty sits inside its band, so penalties have room below it.
    neutral: float = 0.3
    # Inside the correct tier: citing the right sources, and answering in fewer turns (cheaper and faster).
    sources_bonus: float = 0.3
    turns_bonus: float = 0.3
    # Inside the lower tiers: small credit for the search steps that lead to an answer, so that early in training
    # a policy that finds and reads the source mail is preferred over one that does not.
    found_source_credit: float = 0.1
    read_source_credit: float = 0.1
    # Every format error the episode survived (retry mode) costs this much, inside its tier.
    format_error_penalty: float = 0.1
    invalid_read_penalty: float = 0.05

    @model_validator(mode="after")
    def _check_tiers(self) -> "RewardConfig":
        bases = [self.format_error_base, self.wrong_base, self.no_answer_base, self.correct_base]
        if any(b2 - b1 < self.band for b1, b2 in zip(bases, bases[1:])):
            raise ValueError("reward tiers must be ordered and at least `band` apart, or partial credit could "
                             "lift an episode into the next tier")
        if self.band <= 0 or not 0 <= self.neutral < self.band:
            raise ValueError("band must be positive and neutral must lie inside it")
        return self


def tier(r: Rubric) -> str:
    """The tier an episode falls in: format_error, wrong, no_answer or correct."""
    if r.ended_by_format_error:
        return "format_error"
    if r.attempted_answer and r.answer_correct:
        return "correct"
    if r.attempted_answer:
        return "wrong"
    return "no_answer"  # said "I don't know", or ran out of turns


def reward(r: Rubric, cfg: RewardConfig | None = None) -> float:
    cfg = cfg or RewardConfig()
    t = tier(r)
    base = {"format_error": cfg.format_error_base, "wrong": cfg.wrong_base,
            "no_answer": cfg.no_answer_base, "correct": cfg.correct_base}[t]
    bonus = 0.0
    if t == "correct":
        bonus += cfg.sources_bonus * (1.0 if r.sources_correct else 0.0)
        max_turns = max(r.max_turns, 1)
        bonus += cfg.turns_bonus * max(0.0, 1.0 - (r.num_turns - 1) / max_turns)
    else:
        bonus += cfg.found_source_credit * r.found_source_in_search + cfg.read_source_credit * r.read_source
    bonus -= cfg.format_error_penalty * r.total_format_errors + cfg.invalid_read_penalty * r.invalid_read_attempts
    # Clip strictly inside the band so that tiers never touch.
    return base + min(max(cfg.neutral + bonus, 0.0), cfg.band - 1e-6)
