"""Metrics math on hand-built trajectories: every rate over scored episodes, percentiles, per-model grouping."""

from __future__ import annotations

import json
import math

import pytest

from inboxrl.evaluation.metrics import json_safe, latest_per_pair, metrics, metrics_by_model, percentile
from inboxrl.evaluation.table import markdown_table
from inboxrl.trajectory import Rubric, Trajectory, TurnRecord


def traj(qid: str, rubric: Rubric | None, *, model: str = "m", turns: int = 2, wall: float = 1.0,
         tokens: tuple[int, int] = (100, 10), cost: float | None = 0.0, reward: float | None = 0.0,
         stop: str = "answered") -> Trajectory:
    return Trajectory(question_id=qid, question="?", inbox_address="a@b.c", query_date="2001-01-01", model=model,
                      turns=[TurnRecord(index=i) for i in range(turns)], wall_time_s=wall, prompt_tokens=tokens[0],
                      completion_tokens=tokens[1], cost_usd=cost, rubric=rubric, reward=reward,
                      stop_reason=stop)  # type: ignore[arg-type]


CORRECT = Rubric(answer_correct=True, attempted_answer=True, sources_correct=True, found_source_in_search=True,
                 read_source=True)
WRONG = Rubric(attempted_answer=True, format_errors={"unparseable": 1})
IDK = Rubric(said_dont_know=True, found_source_in_search=True)
OOT = Rubric(ran_out_of_turns=True, format_errors={"repeated_call": 2, "bad_arguments": 1})


def test_rates_are_over_all_scored_episodes():
    ts = [traj("1", CORRECT, turns=2, wall=1.0, cost=0.002, reward=1.5),
          traj("2", WRONG, turns=3, wall=2.0, cost=0.001, reward=-0.8),
          traj("3", IDK, turns=4, wall=3.0, reward=0.4),
          traj("4", OOT, turns=10, wall=10.0, reward=0.1, stop="out_of_turns"),
          traj("5", None, turns=1, wall=4.0, reward=None)]  # not scored: left out of the rates
    m = metrics(ts)
    assert m["n"] == 5 and m["n_scored"] == 4
    assert m["accuracy"] == 0.25
    assert m["hallucination_rate"] == 0.25  # answered and wrong, over all scored (not over answered)
    assert m["dont_know_rate"] == 0.25
    assert m["out_of_turns_rate"] == 0.25
    assert m["format_error_rate"] == 0.5
    assert m["format_errors"] == {"bad_arguments": 1, "repeated_call": 2, "unparseable": 1}
    assert m["sources_correct_rate"] == 0.25
    assert m["found_source_rate"] == 0.5 and m["read_source_rate"] == 0.25
    assert m["avg_turns"] == pytest.approx((2 + 3 + 4 + 10 + 1) / 5)
    assert m["latency_p50_s"] == 3.0
    assert m["latency_p95_s"] == pytest.approx(4.0 + 0.8 * 6.0)  # between 4 s and 10 s, numpy's linear rule
    assert m["avg_tokens"] == 110
    assert m["cost_per_1000_usd"] == pytest.approx(0.6)  # (0.002 + 0.001) / 5 * 1000
    assert m["mean_reward"] == pytest.approx((1.5 - 0.8 + 0.4 + 0.1) / 4)
    assert m["stop_reasons"] == {"answered": 4, "out_of_turns": 1}


def test_percentile_matches_numpy_linear_rule():
    assert percentile([5.0], 95) == 5.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 0], 100) == 10
    assert math.isnan(percentile([], 50))


def test_unknown_price_makes_the_cost_unknown_not_zero():
    ts = [traj("1", CORRECT, cost=0.002), traj("2", WRONG, cost=None)]  # type: ignore[arg-type]
    m = metrics(ts)
    assert math.isnan(m["cost_per_1000_usd"])
    assert json.loads(json.dumps(json_safe(m)))["cost_per_1000_usd"] is None
    assert "unknown" in markdown_table({"gpt-x": m})


def test_empty_and_unscored_sets_give_nan_not_errors():
    m = metrics([traj("1", None)])
    assert m["n"] == 1 and m["n_scored"] == 0 and math.isnan(m["accuracy"])
    doc = json.loads(json.dumps(json_safe(m)))
    assert doc["accuracy"] is None
    assert math.isnan(metrics([])["latency_p50_s"])


def test_grouping_by_model_and_last_write_wins():
    ts = [traj("1", WRONG, model="a"), traj("1", CORRECT, model="b"), traj("1", CORRECT, model="a")]
    latest = latest_per_pair(ts)
    assert len(latest) == 2
    by = metrics_by_model(latest)
    assert list(by) == ["a", "b"]
    assert by["a"]["accuracy"] == 1.0 and by["a"]["n"] == 1


def test_markdown_table_has_one_row_per_model():
    by = metrics_by_model([traj("1", CORRECT, model="a"), traj("2", WRONG, model="b")])
    lines = markdown_table(by).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| a | 1 | 100.0% [100.0–100.0]")
    assert lines[3].startswith("| b | 1 | 0.0% [0.0–0.0] | 100.0% [100.0–100.0]")
