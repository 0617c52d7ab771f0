"""`inboxrl check` on eval and training run directories, and the checks `inboxrl eval` writes into metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from checks_helpers import clean_eval, with_answer
from inboxrl.checks import DETECTORS, run_checks
from inboxrl.cli import app
from inboxrl.trajectory import write_jsonl


def test_check_eval_and_training_run_dirs(tmp_path: Path) -> None:
    real = clean_eval()
    eval_dir = tmp_path / "eval"
    write_jsonl(eval_dir / "trajectories.jsonl", real)
    train_dir = tmp_path / "train"
    idk = [with_answer(t, "I don't know") for t in real]
    write_jsonl(train_dir / "validation" / "step-000000.jsonl", real)
    write_jsonl(train_dir / "validation" / "step-000010.jsonl", idk)

    res = CliRunner().invoke(app, ["check", str(eval_dir), str(train_dir), "--json"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert [json.loads(x) for x in lines] == [run_checks(real).model_dump(),
                                              run_checks(idk, previous=real, history=[real]).model_dump()]
    assert json.loads(lines[1])["detectors"]["abstention_collapse"]["count"] > 0

    table = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["check", str(train_dir)])
    assert table.exit_code == 0 and all(name in table.stdout for name in DETECTORS)
    assert f"{len(real)} episodes" in table.stdout


def test_check_without_trajectories_is_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["check", str(tmp_path)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "no trajectories.jsonl" in res.output


def test_eval_writes_the_checks_into_metrics_json(tmp_path: Path, enron_store: Path, questions_path: Path) -> None:
    """A SCRIPTED model (a real run of the eval harness on the real store with fixed replies) that searches once
    and then repeats the same search: the repeated-call detector must name both episodes in metrics.json."""
    from inboxrl.agent.config import AgentConfig
    from inboxrl.agent.scripted import ScriptedBackend
    from inboxrl.evaluation.run import METRICS, TRAJECTORIES, evaluate
    from inboxrl.judge.registry import load_judge
    from inboxrl.questions.schema import load_questions
    from inboxrl.trajectory import read_jsonl

    search = '{"name": "search_inbox", "arguments": {"keywords": ["meeting"]}}'
    backend = ScriptedBackend(default=[search, search], name="scripted")
    qs = load_questions(questions_path, limit=2)
    evaluate(qs, ["scripted"], enron_store, load_judge("lexical"), AgentConfig(max_turns=2), tmp_path,
             backend_factory=lambda spec: backend)
    doc = json.loads((tmp_path / METRICS).read_text())
    assert doc["checks"] == run_checks(list(read_jsonl(tmp_path / TRAJECTORIES))).model_dump()
    assert sorted(doc["checks"]["detectors"]["repeated_calls"]["flagged"]) == sorted(q.id for q in qs)
    # the harness refused the same calls as repeats: the detector and the harness agree on "identical"
    assert all(t.rubric and t.rubric.format_errors.get("repeated_call") for t in read_jsonl(tmp_path / TRAJECTORIES))
