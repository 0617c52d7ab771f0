"""Training benchmark: real GRPO steps of the CPU demonstration config, and (with --full) the whole demonstration.

    python benchmarks/bench_train.py                      # 3 real steps of configs/cpu-demo.yaml: step time, tok/s
    python benchmarks/bench_train.py --steps 2 --val-limit 4 --db /tmp/kaminski.db
    python benchmarks/bench_train.py --full               # baseline eval, the full run, eval of the trained adapter
    python benchmarks/bench_train.py --memory --seq 1024  # resident memory of each stage, no GRPO loop

Step mode trains the bundled Qwen2.5-Coder-0.5B for a few steps with the demo's exact settings (group shape, turn
and token budgets, LoRA, judge) and a small validation at step 0, then reports per step: wall and CPU seconds, the
rollout's share, sampled and environment tokens, rollout tokens/s (sampled tokens / rollout wall time), and the
validation's speed. CPU seconds are reported next to wall seconds because the machine is usually shared: on an idle
2-core machine a step's wall time is about its CPU time / 2.

Full mode does what docs/training.md describes: writes the fixed split, evaluates the prompted model on the
validation questions with `inboxrl.evaluation.run.evaluate` (the code of `inboxrl eval`), trains with the config as
shipped, evaluates `local/qwen2.5-coder-0.5b+RUN_DIR/final` the same way, and prints the before/after table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def step_report(run_dir: Path) -> dict:
    from inboxrl.training import runlog

    steps = list(runlog.read(run_dir, "train"))
    vals = list(runlog.read(run_dir, "validation"))
    rows = []
    for r in steps:
        rows.append({
            "step": r["step"],
            "wall_s": r.get("time/step_wall_s") or r.get("step_time"),
            "cpu_s": r.get("time/step_cpu_s"),
            "rollout_wall_s": r.get("rollout/seconds"),
            "rollout_cpu_s": r.get("rollout/cpu_seconds"),
            "sampled_tokens": r.get("tokens/sampled"),
            "env_tokens": r.get("tokens/environment"),
            "prompt_tokens": r.get("tokens/prompt"),
            "rollout_tok_s": r.get("rollout/tokens_per_s"),
            "reward_mean": r.get("episode/reward_mean"),
            "accuracy": r.get("episode/accuracy"),
            "avg_turns": r.get("episode/avg_turns"),
            "format_error_rate": r.get("episode/format_error_rate"),
            "skipped_groups": r.get("groups/skipped"),
        })
    out = {"steps": rows,
           "mean_step_wall_s": _mean([r["wall_s"] for r in rows]),
           "mean_step_cpu_s": _mean([r["cpu_s"] for r in rows]),
           "mean_rollout_wall_s": _mean([r["rollout_wall_s"] for r in rows]),
           "mean_rollout_cpu_s": _mean([r["rollout_cpu_s"] for r in rows]),
           "mean_rollout_tok_s": _mean([r["rollout_tok_s"] for r in rows]),
           "validations": [{k: v.get(k) for k in ("step", "n", "accuracy", "hallucination_rate", "dont_know_rate",
                                                  "out_of_turns_rate", "format_error_rate", "avg_turns",
                                                  "seconds", "tokens_per_s")} for v in vals]}
    if out["mean_step_wall_s"]:
        out["steps_in_2h_at_this_wall_time"] = int(7200 // out["mean_step_wall_s"])
    if out["mean_step_cpu_s"]:
        out["steps_in_2h_idle_estimate"] = int(7200 // (out["mean_step_cpu_s"] / 2))
    return out


def markdown(rep: dict) -> str:
    def f(v: object, nd: int = 1) -> str:
        return "–" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    lines = [("| step | wall s | CPU s | rollout wall s | rollout CPU s | sampled tok | env tok | rollout tok/s | "
             "reward | acc | turns | format err | skipped groups |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rep["steps"]:
        lines.append(f"| {r['step']} | {f(r['wall_s'])} | {f(r['cpu_s'])} | {f(r['rollout_wall_s'])} | "
                     f"{f(r['rollout_cpu_s'])} | {f(r['sampled_tokens'], 0)} | {f(r['env_tokens'], 0)} | "
                     f"{f(r['rollout_tok_s'], 2)} | {f(r['reward_mean'], 2)} | {f(r['accuracy'], 2)} | "
                     f"{f(r['avg_turns'], 1)} | {f(r['format_error_rate'], 2)} | {f(r['skipped_groups'], 0)} |")
    return "\n".join(lines)


def _overrides(items: list[str]) -> dict:
    import yaml

    out = {}
    for item in items:
        k, _, v = item.partition("=")
        out[k.strip()] = yaml.safe_load(v)
    return out


def run_steps(args: argparse.Namespace) -> dict:
    from inboxrl.training.config import TrainConfig
    from inboxrl.training.trainer import train

    over = {"run_dir": str(args.run_dir), "max_steps": args.steps, "eval_every": 10_000,
            "save_every": args.steps, "validate_at_start": args.val_limit > 0, "validate_at_end": False,
            "data.val_limit": max(args.val_limit, 1), "threads": args.threads,
            "warm_start.enabled": False}  # step mode measures GRPO steps; --set warm_start.enabled=true to include it
    if args.db:
        over["data.db"] = str(args.db)
    over.update(_overrides(args.set))
    cfg = TrainConfig.load(args.config, over).resolved(Path.cwd())
    if args.val_limit == 0:  # no validation at all: only the training steps are measured
        cfg = cfg.model_copy(update={"validate_at_start": False, "validate_at_end": False})
    t0 = time.time()
    res = train(cfg, resume=args.resume, on_event=lambda k, d: print(f"[{k}] " + json.dumps(
        {x: d.get(x) for x in ("step", "seconds", "cpu_seconds", "rollout/tokens_per_s", "accuracy", "n",
                                "precision", "message", "demonstrations", "total", "loss")
         if x in d}), file=sys.stderr, flush=True))
    rep = step_report(res.run_dir)
    rep.update({"config": str(args.config), "db": cfg.data.db, "total_wall_s": time.time() - t0,
                "rollouts_per_step": cfg.rollouts_per_step, "max_turns": cfg.turns,
                "max_tokens_per_turn": cfg.turn_tokens, "threads": args.threads})
    return rep


def run_full(args: argparse.Namespace) -> dict:
    from inboxrl.agent.config import AgentConfig
    from inboxrl.evaluation.run import evaluate
    from inboxrl.judge.registry import load_judge
    from inboxrl.training.config import TrainConfig
    from inboxrl.training.trainer import train, write_split

    over = {"run_dir": str(args.run_dir), "threads": args.threads}
    if args.db:
        over["data.db"] = str(args.db)
    over.update(_overrides(args.set))
    cfg = TrainConfig.load(args.config, over).resolved(Path.cwd())
    split = write_split(cfg)
    agent = AgentConfig.load(args.config)  # the same harness the run validates with (greedy)
    judge = load_judge(cfg.judge)
    base = cfg.model
    before = evaluate(split.val, [base], cfg.data.db, judge, agent, args.run_dir.parent / "eval-before",
                      concurrency=len(split.val))
    res = train(cfg, resume=args.resume)
    spec = f"{base}+{res.final_adapter}"
    after = evaluate(split.val, [spec], cfg.data.db, judge, agent, args.run_dir.parent / "eval-after",
                     concurrency=len(split.val))
    rep = step_report(res.run_dir)
    rep["before"] = before.metrics.get("models", before.metrics)
    rep["after"] = after.metrics.get("models", after.metrics)
    rep["train_seconds"] = res.seconds
    return rep


ALLOCATORS = {"default": None, "arenas": {"arenas": 2}, "mmap4": {"arenas": 2, "mmap_threshold_mb": 4}}


def run_memory(args: argparse.Namespace) -> dict:
    """Peak resident memory and time of each stage of a cpu-demo step, one at a time, on the real model: the loss
    over one episode of `--seq` tokens as the trainer runs it (TRL's fused LM head over the completion, bf16
    autocast; `--model-token-share` of it scored) with and without activation checkpointing, the deep-copied bf16
    rollout model against the in-place one (training.shadow), and a prefill. Each loss mode runs once unmeasured
    (first calls pay one-off costs), then `--repeats` times; its seconds are the median."""
    import statistics

    import torch
    from peft import LoraConfig, get_peft_model
    from trl.trainer.utils import add_fused_lm_head

    from inboxrl.models.local import LocalBackend
    from inboxrl.training import memory
    from inboxrl.training.base_model import load_base
    from inboxrl.training.config import TrainConfig
    from inboxrl.training.shadow import refresh
    from inboxrl.training.trainer import _score_completion_tokens_only

    torch.set_num_threads(args.threads)
    tuning = ALLOCATORS[args.allocator]
    if tuning is not None:
        memory.tune_allocator(**tuning)
    cfg = TrainConfig.load(args.config, _overrides(args.set))
    base_dtype = args.base_dtype or cfg.base_dtype
    st = memory.STAGES
    out: dict = {"seq": args.seq, "allocator": args.allocator, "base_dtype": base_dtype,
                 "model_token_share": args.model_token_share, "repeats": args.repeats, "stages": {}, "seconds": {},
                 "seconds_each": {}}

    def record(name: str, t0: float, seconds: list[float] | None = None) -> None:
        m = st.metrics()
        out["stages"][name] = {"peak_gb": m[f"memory/{name}_peak_gb"], "after_gb": m[f"memory/{name}_after_gb"],
                               "anon_after_gb": memory.anon_gb()}
        out["seconds"][name] = statistics.median(seconds) if seconds else time.perf_counter() - t0
        if seconds:
            out["seconds_each"][name] = seconds
        print(f"[memory] {name}: {out['stages'][name]} {out['seconds'][name]:.2f} s", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    with st.stage("load"):
        model, tok, _, _ = load_base(cfg.model, dtype=base_dtype)
    record("load", t0)
    add_fused_lm_head(model, temperature=cfg.temperature, outputs=("log_probs", "entropy"))
    peft_cfg = LoraConfig(r=cfg.lora.rank, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                          target_modules=list(cfg.lora.target_modules), task_type="CAUSAL_LM")
    policy = get_peft_model(model, peft_cfg)
    with torch.no_grad():  # a trained adapter is not zero: the merge must do real work
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 1e-3)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 150_000, (1, args.seq), generator=g)
    labels = ids.clone()
    labels[:, : args.seq // 5] = -100  # the prompt is context, the rest completion
    # Tool results inside the completion: 1 - share of every 100 positions, unscored since training.model_tokens
    tool = (torch.arange(args.seq) - args.seq // 5) % 100 >= round(100 * args.model_token_share)
    labels[:, tool & (torch.arange(args.seq) >= args.seq // 5)] = -100
    bf16 = cfg.bf16  # TrainConfig.load has resolved `auto` for this machine

    def loss_pass() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bool(bf16)):
            o = policy(input_ids=ids, labels=labels, fused_lm_head=True)
        loss = -(o.log_probs.sum() / (labels != -100).sum())
        loss.backward()
        del o, loss
        policy.zero_grad(set_to_none=True)

    for ckpt in [m == "checkpointed" for m in args.loss_modes.split(",")]:
        name = "loss_checkpointed" if ckpt else "loss"
        if ckpt:
            policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            policy.enable_input_require_grads()
        else:
            policy.gradient_checkpointing_disable()
        policy.train()
        with _score_completion_tokens_only():
            loss_pass()  # unmeasured: first calls pay one-off costs
            seconds = []
            with st.stage(name):
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    loss_pass()
                    seconds.append(time.perf_counter() - t0)
        record(name, t0, seconds)
    policy.gradient_checkpointing_disable()
    policy.eval()
    t0 = time.perf_counter()
    with st.stage("rollout_copy_deepcopy"):
        b = LocalBackend.from_model(policy, tok, dtype="bfloat16")
        del b
    record("rollout_copy_deepcopy", t0)
    for k in (1, 2):
        t0 = time.perf_counter()
        with st.stage(f"rollout_copy_inplace_{k}"):
            shadow = refresh(policy)
        record(f"rollout_copy_inplace_{k}", t0)
    from inboxrl.models.base import ChatRequest

    backend = LocalBackend.from_model(shadow, tok, name="probe")
    text = tok.decode(ids[0, : args.seq].tolist())
    reqs = [ChatRequest(messages=[{"role": "user", "content": text}], episode_id=f"e{i}", max_tokens=8,
                        temperature=0.0) for i in range(2)]
    t0 = time.perf_counter()
    with st.stage("prefill_decode"):
        backend.generate(reqs)
    record("prefill_decode", t0)
    out["lifetime_peak_gb"] = memory.peak_gb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "cpu-demo.yaml")
    ap.add_argument("--db", type=Path, default=None, help="mail store (default: the config's data.db)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--val-limit", type=int, default=4, help="validation questions at step 0 (0: none)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--run-dir", type=Path, default=REPO / "runs" / "bench-train")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--full", action="store_true", help="the whole demonstration with before/after evaluation")
    ap.add_argument("--memory", action="store_true", help="resident memory of each stage (no GRPO loop)")
    ap.add_argument("--seq", type=int, default=1024, help="--memory: tokens of the episode the loss runs over")
    ap.add_argument("--loss-modes", default="plain,checkpointed",
                    help="--memory: loss passes to measure, without and/or with activation checkpointing")
    ap.add_argument("--model-token-share", type=float, default=1.0,
                    help="--memory: share of the completion the loss scores (the model's own tokens; 1.0 = every "
                         "position, as before training.model_tokens; the CPU demo's episodes are about 0.13)")
    ap.add_argument("--allocator", choices=sorted(ALLOCATORS), default="default",
                    help="--memory: glibc malloc settings (training.memory.tune_allocator): default = untouched, "
                         "arenas = at most 2 arenas, mmap4 = that and a fixed 4 MB mmap threshold")
    ap.add_argument("--base-dtype", choices=["float32", "bfloat16"], default=None,
                    help="--memory: dtype of the frozen base (default: the config's base_dtype)")
    ap.add_argument("--repeats", type=int, default=1, help="--memory: measured passes of each loss mode")
    ap.add_argument("--set", action="append", default=[], help="config override KEY=VALUE (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    args = ap.parse_args()
    if args.memory:
        import provenance

        rep = run_memory(args)
        rep["provenance"] = {"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                             **provenance.git_state(), "machine": provenance.machine(),
                             "load_average": os.getloadavg()}
        print(json.dumps(rep, indent=1))
        if args.out:
            args.out.write_text(json.dumps(rep, indent=1))
        return
    rep = run_full(args) if args.full else run_steps(args)
    print(markdown(rep))
    print(json.dumps(rep, indent=1, default=str))
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1, default=str))


if __name__ == "__main__":
    main()
