"""Real GRPO steps on CPU: the tiny model built locally (no hub), the real email environment on a real store, the
real Kaminski questions, TRL's GRPOTrainer with our rollout_func, PEFT LoRA."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from train_helpers import train_config


def _lora_b(adapter_dir: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(str(adapter_dir / "adapter_model.safetensors")).items() if "lora_B" in k}


@pytest.mark.slow
def test_train_grpo_two_real_steps_on_cpu(tmp_path: Path, enron_store: Path, questions_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from trl import GRPOTrainer

    from inboxrl.training import runlog
    from inboxrl.training.trainer import checkpoints, train

    # Keep what TRL built from our rollout (before it shuffles it into micro-batches), to check its loss mask.
    seen: list[tuple[dict, Any]] = []
    original = GRPOTrainer._generate_and_score_completions

    def spy(self: Any, inputs: Any) -> Any:
        out = original(self, inputs)
        seen.append((out, list(self.rollout_func.last_samples)))  # as of this step
        return out

    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", spy)
    # What the loss gets: each micro-batch cut to its own length (training.padding), not the step's longest.
    loss_inputs: list[dict] = []
    original_loss = GRPOTrainer._compute_loss

    def loss_spy(self: Any, model: Any, inputs: dict) -> Any:
        loss_inputs.append(inputs)
        return original_loss(self, model, inputs)

    monkeypatch.setattr(GRPOTrainer, "_compute_loss", loss_spy)
    cfg = train_config(tmp_path, enron_store, questions_path)
    events: list[tuple[str, dict]] = []
    result = train(cfg, on_event=lambda k, d: events.append((k, d)))

    assert result.steps == 2
    assert [s for s, _, ok in checkpoints(result.run_dir) if ok] == [1, 2]
    # TRL's loss mask is our env_mask: sampled ids 1, environment ids 0, row by row.
    assert len(seen) == 2
    for out, samples in seen:
        loss_mask = (out["completion_mask"] * out["tool_mask"]).tolist()
        for i, s in enumerate(samples):
            n = len(s.completion_ids)
            assert out["completion_ids"][i][:n].tolist() == s.completion_ids
            assert loss_mask[i][:n] == s.env_mask
            assert sum(loss_mask[i][n:]) == 0
    assert len(loss_inputs) == 4  # 2 steps x 2 micro-batches
    for inp in loss_inputs:
        assert bool(inp["prompt_mask"][:, 0].any()) and bool(inp["completion_mask"][:, -1].any())
        assert inp["tool_mask"].shape == inp["completion_mask"].shape == inp["completion_ids"].shape
    # metrics.jsonl: one train record per step with our episode numbers, a validation record at step 2.
    train_recs = list(runlog.read(result.run_dir, "train"))
    assert [r["step"] for r in train_recs] == [1, 2]
    for r in train_recs:
        for key in ("episode/reward_mean", "episode/reward_std", "episode/accuracy", "episode/avg_turns",
                    "episode/format_error_rate", "episode/hallucination_rate", "episode/dont_know_rate",
                    "groups/skipped", "tokens/sampled", "rollout/tokens_per_s", "step_time", "loss"):
            assert key in r, key
        assert r["groups/total"] == 2
        assert 0.3 < r["memory/peak_rss_gb"] < 24  # a real reading: torch + the tiny model, on this 24 GB machine
        assert 0.1 < r["memory/anon_rss_gb"] <= r["memory/peak_rss_gb"]  # without the store's mmapped pages
    vals = list(runlog.read(result.run_dir, "validation"))
    assert [v["step"] for v in vals] == [2] and vals[0]["n"] == 2 and "accuracy" in vals[0]
    # every rollout episode was scored and written, without token ids
    for step in (1, 2):
        lines = (result.run_dir / "rollouts" / f"step-{step:06d}.jsonl").read_text().splitlines()
        assert len(lines) == 4
        t = json.loads(lines[0])
        assert t["reward"] is not None and t["rubric"] is not None and t["turns"][0]["output_ids"] is None
    for name in ("accuracy.png", "turns.png", "hallucination.png", "reward.png"):
        assert (result.run_dir / "plots" / name).stat().st_size > 1000
    assert list((result.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    # the final adapter names its base; the model spec loads through the project's backend
    meta = json.loads((result.run_dir / "final" / "inboxrl-adapter.json").read_text())
    assert meta["steps"] == 2 and Path(meta["base_path"]).is_dir()
    from inboxrl.models.registry import load_backend

    backend = load_backend(meta["model_spec"], shared=False)
    assert backend.name == meta["model_spec"]
    kinds = [k for k, _ in events]
    assert kinds[0] == "setup" and kinds.count("step") == 2 and "validation" in kinds and kinds[-1] == "done"
    # what computed in which dtype is said at the start and kept in the summary record
    assert events[0][1]["precision"].startswith(f"bf16 autocast {'on' if cfg.bf16 else 'off'}, base float32, rollouts ")
    assert [r["precision"] for r in runlog.read(result.run_dir, "summary")] == [events[0][1]["precision"]]


@pytest.mark.slow
def test_train_grpo_equal_groups_move_no_weights_scripted_rewards(tmp_path: Path, enron_store: Path,
                                                                  questions_path: Path) -> None:
    """Deterministic edge case with scripted rewards (real episodes, rewards overwritten): a step whose groups all
    have equal rewards leaves the LoRA weights exactly as they were; a step with one informative group moves them."""
    from inboxrl.training.trainer import train

    script = {1: [0.5, 0.5, -1.0, -1.0], 2: [1.0, -1.0, 0.0, 0.0]}
    calls: list[int] = []

    def wrap(rollout: Any) -> Any:
        real_run = rollout.run

        def run(model: Any, questions: Any) -> Any:
            trajs = real_run(model, questions)
            step = len(calls) + 1
            calls.append(step)
            for t, r in zip(trajs, script[step]):
                t.reward = r
            return trajs

        rollout.run = run
        return rollout

    cfg = train_config(tmp_path, enron_store, questions_path, max_turns=1, eval_every=100,
                       data={"val_limit": 1})
    result = train(cfg, rollout_wrapper=wrap)
    assert calls == [1, 2]
    ck = result.run_dir / "checkpoints"
    b1 = _lora_b(ck / "checkpoint-1")
    b2 = _lora_b(ck / "checkpoint-2")
    assert b1 and all(float(v.abs().max()) == 0.0 for v in b1.values()), "skipped groups moved the weights"
    assert any(float(v.abs().max()) > 0.0 for v in b2.values()), "an informative group did not move the weights"


@pytest.mark.slow
def test_train_bf16_rollouts_and_validation_run_the_trained_copy(tmp_path: Path, enron_store: Path,
                                                                 questions_path: Path) -> None:
    """rollout_dtype/validation_dtype sample from a bf16 copy of the trainer's model. The trainer (accelerate)
    binds a wrapper to `model.forward` that a plain deepcopy carries over: the copy then ran the fp32 original under
    a bf16 mask and every episode died with a backend error while the run looked healthy."""
    from inboxrl.training import runlog
    from inboxrl.training.trainer import train

    cfg = train_config(tmp_path, enron_store, questions_path, max_steps=1, eval_every=1, save_every=1,
                       rollout_dtype="bfloat16", validation_dtype="bfloat16")
    result = train(cfg)
    assert result.steps == 1
    episodes = [json.loads(x) for x in (result.run_dir / "rollouts" / "step-000001.jsonl").read_text().splitlines()]
    assert episodes and all(t["stop_reason"] != "backend_error" for t in episodes), episodes[0].get("backend_error")
    assert all(len(t["turns"]) >= 1 for t in episodes)
    vals = list(runlog.read(result.run_dir, "validation"))
    assert vals and vals[-1].get("backend_errors", 0) == 0 and vals[-1]["avg_turns"] >= 1
    # the run's own memory records: each stage's peak, none above the lifetime peak (training.memory)
    step = list(runlog.read(result.run_dir, "train"))[-1]
    for key in ("memory/rollout_peak_gb", "memory/loss_peak_gb"):
        assert 0 < step[key] <= step["memory/peak_rss_gb"] + 1e-6, key
    assert 0 < vals[-1]["memory/validation_peak_gb"] <= vals[-1]["memory/peak_rss_gb"] + 1e-6


@pytest.mark.slow
def test_train_on_a_bf16_base_with_length_aware_checkpointing(tmp_path: Path, enron_store: Path,
                                                              questions_path: Path) -> None:
    """base_dtype bfloat16 + bf16 autocast + checkpointing only above a length, through TRL's real loop: the step
    trains, the adapter it saves is float32 (PEFT keeps LoRA weights in float32 over a bf16 base) and not zero."""
    import math

    from safetensors.torch import load_file

    from inboxrl.training import runlog
    from inboxrl.training.trainer import train

    cfg = train_config(tmp_path, enron_store, questions_path, max_steps=1, save_every=1, validate_at_start=False,
                       base_dtype="bfloat16", bf16=True, gradient_checkpointing=True, checkpointing_min_tokens=200)
    assert cfg.base_dtype == "bfloat16"
    result = train(cfg)
    assert result.steps == 1
    episodes = [json.loads(x) for x in (result.run_dir / "rollouts" / "step-000001.jsonl").read_text().splitlines()]
    assert episodes and all(t["stop_reason"] != "backend_error" for t in episodes)
    weights = load_file(str(result.final_adapter / "adapter_model.safetensors"))
    assert weights and all(str(w.dtype) == "torch.float32" for w in weights.values())
    step = list(runlog.read(result.run_dir, "train"))[-1]
    assert math.isfinite(step["loss"]) and step["memory/loss_peak_gb"] > 0  # the loss ran, on both paths
