"""The viewer without a browser: the index, detector flags, filters, paging, the token, labels, `inboxrl show`.

Over the committed real runs in tests/data/viewer (see its README), through the app's HTTP interface.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from inboxrl.cli import app as cli_app
from inboxrl.trajectory import read_jsonl, write_jsonl
from inboxrl.viewer.app import create_app
from inboxrl.viewer.index import FileIndex, outcome
from viewer_helpers import GUIDED, SMOL, hostile_trajectory


def _lines(p: Path) -> list[dict]:
    return [json.loads(x) for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_index_offsets_load_the_same_trajectory_as_reading_the_file() -> None:
    idx = FileIndex.build(GUIDED / "trajectories.jsonl")
    whole = list(read_jsonl(GUIDED / "trajectories.jsonl"))
    assert len(idx.refs) == len(whole) >= 2
    for ref, t in zip(idx.refs, whole):
        assert idx.load(ref) == t
        assert ref.outcome == outcome(json.loads(t.model_dump_json()))


def test_torn_line_is_counted_and_the_rest_shown(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(GUIDED, run)
    with (run / "trajectories.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"question_id": "torn", "quest')
    c = TestClient(create_app([run]))
    page = c.get("/").text
    assert "1 unreadable line(s) skipped" in page
    assert c.get("/questions").text.count("/episode/0/") == len(_lines(GUIDED / "trajectories.jsonl"))


def test_filters_search_and_paging_over_many_questions(tmp_path: Path) -> None:
    base = next(iter(read_jsonl(GUIDED / "trajectories.jsonl")))
    many = []
    for i in range(120):
        t = base.model_copy(deep=True)
        t.question_id = f"q{i:03d}"
        t.question = f"question number {i}"
        assert t.rubric is not None
        t.rubric.attempted_answer, t.rubric.answer_correct, t.rubric.said_dont_know = i % 3 != 2, i % 3 == 0, i % 3 == 2
        many.append(t)
    write_jsonl(tmp_path / "run" / "trajectories.jsonl", many, append=False)
    c = TestClient(create_app([tmp_path / "run"]))
    assert "120 question(s) · page 1 of 3" in c.get("/questions").text
    assert "40 question(s)" in c.get("/questions", params={"show": "right"}).text
    assert "40 question(s)" in c.get("/questions", params={"show": "idk"}).text
    r = c.get("/questions", params={"q": "NUMBER 11"})  # q011 and q110..q119
    assert "11 question(s)" in r.text
    last = c.get("/questions", params={"page_no": 3}).text
    assert "q119" in last and "q000" not in last and "next →" not in last


def test_detector_flags_shown_when_present(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(GUIDED, run)
    doc = json.loads((run / "metrics.json").read_text())
    first = _lines(run / "trajectories.jsonl")[0]["question_id"]
    model = next(iter(doc["models"]))
    doc["models"][model]["checks"] = {"n_episodes": 3, "detectors": {
        "shotgun": {"count": 1, "flagged": [first], "detail": "read every hit"},
        "divergence": {"count": 0, "flagged": [], "detail": ""}}}
    (run / "metrics.json").write_text(json.dumps(doc))
    c = TestClient(create_app([run]))
    runs_page = c.get("/").text
    assert "<th>shotgun</th>" in runs_page and "<th>divergence</th>" in runs_page
    flagged = c.get("/questions", params={"show": "flagged"}).text
    assert "1 question(s)" in flagged and first in flagged and "⚑shotgun" in flagged
    # ...and a run without them works and shows none
    plain = TestClient(create_app([GUIDED])).get("/").text
    assert "shotgun" not in plain


def test_compare_two_runs_lists_changed_outcomes() -> None:
    c = TestClient(create_app([GUIDED, SMOL]))
    a = {t["question_id"]: outcome(t) for t in _lines(GUIDED / "trajectories.jsonl")}
    b = {t["question_id"]: outcome(t) for t in _lines(SMOL / "trajectories.jsonl")}
    changed = sum(1 for q in a if q in b and a[q] != b[q])
    assert changed > 0  # the fixture's two runs differ (tests/data/viewer/README.md)
    r = c.get("/questions", params={"col": 0, "b": 1, "show": "changed"})
    assert f"{changed} question(s)" in r.text


def test_token_is_required_on_every_request_when_given() -> None:
    c = TestClient(create_app([GUIDED], token="s3cret"))
    assert c.get("/").status_code == 401
    assert c.get("/questions").status_code == 401
    assert c.get("/", params={"token": "wrong"}).status_code == 401
    r = c.get("/", params={"token": "s3cret"})
    assert r.status_code == 200
    assert c.get("/questions").status_code == 200  # the cookie set by the first request carries it
    assert TestClient(create_app([GUIDED], token="s3cret")).get(
        "/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_view_refuses_a_public_address_without_a_token() -> None:
    r = CliRunner().invoke(cli_app, ["view", str(GUIDED), "--host", "0.0.0.0"])
    assert r.exit_code == 2
    assert "--token" in r.output


def test_every_page_forbids_scripts_and_escapes(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "run" / "trajectories.jsonl", [hostile_trajectory()], append=False)
    c = TestClient(create_app([tmp_path / "run"]))
    for url in ("/", "/questions", "/episode/0/0", "/email/0/0?id=x"):
        r = c.get(url)
        assert r.status_code == 200
        assert "script-src 'none'" in r.headers["content-security-policy"]
        assert "<script" not in r.text.lower() and "<img" not in r.text.lower() and "<iframe" not in r.text
        assert 'href="javascript' not in r.text.lower()
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in c.get("/episode/0/0").text


def test_labels_outside_runs_and_readable_by_calibrate(tmp_path: Path) -> None:
    from inboxrl.judge.calibrate import load_calibration

    with pytest.raises(ValueError, match="inside the run"):
        create_app([GUIDED], labels=GUIDED / "labels.jsonl")
    sheet = tmp_path / "sheet.jsonl"
    c = TestClient(create_app([GUIDED, SMOL], labels=sheet))
    n = 0
    for lab in ("right", "wrong", "borderline"):
        page = c.get("/label").text
        if "name=\"pos\"" not in page:
            break
        pos = page.split('name="pos" value="')[1].split('"')[0]
        assert c.post("/label", data={"pos": pos, "label": lab}, follow_redirects=False).status_code == 303
        n += 1
    rows = load_calibration(sheet) if n else []
    assert len(rows) == n
    assert [(r.label, r.kind) for r in rows] == [(True, "blind"), (False, "blind"), (True, "partial")][:n]
    assert c.post("/label", data={"pos": 0, "label": "maybe"}).status_code == 400


def test_show_prints_the_episode_with_the_ask_trace() -> None:
    t = _lines(GUIDED / "trajectories.jsonl")[0]
    r = CliRunner().invoke(cli_app, ["show", str(GUIDED), "--question", t["question_id"]])
    assert r.exit_code == 0, r.output
    assert t["question"][:40] in " ".join(r.output.split())
    searches = [c for turn in t["turns"] for c in turn["tool_calls"] if c["name"] == "search_inbox"]
    if searches:
        assert "search" in r.output
    assert "judged" in r.output
    bad = CliRunner().invoke(cli_app, ["show", str(GUIDED), "--question", "nope"])
    assert bad.exit_code == 1 and "no episode" in bad.output


def _training_run(tmp_path: Path) -> Path:
    """A training run dir laid out as `inboxrl train` writes it, its episodes taken from the real eval run."""
    from inboxrl.training import runlog

    run = tmp_path / "train-run"
    trajs = list(read_jsonl(GUIDED / "trajectories.jsonl"))
    write_jsonl(run / "validation" / "step-000000.jsonl", trajs, append=False)
    later = [t.model_copy(deep=True) for t in trajs]
    assert later[0].rubric is not None
    later[0].rubric.attempted_answer, later[0].rubric.answer_correct = True, True
    write_jsonl(run / "validation" / "step-000004.jsonl", later, append=False)
    group = [trajs[0].model_copy(deep=True) for _ in range(4)]
    for k, t in enumerate(group):
        t.reward = -1.0 + k / 10
    write_jsonl(run / "rollouts" / "step-000001.jsonl", group, append=False)
    runlog.append(run, {"kind": "validation", "step": 0, "accuracy": 0.0, "n_scored": len(trajs)})
    runlog.append(run, {"kind": "train", "step": 1, "checks/shotgun": 2, "checks/answer_collapse": 0})
    runlog.append(run, {"kind": "validation", "step": 4, "accuracy": 1 / len(trajs), "n_scored": len(trajs),
                        "checks/shotgun": 1})
    return run


def test_training_run_curve_steps_and_grpo_group(tmp_path: Path) -> None:
    run = _training_run(tmp_path)
    before = sorted((p, p.stat().st_mtime_ns) for p in run.rglob("*"))
    c = TestClient(create_app([run]))
    page = c.get("/").text
    assert "<svg" in page and "validation accuracy over steps" in page
    assert "step 0" in page and "step 4" in page
    assert "<th>shotgun</th>" in page and "<th>answer_collapse</th>" in page  # detector counts over steps
    qid = next(iter(read_jsonl(GUIDED / "trajectories.jsonl"))).question_id
    changed = c.get("/questions", params={"col": 0, "b": 1, "show": "changed"}).text
    assert "1 question(s)" in changed and qid in changed
    only4 = c.get("/questions", params={"step": 4}).text
    assert "step 4" in only4 and "step 0</th>" not in only4
    assert "/rollouts/2" in page
    groups = c.get("/rollouts/2").text
    assert groups.count("/episode/2/") == 4
    ep = c.get("/episode/2/1").text
    assert "GRPO group: 4 rollouts" in ep and ep.count("rollout ") >= 4 and "-0.900" in ep
    assert sorted((p, p.stat().st_mtime_ns) for p in run.rglob("*")) == before
