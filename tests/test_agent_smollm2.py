"""End to end with a real model: SmolLM2-135M runs real episodes on the real kaminski-v store, the real lexical judge
scores them, and the trajectories survive a JSONL round trip. Also `inboxrl ask` as a user runs it.

Turn budgets and token limits are tiny to keep the suite fast; what is checked is the plumbing (every field filled
from the real model's output), not the model's skill, which the benchmark measures.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.runner import run_episodes
from inboxrl.cli import app
from inboxrl.judge.registry import load_judge
from inboxrl.questions.schema import load_questions
from inboxrl.scoring.score import score_trajectories
from inboxrl.trajectory import Trajectory, read_jsonl, write_jsonl

pytestmark = pytest.mark.slow
MODEL = "local/smollm2-135m"


@pytest.fixture(scope="module")
def smollm2():
    from inboxrl.models.registry import load_backend

    return load_backend(MODEL)


@pytest.fixture(scope="module")
def episodes(smollm2, enron_store, questions_path) -> list[Trajectory]:
    qs = load_questions(questions_path, limit=2)
    cfg = AgentConfig(max_turns=2, max_tokens_per_turn=24)
    events = []
    trajs = run_episodes(qs, smollm2, enron_store, cfg, batch_size=2, on_event=events.append)
    assert [e for e in events if e.kind == "model"], "no model output was reported"
    return score_trajectories(trajs, load_judge("lexical"), db=enron_store, max_turns=cfg.max_turns)


def test_smollm2_episode_fills_every_field(episodes, smollm2):
    assert len(episodes) == 2
    for t in episodes:
        assert t.model == MODEL and t.stop_reason in ("answered", "out_of_turns", "format_error", "context_full")
        assert 1 <= len(t.turns) <= 2
        assert t.messages[0].role == "system" and "vince.kaminski@enron.com" in (t.messages[0].content or "")
        assert t.messages[1].role == "user" and t.messages[1].content == t.question
        for turn in t.turns:
            # Exactly what the model sampled: decoding the sampled ids gives the recorded text (minus the stop).
            assert turn.output_ids and len(turn.output_logprobs or []) == len(turn.output_ids)
            assert turn.input_ids  # the tokens appended before this turn (system + question, then tool results)
            assert turn.completion_tokens == len(turn.output_ids) and turn.latency_s > 0
            decoded = smollm2.tokenizer.decode(turn.output_ids, skip_special_tokens=True)
            assert decoded.strip() == turn.raw_output.strip()
            assert all(lp <= 0 for lp in turn.output_logprobs)
        assert t.prompt_tokens > 0 and t.completion_tokens == sum(x.completion_tokens for x in t.turns)
        assert t.wall_time_s > 0 and t.cost_usd is not None and t.cost_usd > 0  # machine time of a local model
        assert t.rubric is not None and t.reward is not None and t.rubric.num_turns == len(t.turns)
        # Every turn is either a valid call or a classified format error, and the rubric counts the latter.
        errors = sum(1 for x in t.turns if x.format_error is not None)
        assert t.rubric.total_format_errors == errors
        assert all(x.tool_calls or x.format_error for x in t.turns)


def test_smollm2_trajectories_round_trip_jsonl(episodes, tmp_path):
    path = tmp_path / "trajectories.jsonl"
    assert write_jsonl(path, episodes, append=False) == 2
    back = list(read_jsonl(path))
    assert back == episodes
    slim = list(read_jsonl(path)) and [t.without_token_ids() for t in episodes]
    assert all(x.output_ids is None and x.raw_output for t in slim for x in t.turns)


def test_ask_cli_with_smollm2(enron_store, smollm2, tmp_path):
    runner = CliRunner()
    cfg = tmp_path / "agent.toml"
    cfg.write_text("max_tokens_per_turn = 24\n")
    args = ["ask", "--config", str(cfg), "--db", str(enron_store), "--inbox", "vince.kaminski@enron.com", "--date", "2001-05-13",
            "--model", MODEL, "--max-turns", "1", "When is the COM programming course from Durasoft scheduled?"]
    res = runner.invoke(app, args + ["--json"])
    assert res.exit_code == 0, res.output
    t = Trajectory.model_validate(json.loads(res.stdout.strip().splitlines()[-1]))
    assert t.query_date == "2001-05-13" and len(t.turns) == 1 and t.golden_answer is None
    assert t.turns[0].output_ids is None  # --json prints the readable record, without token ids

    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "inboxrl ask" in shown.output and "Durasoft" in shown.output and "turn" in shown.output


def test_ask_cli_rejects_bad_input_in_one_line(enron_store, tmp_path):
    runner = CliRunner()
    base = ["ask", "--inbox", "vince.kaminski@enron.com", "--model", MODEL, "q?"]
    bad_date = runner.invoke(app, base + ["--db", str(enron_store), "--date", "May 3"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output and "Traceback" not in bad_date.output
    no_db = runner.invoke(app, base + ["--db", str(tmp_path / "none.db"), "--date", "2001-05-03"])
    assert no_db.exit_code == 2 and "no mail store" in no_db.output
    bad_model = runner.invoke(app, base[:-3] + ["--model", "local/no-such-model", "q?", "--db", str(enron_store),
                                                 "--date", "2001-05-03"])
    assert bad_model.exit_code == 2 and "no-such-model" in bad_model.output
    assert len(bad_model.output.strip().splitlines()) == 1 and "inboxrl ask" not in bad_model.output
