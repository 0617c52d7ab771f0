"""`inboxrl questions generate` end to end: real store, the real small model, the files it writes, and how the
files load in `load_questions`, the evaluation and `datasets`."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.cli import app
from inboxrl.questions.output import dropped_path, sidecar_path, split_path
from inboxrl.questions.schema import load_questions
from questions_store import INBOX, SECOND_INBOX, questions_db  # noqa: F401  (fixture)

runner = CliRunner()


def _generate(db: str, out: Path, *extra: str) -> dict:
    res = runner.invoke(app, ["questions", "generate", "--db", db, "--inbox", INBOX, "--out", str(out), "--json",
                              *extra])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _check_funnel(summary: dict, out: Path) -> None:
    """Every stage adds up, and every dropped question or batch is in the drop log with its reason."""
    stages = {s["name"]: s for s in summary["stages"]}
    for s in stages.values():
        assert s["seen"] == s["kept"] + sum(s["dropped"].values()), s
    order = ["validation", "realism", "dedup", "support", "per_inbox"]
    for a, b in itertools.pairwise(order):
        assert stages[a]["kept"] == stages[b]["seen"]
    assert stages["per_inbox"]["kept"] == summary["questions"]
    logged: dict[str, int] = {}
    for line in dropped_path(out).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)["reason"]
        logged[r] = logged.get(r, 0) + 1
    expected: dict[str, int] = {}
    for name in ["generation", *order]:
        for reason, n in stages[name]["dropped"].items():
            if reason != "skipped_target_reached":  # batches never sent are not drops of model output
                expected[reason] = expected.get(reason, 0) + n
    assert logged == expected
    assert json.loads(sidecar_path(out).read_text())["stages"] == summary["stages"]


@pytest.mark.slow
def test_generate_end_to_end_with_smollm2(questions_db: str, tmp_path: Path) -> None:  # noqa: F811
    """The real 135M model writes mostly junk; the point is that it runs, counts every drop and writes valid files."""
    out = tmp_path / "smol.jsonl"
    args = ["--model", "local/smollm2-135m", "--batch-size", "2", "--max-batches", "1", "--email-chars", "200",
            "--max-tokens", "64", "--max-body-chars", "1500"]
    summary = _generate(questions_db, out, *args)
    gen = {s["name"]: s for s in summary["stages"]}["generation"]
    assert gen["seen"] == 1 and summary["timing"]["model_calls"] == 1
    assert summary["timing"]["completion_tokens"] > 0
    _check_funnel(summary, out)
    qs = load_questions(out)
    assert len(qs) == summary["questions"]
    for q in qs:
        assert q.inbox_address == INBOX and q.message_ids and q.answer.strip()

    again = _generate(questions_db, out, *args)  # the batch is cached: no model call the second time
    assert again["timing"]["model_calls"] == 0 and again["timing"]["cache_hits"] == 1
    strip = [{k: v for k, v in s.items() if k != "notes"} for s in summary["stages"]]
    assert [{k: v for k, v in s.items() if k != "notes"} for s in again["stages"]] == strip


def _script(req, i):
    """Plausible generator output citing the batch's first and last mail (and one bad id, to be dropped)."""
    import re

    text = req.messages[-1]["content"]
    subjects = re.findall(r"^Subject: (.*)$", text, re.MULTILINE)  # quoted mail has Subject lines too
    n = text.count("### Email ")
    return json.dumps({"questions": [
        {"question": f"What did I get about {subjects[0][:40]}?", "answer": "The details I asked for",
         "source_ids": [1], "how_realistic": 0.9},
        {"question": f"Who sent me {subjects[-1][:40]} in call {i}?", "answer": "Shirley",
         "source_ids": [n, 1], "how_realistic": 0.7},
        {"question": "Invented?", "answer": "yes", "source_ids": [n + 5], "how_realistic": 0.9},
    ]})


def test_generate_cli_split_files_load_everywhere_scripted_backend(
    questions_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    from inboxrl.models import registry

    monkeypatch.setattr(registry, "load_backend", lambda spec, **kw: ScriptedBackend(reply=_script, name=spec))
    out = tmp_path / "gen.jsonl"
    args = ["questions", "generate", "--db", questions_db, "--inbox", INBOX, "--inbox", SECOND_INBOX, "--model",
            "scripted-generator", "--out", str(out), "--batch-size", "5", "--max-batches", "3", "--split", "inbox",
            "--test-inbox", SECOND_INBOX, "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    _check_funnel(summary, out)
    assert {s["name"]: s for s in summary["stages"]}["validation"]["dropped"] == {"unknown_source_id": 6}
    assert summary["model"] == "scripted-generator" and summary["prompt_version"]

    qs = load_questions(out)
    assert len(qs) == summary["questions"] >= 6
    assert {q.inbox_address for q in qs} == {INBOX, SECOND_INBOX}
    raw = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(list(r) == ["id", "question", "answer", "message_ids", "how_realistic", "inbox_address",
                           "query_date"] for r in raw)

    train, test = load_questions(split_path(out, "train")), load_questions(split_path(out, "test"))
    assert {q.inbox_address for q in train} == {INBOX} and {q.inbox_address for q in test} == {SECOND_INBOX}
    assert len(train) + len(test) == len(qs)
    assert summary["splits"]["test"]["inboxes"] == [SECOND_INBOX]

    from inboxrl.evaluation.run import grounded_ids

    in_scope = grounded_ids(questions_db, qs, in_scope=True)
    assert in_scope is None or in_scope == {q.id for q in qs}  # every source is in the inbox, before the date

    from datasets import load_dataset

    ds = load_dataset("json", data_files={"train": str(split_path(out, "train")),
                                          "test": str(split_path(out, "test"))})
    assert ds["train"].num_rows == len(train) and ds["test"].num_rows == len(test)
    assert set(ds["train"].column_names) == {"id", "question", "answer", "message_ids", "how_realistic",
                                             "inbox_address", "query_date"}
    assert ds["train"][0]["message_ids"] == train[0].message_ids

    stats = runner.invoke(app, ["questions", "stats", str(out), "--json"])
    assert json.loads(stats.stdout)[str(out)]["questions_per_inbox"]["inboxes"] == 2

    def no_loading(spec, **kw):
        raise AssertionError("a fully cached re-run must not load the model")

    monkeypatch.setattr(registry, "load_backend", no_loading)
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["timing"]["cache_hits"] == 6
    assert load_questions(out) == qs


def test_generated_file_runs_through_evaluate_scripted_backend(
    questions_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """The evaluation reads our file as it reads ART-E's (its agent here is scripted to say "I don't know")."""
    from inboxrl.evaluation.run import evaluate
    from inboxrl.judge.registry import load_judge
    from inboxrl.models import registry

    monkeypatch.setattr(registry, "load_backend", lambda spec, **kw: ScriptedBackend(reply=_script, name=spec))
    out = tmp_path / "q.jsonl"
    _generate(questions_db, out, "--model", "scripted-generator", "--batch-size", "4", "--max-batches", "1")
    qs = load_questions(out)
    assert qs
    res = evaluate(qs, ["scripted-agent"], questions_db, load_judge("lexical"), out_dir=tmp_path / "eval",
                   backend_factory=lambda spec: ScriptedBackend(name=spec))
    assert res.written == len(qs)
    lines = (tmp_path / "eval" / "trajectories.jsonl").read_text().splitlines()
    assert {json.loads(x)["question_id"] for x in lines} == {q.id for q in qs}


def test_generate_cli_errors_are_one_line(questions_db: str, tmp_path: Path) -> None:  # noqa: F811
    out = str(tmp_path / "x.jsonl")
    cases = [
        (["--db", str(tmp_path / "none.db"), "--inbox", INBOX, "--model", "local/smollm2-135m"], 2, "not found"),
        (["--db", questions_db, "--inbox", "not-an-address", "--model", "local/smollm2-135m"], 2, "address"),
        (["--db", questions_db, "--inbox", INBOX, "--model", "local/no such model"], 1, "model spec"),
        (["--db", questions_db, "--inbox", INBOX, "--model", "local/smollm2-135m", "--split", "inbox"], 2,
         "two inboxes"),
        (["--db", questions_db, "--inbox", INBOX, "--model", "local/smollm2-135m", "--realism-threshold", "7"], 2,
         "realism_threshold"),
    ]
    for args, code, text in cases:
        res = runner.invoke(app, ["questions", "generate", *args, "--out", out])
        assert res.exit_code == code, (args, res.output)
        assert text in res.stderr and "Traceback" not in res.output
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not Path(out).exists()
