"""`inboxrl eval` as a user runs it: a real SmolLM2 run on real questions with the lexical judge (table, files,
resume), and a real OpenAI-compatible client pointed at a dead port (one red line, finished work kept)."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.cli import app
from inboxrl.evaluation.run import METRICS, TRAJECTORIES, evaluate
from inboxrl.judge.registry import load_judge
from inboxrl.models.hardware import local_dtype_name
from inboxrl.questions.schema import load_questions
from inboxrl.trajectory import read_jsonl


def dead_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.slow
def test_eval_cli_smollm2_writes_table_and_resumes(enron_store, questions_path, tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("agent:\n  max_tokens_per_turn: 24\n")  # plumbing, not skill: keep the model's turns short
    args = ["eval", "--config", str(cfg), "--db", str(enron_store), "--questions", str(questions_path), "--model", "local/smollm2-135m",
            "--judge", "lexical", "--limit", "2", "--max-turns", "1", "--concurrency", "2", "--out", str(out),
            "--set", "agent.tools.body_char_limit=2500", "--set", "tools.default_max_results=3"]
    first = CliRunner(env={"COLUMNS": "200"}).invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "local/smollm2-135m" in first.output and "accuracy" in first.output
    assert "grounded" in first.output
    lines = (out / TRAJECTORIES).read_text().splitlines()
    assert len(lines) == 2
    doc = json.loads((out / METRICS).read_text())
    m = doc["models"]["local/smollm2-135m"]
    assert m["n"] == 2 and m["n_scored"] == 2 and m["avg_turns"] == 1.0
    assert doc["questions"]["n"] == 2 and doc["judge"] == "lexical"
    # the file's setting and both overrides (with and without the `agent.` prefix) are what ran, and are recorded
    assert doc["agent_config"]["max_tokens_per_turn"] == 24
    tools = doc["agent_config"]["tools"]  # every tools setting is recorded, defaults included
    assert (tools["body_char_limit"], tools["default_max_results"]) == (2500, 3)
    assert doc["precision"]["local_dtype"] == local_dtype_name() and "bf16" in doc["precision"]["cpu"]

    again = CliRunner().invoke(app, args + ["--json"])
    assert again.exit_code == 0, again.output
    assert (out / TRAJECTORIES).read_text().splitlines() == lines  # nothing re-run, nothing appended
    assert json.loads(again.stdout)["models"]["local/smollm2-135m"]["n"] == 2


def test_eval_cli_dead_endpoint_is_one_line_and_keeps_earlier_work(enron_store, questions_path, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    qs = load_questions(questions_path, limit=2)
    # An earlier run of the same model finished one question (a SCRIPTED stand-in for that run's output).
    idk = '{"name": "return_final_answer", "arguments": {"answer": "I don\'t know", "sources": []}}'
    earlier = ScriptedBackend(default=[idk], name="gpt-4o-mini")
    evaluate(qs[:1], ["gpt-4o-mini"], enron_store, load_judge("lexical"), AgentConfig(), tmp_path,
             backend_factory=lambda spec: earlier)
    before = (tmp_path / TRAJECTORIES).read_text()

    url = f"http://127.0.0.1:{dead_port()}/v1"
    res = CliRunner().invoke(app, ["eval", "--db", str(enron_store), "--questions", str(questions_path),
                                   "--model", "gpt-4o-mini", "--base-url", url, "--judge", "lexical", "--limit", "2",
                                   "--max-retries", "0", "--out", str(tmp_path)])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    err_lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(err_lines) == 1 and "cannot reach" in err_lines[0] and "127.0.0.1" in err_lines[0]
    assert "re-run to resume" in err_lines[0]
    assert (tmp_path / TRAJECTORIES).read_text() == before
    assert [t.question_id for t in read_jsonl(tmp_path / TRAJECTORIES)] == [qs[0].id]


def test_eval_cli_rejects_bad_inputs(enron_store, tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "question": "?"}\n')
    res = runner.invoke(app, ["eval", "--db", str(enron_store), "--questions", str(bad), "--model", "x",
                              "--judge", "lexical", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "bad.jsonl:1" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["eval", "--db", str(tmp_path / "nope.db"), "--questions", str(bad), "--model", "x",
                              "--judge", "lexical", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no mail store" in res.output


def test_eval_cli_bad_override_is_one_line_before_any_model_loads(enron_store, questions_path, tmp_path):
    runner = CliRunner()
    base = ["eval", "--db", str(enron_store), "--questions", str(questions_path), "--model", "local/no-such-model",
            "--judge", "lexical", "--out", str(tmp_path / "o")]
    for item, says in (("tools.body_char_lmit=3000", "tools.body_char_lmit: unknown setting"),
                       ("max_turns=0", "max_turns: Input should be greater than or equal to 1"),
                       ("max_turns", "expected KEY=VALUE"),
                       ("max_turns.x=1", "max_turns: Input should be a valid integer")):
        res = runner.invoke(app, base + ["--set", item])
        assert res.exit_code == 2, (item, res.output)
        assert "Traceback" not in res.output and says in res.output, (item, res.output)
        assert not (tmp_path / "o").exists()
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("agent:\n  max_turns: 5\n")
    res = runner.invoke(app, base + ["--config", str(cfg), "--set", "max_turns.x=1"])
    assert res.exit_code == 2 and "max_turns is a setting, not a section" in res.output, res.output
