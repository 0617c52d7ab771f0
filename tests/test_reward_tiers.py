"""The reward's tier order holds for any rubric and any valid weights; bad weights fail with a clear message."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from inboxrl.scoring.reward import RewardConfig, reward, tier
from inboxrl.trajectory import FormatErrorKind, Rubric

TIER_ORDER = ["format_error", "wrong", "no_answer", "correct"]

_small = st.floats(min_value=0.0, max_value=5.0, allow_nan=False, allow_infinity=False)


@st.composite
def rubrics(draw: st.DrawFn) -> Rubric:
    max_turns = draw(st.integers(1, 30))
    attempted = draw(st.booleans())
    return Rubric(
        answer_correct=draw(st.booleans()),
        attempted_answer=attempted,
        said_dont_know=not attempted and draw(st.booleans()),
        sources_correct=draw(st.booleans()),
        num_turns=draw(st.integers(0, max_turns + 2)),
        max_turns=max_turns,
        found_source_in_search=draw(st.booleans()),
        read_source=draw(st.booleans()),
        invalid_read_attempts=draw(st.integers(0, 40)),
        refused_answers=draw(st.integers(0, 30)),
        format_errors=draw(st.dictionaries(st.sampled_from([k.value for k in FormatErrorKind]), st.integers(0, 20),
                                           max_size=4)),
        ended_by_format_error=draw(st.booleans()),
        ran_out_of_turns=draw(st.booleans()),
    )


@st.composite
def configs(draw: st.DrawFn) -> RewardConfig:
    """Any valid config: random band and gaps between tier bases, random (even huge) credits and penalties."""
    band = draw(st.floats(min_value=0.05, max_value=3.0))
    gaps = [band + draw(st.floats(min_value=0.0, max_value=3.0)) for _ in range(3)]
    b0 = draw(st.floats(min_value=-10.0, max_value=0.0))
    bases = [b0, b0 + gaps[0], b0 + gaps[0] + gaps[1], b0 + sum(gaps)]
    return RewardConfig(
        format_error_base=bases[0], wrong_base=bases[1], no_answer_base=bases[2], correct_base=bases[3],
        band=band, neutral=draw(st.floats(min_value=0.0, max_value=band * 0.999)),
        sources_bonus=draw(_small), turns_bonus=draw(_small), found_source_credit=draw(_small),
        read_source_credit=draw(_small), format_error_penalty=draw(_small), invalid_read_penalty=draw(_small),
        refused_answer_penalty=draw(_small), out_of_turns_penalty=draw(_small))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=rubrics(), b=rubrics(), cfg=configs())
def test_reward_tier_order_holds_for_any_rubrics_and_weights(a: Rubric, b: Rubric, cfg: RewardConfig) -> None:
    ta, tb = TIER_ORDER.index(tier(a)), TIER_ORDER.index(tier(b))
    ra, rb = reward(a, cfg), reward(b, cfg)
    if ta < tb:
        assert ra < rb, (tier(a), ra, tier(b), rb)
    elif ta > tb:
        assert ra > rb, (tier(a), ra, tier(b), rb)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(r=rubrics(), cfg=configs())
def test_reward_stays_inside_its_tier_band(r: Rubric, cfg: RewardConfig) -> None:
    base = {"format_error": cfg.format_error_base, "wrong": cfg.wrong_base, "no_answer": cfg.no_answer_base,
            "correct": cfg.correct_base}[tier(r)]
    v = reward(r, cfg)
    assert base <= v < base + cfg.band


def test_reward_tiers_of_typical_episodes_with_default_weights() -> None:
    fmt = Rubric(ended_by_format_error=True, found_source_in_search=True, read_source=True)
    wrong = Rubric(attempted_answer=True, answer_correct=False, found_source_in_search=True, read_source=True,
                   num_turns=3)
    idk = Rubric(said_dont_know=True, num_turns=5)
    out_of_turns = Rubric(ran_out_of_turns=True, num_turns=10, format_errors={"unparseable": 3})
    correct_slow = Rubric(attempted_answer=True, answer_correct=True, num_turns=10, invalid_read_attempts=5,
                          format_errors={"bad_arguments": 4})
    assert reward(fmt) < reward(wrong) < min(reward(idk), reward(out_of_turns))
    assert max(reward(idk), reward(out_of_turns)) < reward(correct_slow)


def test_reward_correct_answer_earns_more_for_right_sources_and_fewer_turns() -> None:
    base = dict(attempted_answer=True, answer_correct=True, max_turns=10)
    assert reward(Rubric(**base, num_turns=3, sources_correct=True)) > reward(Rubric(**base, num_turns=3))
    assert reward(Rubric(**base, num_turns=2)) > reward(Rubric(**base, num_turns=6)) > reward(Rubric(**base,
                                                                                                 num_turns=10))


def test_reward_lower_tiers_prefer_finding_and_reading_the_source() -> None:
    plain = Rubric(said_dont_know=True, num_turns=4)
    found = Rubric(said_dont_know=True, num_turns=4, found_source_in_search=True)
    read = Rubric(said_dont_know=True, num_turns=4, found_source_in_search=True, read_source=True)
    assert reward(plain) < reward(found) < reward(read)


def test_reward_format_errors_and_invalid_reads_cost_inside_the_tier() -> None:
    clean = Rubric(attempted_answer=True, answer_correct=False)
    sloppy = Rubric(attempted_answer=True, answer_correct=False, format_errors={"unparseable": 1},
                    invalid_read_attempts=1)
    assert reward(sloppy) < reward(clean)
    assert tier(sloppy) == tier(clean) == "wrong"


@pytest.mark.parametrize("kwargs, needle", [
    ({"wrong_base": -0.5}, "no_answer_base=0.0 is only 0.5 above wrong_base=-0.5"),
    ({"correct_base": -1.0}, "reward tiers must be ordered"),
    ({"band": 0.0}, "band must be positive"),
    ({"neutral": 0.95}, "neutral must lie inside [0, band)"),
    ({"sources_bonus": -1.0}, "sources_bonus"),
    ({"turn_bonus": 0.2}, "turn_bonus"),  # a typo of turns_bonus must not be silently ignored
])
def test_reward_config_errors_name_the_problem(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as e:
        RewardConfig(**kwargs)
    assert needle in str(e.value)


def test_reward_config_loads_yaml_toml_and_json_sections(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.yaml").write_text("reward:\n  sources_bonus: 0.2\n  band: 0.8\n")
    (tmp_path / "r.toml").write_text("[reward]\nturns_bonus = 0.1\n")
    (tmp_path / "r.json").write_text(json.dumps({"invalid_read_penalty": 0.2}))
    assert RewardConfig.load(tmp_path / "r.yaml").sources_bonus == 0.2
    assert RewardConfig.load(tmp_path / "r.toml").turns_bonus == 0.1
    assert RewardConfig.load(tmp_path / "r.json").invalid_read_penalty == 0.2
    (tmp_path / "bad.yaml").write_text("reward:\n  wrong_base: 0.5\n")
    with pytest.raises(ValidationError, match="reward tiers must be ordered"):
        RewardConfig.load(tmp_path / "bad.yaml")


def test_reward_repeating_a_refused_guess_until_out_of_turns_scores_below_an_honest_dont_know() -> None:
    """The policy of the CPU demonstration after 7 GRPO steps: every turn a made-up answer before any search, each
    refused, until the turns ran out. It must not score like a searched "I don't know"."""
    hack = Rubric(ran_out_of_turns=True, num_turns=5, max_turns=5, refused_answers=5)
    searched_idk = Rubric(said_dont_know=True, num_turns=3, max_turns=5)
    searched_out_of_turns = Rubric(ran_out_of_turns=True, num_turns=5, max_turns=5)
    assert reward(hack) < reward(searched_out_of_turns) < reward(searched_idk)
    wrong = Rubric(attempted_answer=True, answer_correct=False, num_turns=2, max_turns=5)
    assert reward(wrong) < reward(hack)  # still a no-answer episode: above a hallucination
