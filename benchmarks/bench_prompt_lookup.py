"""Prompt-lookup speculative decoding on real eval episode contexts of the bundled Qwen.

    python benchmarks/bench_prompt_lookup.py TRAJECTORIES.jsonl [...] --out benchmarks/results/cpu-prompt-lookup.json
    python benchmarks/bench_prompt_lookup.py TRAJECTORIES.jsonl [...] --replay-only   # no model: recorded replies

For every assistant turn of the given trajectories (an `inboxrl eval` run's trajectories.jsonl, or a training run's
validation/step-N.jsonl: greedy episodes of the agent harness), the chat up to that turn is the context. On each
context, back to back and alternating which goes first, transformers' greedy `generate()` runs once plainly and
once with `prompt_lookup_num_tokens=N` (its reference implementation); the two outputs must be identical. The
greedy output is then replayed through `inboxrl.models.prompt_lookup` to count drafted and accepted tokens and
forward passes. Reported per turn kind (search / read / answer): acceptance rate, tokens per forward pass, and the
wall-time ratio plain / lookup. Contexts are re-rendered from the recorded messages without the tool schemas, so
the outputs are the model's replies to those contexts, not the recorded replies.
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


def turn_kind(content: str) -> str:
    c = content.replace(" ", "")
    if '"name":"search_inbox"' in c:
        return "search"
    if '"name":"read_email"' in c:
        return "read"
    return "answer"


def contexts(paths: list[Path], tok, limit: int | None) -> list[dict]:  # type: ignore[no-untyped-def]
    out = []
    seen = set()
    for p in paths:
        for line in p.read_text().splitlines():
            if not line.strip():
                continue
            t = json.loads(line)
            msgs = [{"role": m["role"], "content": m.get("content") or ""} for m in t["messages"]]
            for i, m in enumerate(msgs):
                if m["role"] != "assistant" or i < 2 or (t.get("question_id"), i, m["content"]) in seen:
                    continue
                seen.add((t.get("question_id"), i, m["content"]))
                ids = tok.apply_chat_template(msgs[:i], add_generation_prompt=True, tokenize=True)
                if hasattr(ids, "keys"):
                    ids = ids["input_ids"]
                out.append({"question_id": t.get("question_id"), "turn": i, "kind": turn_kind(m["content"]),
                            "after_tool_result": any(x["role"] == "tool" for x in msgs[:i]), "ids": list(ids)})
    # the turns after a tool result first: that is where the mail is in the context
    out.sort(key=lambda c: not c["after_tool_result"])
    return out[:limit] if limit else out


def replay_recorded(args: argparse.Namespace) -> None:
    """Acceptance and tokens per forward pass over every recorded assistant reply (greedy episodes only), with the
    reply re-tokenised from its text; no model is loaded."""
    from transformers import AutoTokenizer

    from inboxrl.models.bundled import converted_dir
    from inboxrl.models.prompt_lookup import replay

    tok = AutoTokenizer.from_pretrained(converted_dir("qwen2.5-coder-0.5b"))
    end = tok.convert_tokens_to_ids("<|im_end|>")
    agg: dict[str, list[int]] = {}
    seen = set()
    for p in args.trajectories:
        for line in p.read_text().splitlines():
            t = json.loads(line) if line.strip() else None
            if t is None:
                continue
            msgs = [{"role": m["role"], "content": m.get("content") or ""} for m in t["messages"]]
            for i, m in enumerate(msgs):
                key = (t.get("question_id"), i, m["content"])
                if m["role"] != "assistant" or key in seen:
                    continue
                seen.add(key)
                ctx = tok.apply_chat_template(msgs[:i], add_generation_prompt=True, tokenize=True)
                ctx = ctx["input_ids"] if hasattr(ctx, "keys") else ctx
                out = tok(m["content"], add_special_tokens=False)["input_ids"] + [end]
                r = replay(list(ctx), out, args.num_tokens)
                a = agg.setdefault(turn_kind(m["content"]), [0, 0, 0, 0, 0])
                for j, v in enumerate((1, r.tokens, r.passes, r.drafted, r.accepted)):
                    a[j] += v
    rows = {k: {"replies": a[0], "tokens": a[1], "passes": a[2], "tokens_per_pass": a[1] / max(1, a[2]),
                "acceptance": a[4] / max(1, a[3])} for k, a in agg.items()}
    tot = [sum(a[j] for a in agg.values()) for j in range(5)]
    rows["all"] = {"replies": tot[0], "tokens": tot[1], "passes": tot[2], "tokens_per_pass": tot[1] / max(1, tot[2]),
                   "acceptance": tot[4] / max(1, tot[3])}
    rep = {"command": " ".join(sys.argv), "num_tokens": args.num_tokens, "by_kind": rows}
    print(json.dumps(rep, indent=1))
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trajectories", type=Path, nargs="+")
    ap.add_argument("--num-tokens", type=int, default=10, help="prompt_lookup_num_tokens (draft length)")
    ap.add_argument("--max-new", type=int, default=128, help="the harness's max_tokens_per_turn")
    ap.add_argument("--limit", type=int, default=None, help="contexts at most")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--replay-only", action="store_true",
                    help="no model: replay the recorded greedy replies (acceptance and tokens per pass only)")
    args = ap.parse_args()
    if args.replay_only:
        replay_recorded(args)
        return

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inboxrl.models.bundled import ensure_converted
    from inboxrl.models.prompt_lookup import replay

    torch.set_num_threads(args.threads)
    path = ensure_converted("qwen2.5-coder-0.5b")
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype)).eval()
    ctxs = contexts(args.trajectories, tok, args.limit)
    eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.eos_token_id]
    rows = []
    for k, c in enumerate(ctxs):
        ids = torch.tensor([c["ids"]])
        res: dict = {}
        order = ["plain", "lookup"] if k % 2 == 0 else ["lookup", "plain"]
        for mode in order:
            kw = {"prompt_lookup_num_tokens": args.num_tokens} if mode == "lookup" else {}
            t0 = time.perf_counter()
            with torch.inference_mode():
                g = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.max_new,
                                   do_sample=False, eos_token_id=eos, pad_token_id=eos[-1], **kw)
            res[mode] = (g[0, ids.shape[1]:].tolist(), time.perf_counter() - t0)
        out_ids = res["plain"][0]
        rep = replay(c["ids"], out_ids, args.num_tokens)
        row = {"question_id": c["question_id"], "turn": c["turn"], "kind": c["kind"], "context_tokens": len(c["ids"]),
               "output_tokens": len(out_ids), "identical": res["plain"][0] == res["lookup"][0],
               "plain_s": res["plain"][1], "lookup_s": res["lookup"][1], "drafted": rep.drafted,
               "accepted": rep.accepted, "passes": rep.passes, "acceptance": rep.acceptance,
               "tokens_per_pass": rep.tokens_per_pass}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    def summary(sel: list[dict]) -> dict:
        if not sel:
            return {}
        drafted = sum(r["drafted"] for r in sel)
        return {"contexts": len(sel), "output_tokens": sum(r["output_tokens"] for r in sel),
                "acceptance": sum(r["accepted"] for r in sel) / drafted if drafted else 0.0,
                "tokens_per_pass": sum(r["output_tokens"] for r in sel) / max(1, sum(r["passes"] for r in sel)),
                "speedup_wall": sum(r["plain_s"] for r in sel) / max(1e-9, sum(r["lookup_s"] for r in sel)),
                "speedup_wall_median": statistics.median(r["plain_s"] / max(1e-9, r["lookup_s"]) for r in sel),
                "all_identical": all(r["identical"] for r in sel)}

    rep_all = {"command": " ".join(sys.argv), "num_tokens": args.num_tokens, "dtype": args.dtype,
               "threads": args.threads, "max_new": args.max_new, "all": summary(rows),
               "by_kind": {k: summary([r for r in rows if r["kind"] == k]) for k in ("search", "read", "answer")},
               "rows": rows}
    print(json.dumps({k: v for k, v in rep_all.items() if k != "rows"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(rep_all, indent=1))


if __name__ == "__main__":
    main()
