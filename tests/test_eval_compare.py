"""`inboxrl compare` as a user runs it: on the committed real eval runs (tests/data/viewer), and on constructed
scored files (an eval directory with two models against a training run's validation step file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inboxrl.cli import app
from inboxrl.evaluation.compare import load_side
from inboxrl.trajectory import Rubric, Trajectory, write_jsonl

REAL = Path(__file__).resolve().parent / "data" / "viewer"  # real Qwen and SmolLM2 eval runs (see its README)
QWEN, SMOL = "local/qwen2.5-coder-0.5b", "local/smollm2-135m"

RIGHT = Rubric(answer_correct=True, attempted_answer=True)
WRONG = Rubric(attempted_answer=True)
IDK = Rubric(said_dont_know=True)


def run(*args: str) -> object:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, ["compare", *args])


def traj(qid: str, rubric: Rubric | None, model: str) -> Trajectory:
    return Trajectory(question_id=qid, question="?", inbox_address="a@b.c", query_date="2001-01-01", model=model,
                      rubric=rubric, reward=0.0 if rubric else None, stop_reason="answered")


@pytest.fixture
def before_after(tmp_path: Path) -> tuple[Path, Path]:
    """An eval dir (baseline plus another model; q10 retried by a resume) and a validation step file:
    10 of 40 paired questions go wrong -> right; q41 only before, `extra` only after, q40 unscored after."""
    b = [traj(f"q{i:02d}", RIGHT, "base") for i in range(10)]
    b += [traj("q10", RIGHT, "base")]  # an earlier try of q10: the later one (wrong) is the one that counts
    b += [traj(f"q{i:02d}", WRONG, "base") for i in range(10, 30)]
    b += [traj(f"q{i:02d}", IDK, "base") for i in range(30, 40)]
    b += [traj("q40", WRONG, "base"), traj("q41", WRONG, "base")]
    b += [traj(f"q{i:02d}", RIGHT, "other") for i in range(5)]
    a = [traj(f"q{i:02d}", RIGHT, "policy") for i in range(20)]
    a += [traj(f"q{i:02d}", WRONG, "policy") for i in range(20, 30)]
    a += [traj(f"q{i:02d}", IDK, "policy") for i in range(30, 40)]
    a += [traj("q40", None, "policy"), traj("extra", RIGHT, "policy")]
    write_jsonl(tmp_path / "eval" / "trajectories.jsonl", b)
    write_jsonl(tmp_path / "run" / "validation" / "step-000006.jsonl", a)
    return tmp_path / "eval", tmp_path / "run" / "validation" / "step-000006.jsonl"


def test_real_runs_text_and_json(tmp_path):
    res = run(str(REAL / "run-guided"), str(REAL / "run-smol"))
    assert res.exit_code == 0, res.output
    assert "paired on 3 questions" in res.output and QWEN in res.output and SMOL in res.output
    assert "changed (2): 44587 wrong→no_answer, 47140 wrong→no_answer" in res.output

    res = run(str(REAL / "run-guided"), str(REAL / "run-smol"), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["n_paired"] == 3 and doc["before"]["model"] == QWEN and doc["after"]["model"] == SMOL
    assert doc["transitions"]["wrong"]["no_answer"] == 2 and doc["transitions"]["no_answer"]["no_answer"] == 1
    assert sum(sum(row.values()) for row in doc["transitions"].values()) == 3
    # the same definitions as `inboxrl eval`: the before rates are the ones in the run's own metrics.json
    evald = json.loads((REAL / "run-guided" / "metrics.json").read_text())["models"][QWEN]
    for key in ("accuracy", "hallucination_rate", "dont_know_rate", "out_of_turns_rate", "format_error_rate"):
        assert doc["rates"][key]["before"] == pytest.approx(evald[key]), key
    assert doc["rates"]["out_of_turns_rate"]["diff"] == pytest.approx(2 / 3)


def test_a_run_against_itself_changes_nothing():
    res = run(str(REAL / "run-guided"), str(REAL / "run-guided" / "trajectories.jsonl"), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert all((r["diff"], r["diff_ci95_lo"], r["diff_ci95_hi"]) == (0, 0, 0) for r in doc["rates"].values())
    assert doc["changed"] == []


def test_several_models_need_a_choice_and_the_message_lists_them(before_after):
    before, after = before_after
    res = run(str(before), str(after))
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "2 models" in res.output
    assert "base" in res.output and "other" in res.output and "--model" in res.output
    res = run(str(before), str(after), "--before-model", "nope")
    assert res.exit_code == 2 and "no episodes of model 'nope'" in res.output and "base, other" in res.output


def test_constructed_flips_through_the_cli(before_after):
    before, after = before_after
    res = run(str(before), str(after), "--before-model", "base", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["n_paired"] == 40 and doc["before"]["repeated"] == 1
    assert doc["excluded"] == {"only_before": ["q41"], "only_after": ["extra"], "unscored": ["q40"]}
    acc, wrong, idk = (doc["rates"][k] for k in ("accuracy", "hallucination_rate", "dont_know_rate"))
    assert (acc["before"], acc["after"], acc["diff"]) == (0.25, 0.5, 0.25)
    assert 0 < acc["diff_ci95_lo"] < 0.25 < acc["diff_ci95_hi"]
    assert wrong["diff"] == -0.25 and wrong["diff_ci95_hi"] < 0
    assert (idk["diff"], idk["diff_ci95_lo"], idk["diff_ci95_hi"]) == (0, 0, 0)
    t = doc["transitions"]
    assert (t["wrong"]["right"], t["right"]["right"], t["wrong"]["wrong"], t["dont_know"]["dont_know"]) \
        == (10, 10, 10, 10)
    assert [c["question_id"] for c in doc["changed"]] == [f"q{i}" for i in range(10, 20)]
    assert doc["bootstrap"]["resamples"] == 10_000

    text = run(str(before), str(after), "--model", "base", "--after-model", "policy")
    assert text.exit_code == 0, text.output
    out = text.output
    assert "paired on 40 questions" in out and "1 repeated episodes" in out
    assert "1 only in before, excluded: q41" in out and "1 only in after, excluded: extra" in out
    assert "1 not scored on one side, excluded: q40" in out
    assert "+25.0" in out and "-25.0" in out and "changed (10): q10 wrong→right" in out


def test_seed_and_resamples_are_honoured(before_after):
    before, after = before_after
    one = json.loads(run(str(before), str(after), "-m", "base", "--after-model", "policy", "--json").stdout)
    again = json.loads(run(str(before), str(after), "-m", "base", "--after-model", "policy", "--json").stdout)
    assert one == again
    few = json.loads(run(str(before), str(after), "-m", "base", "--after-model", "policy", "--json",
                         "--resamples", "200", "--seed", "3").stdout)
    assert few["bootstrap"] == {"method": "paired percentile", "resamples": 200, "seed": 3}


def test_bad_paths_are_one_clear_line(tmp_path):
    res = run(str(tmp_path / "missing"), str(REAL / "run-smol"))
    assert res.exit_code == 2 and "no such file or directory" in res.output and "Traceback" not in res.output
    res = run(str(tmp_path), str(REAL / "run-smol"))
    assert res.exit_code == 2 and "without trajectories.jsonl" in res.output
    (tmp_path / "empty.jsonl").write_text("")
    res = run(str(tmp_path / "empty.jsonl"), str(REAL / "run-smol"))
    assert res.exit_code == 2 and "no trajectories" in res.output


def test_no_common_question_is_an_error_not_nan(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [traj("x", RIGHT, "m")])
    write_jsonl(tmp_path / "b.jsonl", [traj("y", RIGHT, "m")])
    res = run(str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert res.exit_code == 2 and "no question is scored on both sides" in res.output


def test_load_side_keeps_the_last_episode_of_a_question(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", [traj("q", RIGHT, "m"), traj("q", WRONG, "m")])
    side = load_side(tmp_path / "t.jsonl")
    assert side.repeated == 1 and side.episodes["q"].rubric == WRONG


def test_compare_reads_an_exported_runs_gzipped_evals() -> None:
    """The committed thirteenth run (benchmarks/results/cpu-demo-v13): README's before/after, from the files alone."""
    root = Path(__file__).parents[1] / "benchmarks" / "results" / "cpu-demo-v13" / "eval"
    res = CliRunner().invoke(app, ["compare", str(root / "prompted"), str(root / "trained"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["n_paired"] == 42
    acc = out["rates"]["accuracy"]
    assert (round(acc["before"], 3), round(acc["after"], 3)) == (0.071, 0.31)
