"""The reward: a pure function of the rubric, with weights in config.

Tiers, lowest first: format error < wrong answer < "I don't know" or out of turns < correct.
Each tier is a band `[base, base + band)`; partial credit and penalties move a reward only inside its band, and the
bands never overlap, so no amount of partial credit can lift an episode into the next tier. That is what keeps the
policy from trading correctness for, say, reading lots of emails.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from inboxrl.configfile import read_config_file
from inboxrl.trajectory import Rubric


class RewardConfig(BaseModel):
    """Weights of the reward; docs/reward.md explains each one. Unknown keys are errors (a typo must not silently
    leave a default in place)."""

    model_config = ConfigDict(extra="forbid")

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
    sources_bonus: float = Field(0.3, ge=0.0)
    turns_bonus: float = Field(0.3, ge=0.0)
    # Inside the lower tiers: small credit for the search steps that lead to an answer, so that early in training
    # a policy that finds and reads the source mail is preferred over one that does not.
    found_source_credit: float = Field(0.1, ge=0.0)
    read_source_credit: float = Field(0.1, ge=0.0)
    # Every format error the episode survived (retry mode) costs this much, inside its tier.
    format_error_penalty: float = Field(0.1, ge=0.0)
    invalid_read_penalty: float = Field(0.05, ge=0.0)
    # An answer refused because nothing was searched yet, and running out of turns, cost a little inside the
    # no-answer tier, so stalling until the turns run out never pays like an honest "I don't know"
    # (a policy learned that hack; docs/history/code-notes.md).
    refused_answer_penalty: float = Field(0.1, ge=0.0)
    out_of_turns_penalty: float = Field(0.1, ge=0.0)

    @model_validator(mode="after")
    def _check_tiers(self) -> RewardConfig:
        if self.band <= 0 or not 0 <= self.neutral < self.band:
            raise ValueError(f"band must be positive and neutral must lie inside [0, band); got band={self.band}, "
                             f"neutral={self.neutral}")
        names = ["format_error_base", "wrong_base", "no_answer_base", "correct_base"]
        bases = [getattr(self, n) for n in names]
        for (n1, b1), (n2, b2) in zip(zip(names, bases), zip(names[1:], bases[1:])):
            if b2 - b1 < self.band - 1e-9:  # tolerance for float rounding; reward() keeps 1e-6 clear
                raise ValueError(f"reward tiers must be ordered and at least band={self.band} apart, or partial "
                                 f"credit could lift an episode into the next tier: {n2}={b2} is only {b2 - b1:g} "
                                 f"above {n1}={b1}")
        return self

    @classmethod
    def load(cls, path: str | Path) -> RewardConfig:
        """Reads YAML, TOML or JSON; a `reward:` table/section is used when present. A file that cannot be read or
        parsed is a ConfigFileError; bad weights stay a pydantic ValidationError, whose text says which tier rule
        they break (both are ValueErrors)."""
        return cls.model_validate(read_config_file(path, section="reward"))


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
    """The reward of one episode: its tier's base plus in-band credit, clipped strictly inside the band."""
    cfg = cfg or RewardConfig()
    t = tier(r)
    base = {"format_error": cfg.format_error_base, "wrong": cfg.wrong_base,
            "no_answer": cfg.no_answer_base, "correct": cfg.correct_base}[t]
    bonus = 0.0
    if t == "correct":
        bonus += cfg.sources_bonus * (1.0 if r.sources_correct else 0.0)
        max_turns = max(r.max_turns, 1)
        # 1 turn earns the whole bonus, max_turns almost none; linear in between.
        bonus += cfg.turns_bonus * min(1.0, max(0.0, 1.0 - (r.num_turns - 1) / max_turns))
    else:
        bonus += cfg.found_source_credit * r.found_source_in_search + cfg.read_source_credit * r.read_source
    bonus -= cfg.format_error_penalty * r.total_format_errors + cfg.invalid_read_penalty * r.invalid_read_attempts
    bonus -= cfg.refused_answer_penalty * r.refused_answers + cfg.out_of_turns_penalty * r.ran_out_of_turns
    # Clip strictly inside the band so that tiers never touch.
    return base + min(max(cfg.neutral + bonus, 0.0), cfg.band - 1e-6)
