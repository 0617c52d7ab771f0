"""`inboxrl judge calibrate` on the shipped labelled file, and the file itself."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from inboxrl.cli import app
from inboxrl.judge.calibrate import calibrate, load_calibration, shipped_path
from inboxrl.judge.lexical import LexicalJudge

runner = CliRunner()


def test_shipped_calibration_file_is_big_balanced_and_built_from_the_shared_questions(questions_path: Path) -> None:
    rows = load_calibration()
    assert shipped_path().is_file() and len(rows) >= 100
    labels = Counter(r.label for r in rows)
    assert 0.4 <= labels[True] / len(rows) <= 0.6
    kinds = Counter(r.kind for r in rows)
    for k in ("exact", "paraphrase", "partial", "wrong_number", "wrong_date", "wrong_entity", "dont_know",
              "extra_detail", "contradiction"):
        assert kinds[k] >= 1, k
    assert all(not r.label for r in rows if r.kind in ("dont_know", "wrong_number", "wrong_date", "partial"))
    shared = {str(q["id"]): q for q in map(json.loads, questions_path.open(encoding="utf-8"))}
    for r in rows:
        q = shared[r.question_id or ""]
        assert (q["question"], q["answer"]) == (r.question, r.golden_answer)
    assert len({(r.question_id, r.candidate) for r in rows}) == len(rows)


def test_calibrate_cli_json_reports_rates_and_confusion() -> None:
    res = runner.invoke(app, ["judge", "calibrate", "--judge", "lexical", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    n = len(load_calibration())
    assert d["judge"] == "lexical" and d["n"] == n
    c = d["confusion"]
    assert sum(c.values()) == n
    assert d["agreement"] == round((c["true_accept"] + c["true_reject"]) / n, 4)
    assert d["false_accept_rate"] == round(c["false_accept"] / (c["false_accept"] + c["true_reject"]), 4)
    assert d["false_reject_rate"] == round(c["false_reject"] / (c["true_accept"] + c["false_reject"]), 4)
    assert d["labelled_right"] + d["labelled_wrong"] == n
    assert sum(k["n"] for k in d["per_kind"].values()) == n
    assert "errors" not in d
    # What docs/reward.md claims for the lexical judge on this file, with the gaming rules: 95.0% agreement,
    # 2.4% false accepts, 7.8% false rejects (94.3% before them); a judge change updates both together.
    assert c == {"true_accept": 71, "false_accept": 2, "true_reject": 80, "false_reject": 6}
    assert (d["agreement"], d["false_accept_rate"], d["false_reject_rate"]) == (0.9497, 0.0244, 0.0779)


def test_calibrate_cli_show_errors_lists_every_disagreement(tmp_path: Path) -> None:
    res = runner.invoke(app, ["judge", "calibrate", "--json", "--show-errors"])
    d = json.loads(res.stdout)
    assert len(d["errors"]) == d["confusion"]["false_accept"] + d["confusion"]["false_reject"]
    assert all(e["label"] != e["judge_accept"] and e["reason"] for e in d["errors"])
    table = runner.invoke(app, ["judge", "calibrate", "--show-errors", "--limit", "20"])
    assert table.exit_code == 0 and "agreement" in table.stdout and "confusion" in table.stdout


def test_calibrate_cli_bad_inputs_fail_with_one_line(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["judge", "calibrate", "--file", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "calibration file not found" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "golden_answer": "a", "candidate": "a", "label": true}\n{"question": 1}\n')
    res = runner.invoke(app, ["judge", "calibrate", "--file", str(bad)])
    assert res.exit_code == 2 and "bad.jsonl:2" in res.output and "Traceback" not in res.output
    spec = runner.invoke(app, ["judge", "calibrate", "--judge", "local/no-such-model-here"])
    assert spec.exit_code == 2 and "unknown local model" in spec.output


def test_calibrate_function_counts_match_a_hand_check() -> None:
    rows = load_calibration()[:6]
    rep = calibrate(LexicalJudge(), rows)
    verdicts = [LexicalJudge().judge(r.question, r.golden_answer, r.candidate).accept for r in rows]
    assert rep.true_accept == sum(v and r.label for v, r in zip(verdicts, rows))
    assert rep.true_reject == sum((not v) and (not r.label) for v, r in zip(verdicts, rows))


def test_calibrate_cli_several_sheets_side_by_side() -> None:
    """A sheet of gaming answers reports its false-accept rate next to the blind-labelled sheets."""
    root = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
    files = [root / "cpu-demo-blind-labels.jsonl", root / "judge-gaming-eval.jsonl"]
    res = runner.invoke(app, ["judge", "calibrate", "--json", *(a for f in files for a in ("--file", str(f)))])
    assert res.exit_code == 0, res.output
    reports = json.loads(res.stdout)["reports"]
    assert [r["file"] for r in reports] == [str(f) for f in files]
    assert [r["n"] for r in reports] == [len(load_calibration(f)) for f in files]
    gaming = reports[1]
    assert gaming["false_accept_rate"] == 0.0 and gaming["labelled_wrong"] >= 200
    table = runner.invoke(app, ["judge", "calibrate", *(a for f in files for a in ("-f", str(f)))])
    assert table.exit_code == 0 and "judge by sheet" in table.stdout and "false-accept" in table.stdout
