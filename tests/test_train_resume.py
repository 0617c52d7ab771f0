"""A run killed for real (SIGKILL) after its first checkpoint resumes with no lost and no repeated steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from train_helpers import train_config

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_train_resume_after_kill_continues_steps_and_optimizer(tmp_path: Path, enron_store: Path,
                                                               questions_path: Path) -> None:
    import torch

    from inboxrl.training import runlog
    from inboxrl.training.trainer import TrainError, _checkpoint_complete, checkpoints, train

    cfg = train_config(tmp_path, enron_store, questions_path, max_steps=3, save_every=1, eval_every=100,
                       max_turns=1, data={"val_limit": 1})
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(cfg.model_dump_json())
    run_dir = Path(cfg.run_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([sys.executable, "-m", "inboxrl.training", "train", "--config", str(cfg_file)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ck1 = run_dir / "checkpoints" / "checkpoint-1"
    deadline = time.monotonic() + 600  # a guard against a hung child, not a timing assertion
    try:
        while not _checkpoint_complete(ck1):
            if proc.poll() is not None:
                pytest.fail(f"training exited before its first checkpoint: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint-1 after 10 minutes")
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        console = proc.stderr.read().decode()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    # Its stderr is a pipe, not a terminal, where Rich draws no bars: each GRPO step is still a line of the log.
    assert "GRPO step 1/3: reward " in console, console[-2000:]
    killed_at = max(s for s, _, ok in checkpoints(run_dir) if ok)
    assert 1 <= killed_at < 3, "the kill must land before the run finished"
    assert not (run_dir / "final").exists()

    # Starting again without --resume refuses to overwrite the run.
    with pytest.raises(TrainError, match="--resume"):
        train(cfg)

    if killed_at < 2:
        # A time budget that is already spent stops the resumed run after one more step, with a checkpoint.
        budget = train(cfg.model_copy(update={"max_minutes": 1e-6}), resume=True)
        assert budget.steps == killed_at + 1
        assert [r["step"] for r in runlog.read(run_dir, "time_budget")] == [killed_at + 1]
        assert _checkpoint_complete(run_dir / "checkpoints" / f"checkpoint-{killed_at + 1}")
        killed_at += 1

    result = train(cfg, resume=True)
    assert result.resumed_from == killed_at
    assert result.steps == 3
    # No step lost, none repeated: one train record per step, rollouts written once per step.
    steps = [r["step"] for r in runlog.read(run_dir, "train")]
    assert steps == [1, 2, 3]
    assert sorted(p.name for p in (run_dir / "rollouts").glob("step-*.jsonl")) == [
        "step-000001.jsonl", "step-000002.jsonl", "step-000003.jsonl"]
    state = json.loads((run_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]
    # The optimizer continued: AdamW has taken 3 steps, not a fresh 3 - killed_at.
    opt = torch.load(run_dir / "checkpoints" / "checkpoint-3" / "optimizer.pt", weights_only=False)
    adam_steps = {int(float(s["step"])) for s in opt["state"].values()}
    assert adam_steps == {3}
    assert (run_dir / "final" / "adapter_model.safetensors").is_file()
