"""benchmarks/export_run.py: a training run and its evals into benchmarks/results/NAME, read back by the same code.

The run directory is laid out as `inboxrl train` lays it out, from real parts: the config of the tiny-model test run,
the split written by `QuestionSplit.write` from the real Kaminski questions, validation files of real episodes
(tests/data/clean-eval-qwen.jsonl.gz; the second validation turns every answer into "I don't know", so the
abstention detector fires), the log records the training callback writes (`runlog.append`, `check_run_dir`), and
stand-in checkpoint, adapter, rollout and TensorBoard files that must not be exported. Token ids on the validation
turns are stand-ins (today's trainer writes validation files without them; older runs' files had them). The evals
are the committed real eval runs of tests/data/viewer.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from checks_helpers import clean_eval, with_answer
from inboxrl.checks.run import check_run_dir
from inboxrl.cli import app as cli_app
from inboxrl.evaluation.metrics import metrics
from inboxrl.questions.schema import load_questions
from inboxrl.training import runlog
from inboxrl.training.data import QuestionSplit
from inboxrl.trajectory import Trajectory, read_jsonl, write_jsonl
from inboxrl.viewer.app import create_app
from inboxrl.viewer.runs import Runs
from train_helpers import train_config
from viewer_helpers import GUIDED, SMOL

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "export_run.py"
COMMAND = "inboxrl train --config configs/smoke.yaml"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("export_run", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


export_run = _script()


def _with_token_ids(t: Trajectory) -> Trajectory:
    u = t.model_copy(deep=True)
    for turn in u.turns:
        turn.input_ids = [151644, 872, 198]
        turn.output_ids = list(turn.raw_output.encode())
        turn.output_logprobs = [-0.5] * len(turn.output_ids)
    return u


@pytest.fixture
def train_run(tmp_path: Path, questions_path: Path) -> Path:
    cfg = train_config(tmp_path, tmp_path / "kaminski.db", questions_path)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True)
    (run / "config.json").write_text(cfg.model_dump_json(indent=1))
    qs = load_questions(questions_path)
    QuestionSplit(train=qs[:6], val=qs[6:8], test=qs[8:10], n_loaded=len(qs)).write(run / "data")
    real = clean_eval()
    for step, trajs in ((1, real), (2, [with_answer(t, "I don't know") for t in real])):
        runlog.append(run, {"kind": "train", "step": step, "loss": 0.01 * step, "reward": -0.5})
        write_jsonl(run / "validation" / f"step-{step:06d}.jsonl", [_with_token_ids(t) for t in trajs], append=False)
        report = check_run_dir(run)  # as the training callback does after each validation
        runlog.append(run, {"kind": "validation", "step": step, **metrics(trajs),
                            **{f"checks/{k}": n for k, n in report.counts().items()}, "checks": report.model_dump()})
        write_jsonl(run / "rollouts" / f"step-{step:06d}.jsonl", trajs[:2], append=False)
        ckpt = run / "checkpoints" / f"checkpoint-{step}"
        ckpt.mkdir(parents=True)
        (ckpt / "adapter_model.safetensors").write_bytes(b"weights")
    (run / "final").mkdir()
    (run / "final" / "adapter_model.safetensors").write_bytes(b"weights")
    (run / "tensorboard").mkdir()
    (run / "tensorboard" / "events.out.tfevents").write_bytes(b"events")
    return run


def _export(train: Path, out: Path, **kw: object) -> Path:
    result: Path = export_run.export_run("smoke", train, [("guided", GUIDED), ("smol", SMOL)], [COMMAND], out, **kw)
    return result


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_token_ids_are_gone_and_the_episodes_otherwise_round_trip(train_run: Path, tmp_path: Path) -> None:
    out = _export(train_run, tmp_path / "results")
    for step in (1, 2):
        original = list(read_jsonl(train_run / "validation" / f"step-{step:06d}.jsonl"))
        assert original and all(turn.output_ids for t in original for turn in t.turns)
        gz = out / "validation" / f"step-{step:06d}.jsonl.gz"
        back = list(read_jsonl(gz))
        assert back == [t.without_token_ids() for t in original]
        for line in gzip.decompress(gz.read_bytes()).splitlines():
            for turn in json.loads(line)["turns"]:
                assert turn["input_ids"] is None and turn["output_ids"] is None and turn["output_logprobs"] is None
    for label, src in (("guided", GUIDED), ("smol", SMOL)):
        gz = out / "eval" / label / "trajectories.jsonl.gz"
        assert list(read_jsonl(gz)) == list(read_jsonl(src / "trajectories.jsonl"))
        # Written the way eval writes its file: the same bytes once decompressed.
        assert gzip.decompress(gz.read_bytes()) == (src / "trajectories.jsonl").read_bytes()
        assert (out / "eval" / label / "metrics.json").read_bytes() == (src / "metrics.json").read_bytes()
    for name in ("config.json", "metrics.jsonl", "data/split.json"):
        assert (out / name).read_bytes() == (train_run / name).read_bytes()


def test_manifest_lists_every_file_with_its_hash_and_nothing_heavy(train_run: Path, tmp_path: Path) -> None:
    out = _export(train_run, tmp_path / "results", run_commit="abc1234")
    man = json.loads((out / "MANIFEST.json").read_text())
    files = _files(out)
    del files["MANIFEST.json"]
    assert set(man["files"]) == set(files)
    for name, data in files.items():
        assert man["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert not any(n.startswith(("checkpoints", "final", "rollouts", "tensorboard")) for n in files)
    assert not any(n.startswith("data/") and n != "data/split.json" for n in files)
    assert set(man["not_exported"]["left_out_of_this_run"]) >= {"checkpoints/", "final/", "rollouts/",
                                                                "tensorboard/", "data/train.jsonl"}
    assert man["commands"] == [COMMAND] and man["run_commit"] == "abc1234"
    assert man["exported_at"].endswith("Z") and len(man["tree"]["commit"] or "") == 40
    assert isinstance(man["tree"]["dirty"], bool)
    assert man["machine"]["cores"] >= 1 and "avx512_bf16" in man["machine"]["cpu_flags"]
    assert man["versions"]["trl"] and man["versions"]["torch"]
    assert man["trajectories"]["validation/step-000002.jsonl.gz"] == {"episodes": len(clean_eval()),
                                                                      "skipped_lines": 0}


def test_reexport_is_byte_identical(train_run: Path, tmp_path: Path) -> None:
    first = _files(_export(train_run, tmp_path / "a"))
    again = _export(train_run, tmp_path / "a", overwrite=True)
    second = _files(again)
    m1, m2 = json.loads(first.pop("MANIFEST.json")), json.loads(second.pop("MANIFEST.json"))
    assert first == second and m1["files"] == m2["files"]
    gz = [data for name, data in first.items() if name.endswith(".gz")]
    assert len(gz) == 4  # two validations, two evals
    # No time stamp in any gzip header (bytes 4-8): two exports in the same second would hide one.
    assert all(data[4:8] == b"\0\0\0\0" for data in gz)
    assert not [p for p in again.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_check_gives_the_same_flags_on_the_export(train_run: Path, tmp_path: Path) -> None:
    out = _export(train_run, tmp_path / "results")
    orig = check_run_dir(train_run)
    assert orig.detectors["abstention_collapse"].count > 0  # the second validation collapsed to "I don't know"
    assert check_run_dir(out).model_dump() == orig.model_dump()
    res = CliRunner().invoke(cli_app, ["check", str(GUIDED), str(out / "eval" / "guided"), "--json"])
    assert res.exit_code == 0, res.output
    a, b = res.stdout.splitlines()
    assert json.loads(a) == json.loads(b)


def test_viewer_and_show_read_the_export(train_run: Path, tmp_path: Path) -> None:
    out = _export(train_run, tmp_path / "results")
    runs = Runs([out])
    assert [(r.name, r.kind) for r in runs.runs] == [("smoke", "training"), ("smoke/guided", "eval"),
                                                      ("smoke/smol", "eval")]
    orig = Runs([train_run, GUIDED, SMOL])
    assert [len(c.refs) for c in runs.question_columns] == [len(c.refs) for c in orig.question_columns]
    assert [c.label for c in runs.question_columns] == [c.label for c in orig.question_columns]
    assert [c.checks for c in runs.question_columns] == [c.checks for c in orig.question_columns]

    c = TestClient(create_app([out]))
    page = c.get("/").text
    assert "smoke/guided" in page and "smoke/smol" in page and "step 2" in page
    first = next(iter(read_jsonl(out / "validation" / "step-000001.jsonl.gz")))
    ep = c.get("/episode/0/0")
    assert ep.status_code == 200 and first.question_id in ep.text
    last = len(runs.columns[2].refs) - 1  # the last line of a gzipped eval file, read back by its offset
    assert c.get(f"/episode/2/{last}").status_code == 200

    qid = next(iter(read_jsonl(GUIDED / "trajectories.jsonl"))).question_id
    res = CliRunner(env={"COLUMNS": "200"}).invoke(cli_app, ["show", str(out / "eval" / "guided"), "-q", qid])
    assert res.exit_code == 0, res.output
    assert "judged" in res.stdout


def test_bad_arguments_get_one_line(train_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--name", "smoke", "--out", str(tmp_path / "r"), "--command", COMMAND]
    cases = [(["--eval", "no-equals-sign"], "LABEL=EVAL_DIR"),
             (["--eval", "a/b=" + str(GUIDED)], "the label must be"),
             (["--train", str(tmp_path / "missing")], "no such directory"),
             (["--train", str(GUIDED)], "not a training run directory"),
             (["--eval", "x=" + str(train_run)], "not an eval run directory"),
             (["--eval", f"x={GUIDED}", "--eval", f"x={SMOL}"], "labels must differ"),
             ([], "nothing to export")]
    for extra, said in cases:
        assert export_run.main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, (extra, err)
    assert not (tmp_path / "r" / "smoke").exists()
    # The script as typed: a new process, then the same name again without --overwrite.
    cmd = [sys.executable, str(SCRIPT), *base, "--train", str(train_run)]
    ok = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert ok.returncode == 0 and "files" in ok.stdout, ok.stderr
    again = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
