"""The supervised warm start: a few epochs of next-token loss on golden demonstrations, before GRPO.

Why: GRPO can only reinforce right answers the policy already produces, and the bundled 0.5B model, even with the
guided harness, rarely samples one (docs/history/code-notes.md). Supervised steps on golden episodes of the training questions (`training.demonstrations`)
cost no generation at all, which is the expensive part here, and move the policy to where GRPO has right answers
to compare with wrong ones. This is the cold start DeepSeek-R1 and most agent RL recipes use.

The loss is over exactly the ids the GRPO mask marks as the model's (`Sample.env_mask`): tool results, prompts and
the harness's forced openings are context, never targets. Only those positions go through the LM head (a
152k-word head over every position is most of the memory and time of a step on CPU).

A warm start here runs for over an hour, so it keeps a resumable snapshot (`partial.pt`: the adapter's weights, the
optimiser, the step, the seconds spent) every `save_every` optimiser steps: a killed run resumes at the step after
the snapshot, with the same demonstration order (fixed by the seed) and what is left of its time budget.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxrl.training.rollout import Sample


@dataclass
class WarmStartResult:
    examples: int
    optimizer_steps: int
    epochs_done: float
    seconds: float
    losses: list[float] = field(default_factory=list)  # mean loss of each optimiser step
    stopped_by_budget: bool = False
    resumed_at: int = 0  # optimiser steps restored from a snapshot


def _save_snapshot(path: Path, model: Any, opt: Any, res: WarmStartResult, n_usable: int, seconds: float) -> None:
    import torch

    params = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    tmp = path.with_suffix(".tmp")
    torch.save({"n_usable": n_usable, "step": res.optimizer_steps, "examples": res.examples, "seconds": seconds,
                "losses": list(res.losses), "optimizer": opt.state_dict(), "params": params}, tmp)
    os.replace(tmp, path)  # a kill during the write leaves the previous snapshot whole


def _load_snapshot(path: Path, model: Any, opt: Any, n_usable: int) -> dict[str, Any] | None:
    """The snapshot's counters after loading its weights and optimiser into `model` and `opt` (the file exists);
    None when it belongs to another set of demonstrations (then the warm start begins again)."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    params = dict(model.named_parameters())
    if state.get("n_usable") != n_usable or set(state["params"]) != {n for n, p in params.items() if p.requires_grad}:
        return None
    with torch.no_grad():
        for n, t in state["params"].items():
            params[n].copy_(t)
    opt.load_state_dict(state["optimizer"])
    return state


def target_positions(sample: Sample) -> tuple[list[int], list[int]]:
    """(positions whose logits predict a target, target ids) over prompt + completion: position p-1 predicts the
    id at p, for every completion id the model itself wrote (mask 1)."""
    start = len(sample.prompt_ids)
    pos, tgt = [], []
    for j, (tok, m) in enumerate(zip(sample.completion_ids, sample.env_mask)):
        if m:
            pos.append(start + j - 1)
            tgt.append(tok)
    return pos, tgt


def example_loss(model: Any, sample: Sample, torch: Any, bf16: bool) -> Any:
    """Mean cross-entropy over the sample's target tokens."""
    pos, tgt = target_positions(sample)
    ids = torch.tensor([sample.prompt_ids + sample.completion_ids], dtype=torch.long)
    keep = torch.tensor(pos, dtype=torch.long)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        out = model(input_ids=ids, logits_to_keep=keep, use_cache=False)
    logits = out.logits[0].float()
    return torch.nn.functional.cross_entropy(logits, torch.tensor(tgt, dtype=torch.long))


def schedule(n_samples: int, epochs: float, accumulation: int) -> tuple[int, int]:
    """(examples seen, optimiser steps) of a warm start over `n_samples` demonstrations."""
    examples = max(1, round(epochs * n_samples))
    return examples, math.ceil(examples / accumulation)


def step_learning_rate(peak: float, step: int, total: int, lr_scheduler: str) -> float:
    """The rate of optimiser step `step` (0-based) of `total`: constant, or linear from `peak` down to peak/total."""
    if lr_scheduler == "constant":
        return peak
    if lr_scheduler == "linear":
        return peak * (total - step) / max(1, total)
    raise ValueError(f"unknown warm start lr_scheduler {lr_scheduler!r} (constant or linear)")


def warm_start(model: Any, samples: Sequence[Sample], *, epochs: float, learning_rate: float, accumulation: int,
               max_grad_norm: float = 1.0, bf16: bool = False, seed: int = 0, max_minutes: float | None = None,
               lr_scheduler: str = "constant", on_step: Callable[[int, int, float], None] | None = None,
               snapshot: Path | None = None, save_every: int = 0,
               on_resume: Callable[[int | None], None] | None = None,
               checkpointing_min_tokens: int | None = None) -> WarmStartResult:
    """Trains the model's trainable parameters (the LoRA adapter) in place. `on_step(step, total, loss)` reports
    progress. A time budget stops it after the optimiser step that crosses it. `lr_scheduler="linear"` decays the
    learning rate towards zero over the planned steps, so the last steps move the adapter least (at a constant rate
    the end point is as noisy as the last few batches); the rate is a function of the step, so a resume keeps it.
    With `snapshot`, it resumes from that file if it exists and rewrites it every `save_every` optimiser steps
    (the caller deletes it at the end); `on_resume` hears of a snapshot found: the step it resumes after, or None when it belongs to other
    demonstrations and the warm start begins again. With checkpointing on, demonstrations of at most
    `checkpointing_min_tokens` tokens keep their activations (training.checkpointing)."""
    import torch

    from inboxrl.training.checkpointing import checkpointing_for
    from inboxrl.training.memory import trim

    usable = [s for s in samples if any(s.env_mask)]
    t0 = time.time()
    if not usable:
        return WarmStartResult(0, 0, 0.0, 0.0)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("warm start: the model has no trainable parameters (expected a LoRA adapter)")
    opt = torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)
    rng = random.Random(seed)
    n_examples, total = schedule(len(usable), epochs, accumulation)
    order: list[Sample] = []
    while len(order) < n_examples:
        batch = list(usable)
        rng.shuffle(batch)
        order += batch
    order = order[:n_examples]
    was_training = model.training
    model.train()
    res = WarmStartResult(examples=0, optimizer_steps=0, epochs_done=0.0, seconds=0.0)
    restored = None
    if snapshot is not None and snapshot.is_file():
        restored = _load_snapshot(snapshot, model, opt, len(usable))
        if on_resume is not None:
            on_resume(int(restored["step"]) if restored is not None else None)
    if restored is not None:
        res.optimizer_steps = res.resumed_at = int(restored["step"])
        res.examples, res.losses = int(restored["examples"]), [float(x) for x in restored["losses"]]
        t0 -= float(restored["seconds"])  # the budget counts the time spent before the kill
    try:
        for step in range(res.optimizer_steps, total):
            if max_minutes is not None and step > 0 and time.time() - t0 > max_minutes * 60:
                res.stopped_by_budget = True  # after the step that crossed it, or at once on a resume past it
                break
            chunk = order[step * accumulation:(step + 1) * accumulation]
            for group in opt.param_groups:
                group["lr"] = step_learning_rate(learning_rate, step, total, lr_scheduler)
            opt.zero_grad(set_to_none=True)
            acc = 0.0
            for s in chunk:
                with checkpointing_for(model, len(s.prompt_ids) + len(s.completion_ids), checkpointing_min_tokens):
                    loss = example_loss(model, s, torch, bf16) / len(chunk)
                loss.backward()
                acc += float(loss.detach())
                del loss
                trim()  # demonstrations differ in length: freed activations would pile up in the heaps, as in GRPO
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
            opt.step()
            res.examples += len(chunk)
            res.optimizer_steps += 1
            res.losses.append(acc)
            if snapshot is not None and save_every > 0 and res.optimizer_steps % save_every == 0 \
                    and res.optimizer_steps < total:
                _save_snapshot(snapshot, model, opt, res, len(usable), time.time() - t0)
            if on_step is not None:
                on_step(step + 1, total, acc)
    finally:
        opt.zero_grad(set_to_none=True)
        model.train(was_training)
    res.epochs_done = res.examples / len(usable)
    res.seconds = time.time() - t0
    return res


WARM_START_DIR = "warm-start"


def warm_start_checkpointing(cfg: Any) -> bool:
    """Whether the warm start's backward passes recompute activations: its own setting, else the run's."""
    own = cfg.warm_start.gradient_checkpointing
    return bool(cfg.gradient_checkpointing if own is None else own)
SNAPSHOT_FILE = "partial.pt"


def prepare_policy(cfg: Any, model: Any, tokenizer: Any, train_questions: Sequence[Any], judge: Any,
                   peft_cfg: Any, run_dir: Any, *, resuming_checkpoint: bool,
                   emit: Callable[[str, dict[str, Any]], None]) -> tuple[Any, Any]:
    """(model, peft_config) for GRPOTrainer. Without a warm start: the base model and the LoRA config, which TRL
    applies. With one: a PEFT model whose adapter learned the demonstrations, and no config.

    A resumed run never repeats the warm start: its GRPO checkpoint holds the adapter, or, when the kill came
    before the first checkpoint, `RUN_DIR/warm-start/` does."""
    from pathlib import Path

    from inboxrl.training import runlog

    ws = cfg.warm_start
    if not ws.enabled or resuming_checkpoint:
        return model, peft_cfg
    out = Path(run_dir) / WARM_START_DIR
    from peft import PeftModel, get_peft_model

    if (out / "adapter_config.json").is_file():
        emit("warning", {"message": f"warm start: reusing the adapter in {out}"})
        (out / SNAPSHOT_FILE).unlink(missing_ok=True)  # a kill between the final save and its cleanup
        return PeftModel.from_pretrained(model, str(out), is_trainable=True), None

    from inboxrl.models.local import LocalBackend
    from inboxrl.training.demonstrations import build_demonstrations
    from inboxrl.training.rollout import trajectory_sample
    from inboxrl.trajectory import write_jsonl

    policy = get_peft_model(model, peft_cfg)
    agent_cfg = cfg.agent_config()
    backend = LocalBackend.from_model(policy, tokenizer, name="demonstration")
    trajs, report = build_demonstrations(train_questions, cfg.data.db, agent_cfg, judge, cfg.reward, backend,
                                         dont_know_fraction=ws.dont_know_fraction, seed=cfg.seed,
                                         negatives=ws.negatives)
    samples = [trajectory_sample(t, cfg.max_completion_tokens) for t in trajs]
    counts = {"demonstrations": len(samples), "kept": report.kept, "skipped": report.skipped,
              "negatives": ws.negatives, "twins": report.twins}  # on the console and in the record
    planned = schedule(sum(1 for s in samples if any(s.env_mask)), ws.epochs, ws.accumulation)[1]
    emit("warm_start", {**counts, "steps": planned})

    def on_step(step: int, total: int, loss: float) -> None:
        emit("warm_start_step", {"step": step, "total": total, "loss": loss})

    out.mkdir(parents=True, exist_ok=True)
    snapshot = out / SNAPSHOT_FILE

    def on_resume(step: int | None) -> None:
        emit("warning", {"message": f"warm start: resuming from the snapshot {snapshot} after step {step}"
                         if step is not None else
                         f"warm start: the snapshot {snapshot} was taken on other demonstrations; starting again"})
    from inboxrl.training.memory import STAGES, peak_gb

    checkpointing = warm_start_checkpointing(cfg)
    if checkpointing:  # a long demonstration's activations are the warm start's memory peak
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        policy.enable_input_require_grads()
    with STAGES.stage("warm_start"):
        res = warm_start(policy, samples, epochs=ws.epochs, learning_rate=ws.learning_rate,
                         accumulation=ws.accumulation, max_grad_norm=cfg.max_grad_norm, bf16=cfg.bf16, seed=cfg.seed,
                         max_minutes=ws.max_minutes, lr_scheduler=ws.lr_scheduler, on_step=on_step,
                         snapshot=snapshot, save_every=ws.save_every, on_resume=on_resume,
                         checkpointing_min_tokens=cfg.checkpointing_min_tokens)
    if checkpointing:  # GRPO sets its own up
        policy.gradient_checkpointing_disable()
    memory = {"memory/warm_start_peak_gb": STAGES.pop("warm_start"), "memory/peak_rss_gb": peak_gb()}
    if res.stopped_by_budget:
        emit("warning", {"message": f"warm start: max_minutes {ws.max_minutes} stopped it after "
                         f"{res.optimizer_steps} of {planned} optimiser steps ({res.examples} demonstrations)"
                         + (", before its learning rate had decayed" if ws.lr_scheduler == "linear" else "")})
    write_jsonl(out / "demonstrations.jsonl", [t.without_token_ids() for t in trajs], append=False)
    policy.save_pretrained(str(out))
    snapshot.unlink(missing_ok=True)
    runlog.append(run_dir, {"kind": "warm_start", "step": 0, **counts, "examples": res.examples,
                            "optimizer_steps": res.optimizer_steps, "epochs": res.epochs_done,
                            "seconds": res.seconds, "loss_first": res.losses[0] if res.losses else None,
                            "loss_last": res.losses[-1] if res.losses else None, "losses": res.losses,
                            "stopped_by_budget": res.stopped_by_budget, "resumed_at": res.resumed_at, **memory})
    return policy, None
