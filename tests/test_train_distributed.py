"""Two real processes (torchrun, gloo on CPU) run GRPO steps of the tiny model on the real store: the code path of
the multi-GPU configs, simulated. What only a GPU can verify is listed in docs/training.md."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from train_helpers import train_config

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(cfg_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()),
           "-m", "inboxrl.training", "train", "--config", str(cfg_file), *extra]
    # Its own session, so that a hung run is killed with both of its workers, not only the launcher.
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun hung for 15 minutes: {err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _records(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == kind]


def test_two_process_grpo_gathers_groups_writes_once_and_resumes(tmp_path: Path, enron_store: Path,
                                                                  questions_path: Path) -> None:
    # One question per step with 4 generations and 2 per process: every group spans both ranks, so the step only
    # works when the rewards are gathered before the groups (and TRL's advantages) are formed.
    cfg = train_config(tmp_path, enron_store, questions_path, max_steps=1, save_every=1, eval_every=100,
                       num_generations=4, questions_per_step=1, micro_batch_size=2, max_turns=1,
                       validate_at_end=False, data={"val_limit": 2})
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(cfg.model_dump_json())
    run_dir = Path(cfg.run_dir)

    first = _torchrun(cfg_file)
    assert first.returncode == 0, first.stderr[-3000:]
    # Only rank 0 reports: one progress line per step, not one per process.
    assert first.stderr.count("GRPO step 1/1: reward ") == 1, first.stderr[-3000:]

    step1 = [json.loads(line) for line in (run_dir / "rollouts" / "step-000001.jsonl").read_text().splitlines()]
    assert len(step1) == 4, "the step's file holds every rank's episodes"
    assert Counter(t["meta"]["rank"] for t in step1) == {0: 2, 1: 2}, "each rank ran its own episodes"
    assert len({t["question_id"] for t in step1}) == 1, "one group of 4, split across the ranks"
    assert len({t["meta"]["episode_id"] for t in step1}) == 4

    train1 = _records(run_dir, "train")
    assert [r["step"] for r in train1] == [1], "one writer: one record per step"
    assert train1[0]["groups/total"] == 1.0, "the group spanning both ranks was counted once, on gathered rewards"
    assert len(_records(run_dir, "summary")) == 1
    ck = run_dir / "checkpoints" / "checkpoint-1"
    assert (ck / "adapter_model.safetensors").is_file()
    assert {p.name for p in ck.glob("rng_state_*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}

    # Resume both processes from the checkpoint for a second step.
    cfg2 = cfg.model_copy(update={"max_steps": 2})
    cfg_file.write_text(cfg2.model_dump_json())
    second = _torchrun(cfg_file, "--resume")
    assert second.returncode == 0, second.stderr[-3000:]
    summaries = _records(run_dir, "summary")
    assert [s["resumed_from"] for s in summaries] == [None, 1]
    assert [r["step"] for r in _records(run_dir, "train")] == [1, 2], "no lost and no repeated step"
    step2 = [json.loads(line) for line in (run_dir / "rollouts" / "step-000002.jsonl").read_text().splitlines()]
    assert Counter(t["meta"]["rank"] for t in step2) == {0: 2, 1: 2}
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()
