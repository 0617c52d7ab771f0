"""Local generation speed in the rollout path (LocalBackend), single and batched, against transformers' generate().

What it measures, per model x threads x batch size:
- turn 0: B agent prompts (system prompt, tool schemas, a real Kaminski question) prefilled and answered greedily;
- turn 1: the same episodes continued with an assistant reply and a tool result (~250 tokens), which the backend
  appends to each episode's cached stream (only the new tokens are computed);
- the peer, in the same run: `model.generate()` on the turn-0 prompts as one left-padded batch (same model object,
  same threads, greedy, same token limit), i.e. the plain transformers path the backend replaces.
Throughput counts sampled tokens (a row stops at its end-of-turn token) over wall time, batching included.

    python benchmarks/bench_generation.py                       # both bundled models, threads 1 and 2, B 1/4/8
    python benchmarks/bench_generation.py --models smollm2-135m --threads 2 --batches 1 4 --max-tokens 32
    python benchmarks/bench_generation.py --dtypes float32 bfloat16 int8 --json /tmp/gen.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
DUMP: Path | None = None  # --dump: raw model outputs, for the tool-call parser's test table
LLAMA_CPP_TOKS = {"qwen2.5-coder-0.5b": 29.0, "smollm2-135m": 64.0}  # FACTS.md: llama.cpp on this CPU

SYSTEM = ("You are an email research agent for the inbox vince.kaminski@enron.com. Today's date is 2001-05-14. "
          "Answer the user's question by searching the inbox and reading emails. You may take up to 10 turns. "
          "If a search finds nothing, try other keywords. When you know the answer, call return_final_answer "
          "with the answer and the message ids of the emails that support it. Reply with exactly one tool call as "
          "JSON: {\"name\": ..., \"arguments\": {...}}.")
TOOLS = [
    {"type": "function", "function": {"name": "search_inbox", "description": "Full-text search of the inbox.",
                                      "parameters": {"type": "object", "properties": {
                                          "keywords": {"type": "array", "items": {"type": "string"}}},
                                          "required": ["keywords"]}}},
    {"type": "function", "function": {"name": "read_email", "description": "Read one email by message id.",
                                      "parameters": {"type": "object", "properties": {
                                          "message_id": {"type": "string"}}, "required": ["message_id"]}}},
    {"type": "function", "function": {"name": "return_final_answer", "description": "Give the final answer.",
                                      "parameters": {"type": "object", "properties": {
                                          "answer": {"type": "string"},
                                          "sources": {"type": "array", "items": {"type": "string"}}},
                                          "required": ["answer", "sources"]}}},
]


def shared_dir() -> Path:
    return Path(os.environ.get("INBOXRL_SHARED") or REPO.parent / "shared")


def questions(n: int) -> list[str]:
    p = shared_dir() / "data" / "art-e-questions" / "kaminski-train.jsonl"
    out = []
    with p.open() as f:
        for line in f:
            out.append(json.loads(line)["question"])
            if len(out) >= n:
                break
    return out


def tool_result(i: int) -> str:
    hits = [{"message_id": f"<{1000 + 37 * i + k}.1075840{k}{i}.JavaMail.evans@thyme>",
             "subject": ["Re: Research group meeting", "FW: Weather derivatives model", "Interview schedule",
                         "Re: Power trading VaR", "Conference in Houston"][k],
             "from": "shirley.crenshaw@enron.com", "date": f"2000-1{k % 3}-0{k + 1}",
             "snippet": "Vince, please find attached the latest version of the model and the schedule for next "
                        "week's meetings with the group."} for k in range(4)]
    return json.dumps(hits)


def load(model: str, threads: int, dtype: str):  # type: ignore[no-untyped-def]
    from inboxrl.models.registry import load_backend

    return load_backend(f"local/{model}", threads=threads, dtype=dtype, shared=False)


def bench_backend(b, qs: list[str], max_tokens: int, tag: str) -> dict:  # type: ignore[no-untyped-def]
    from inboxrl.models.base import ChatRequest

    msgs = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in qs]
    tools = TOOLS if b.template_tools else None
    reqs = [ChatRequest(f"{tag}-{i}", m, tools=tools, max_tokens=max_tokens) for i, m in enumerate(msgs)]
    t, c = time.perf_counter(), time.process_time()
    r0 = b.generate(reqs)
    wall0 = time.perf_counter() - t
    s0 = dict(b.last_stats)
    reqs1 = []
    for i, (m, r) in enumerate(zip(msgs, r0)):
        m1 = m + [{"role": "assistant", "content": r.text},
                  {"role": "tool", "tool_call_id": f"c{i}", "name": "search_inbox", "content": tool_result(i)}]
        reqs1.append(ChatRequest(f"{tag}-{i}", m1, tools=tools, max_tokens=max_tokens))
    t = time.perf_counter()
    r1 = b.generate(reqs1)
    wall1 = time.perf_counter() - t
    cpu = time.process_time() - c  # CPU seconds this process got: contention-independent with 1 thread
    s1 = dict(b.last_stats)
    for i in range(len(qs)):
        b.end_episode(f"{tag}-{i}")
    errors = [r.error for r in r0 + r1 if r.error]
    if DUMP is not None:
        with DUMP.open("a") as f:
            for q, a, b2 in zip(qs, r0, r1):
                f.write(json.dumps({"tag": tag, "question": q, "turn0": a.text, "turn1": b2.text}) + "\n")
    sampled = s0["sampled_tokens"] + s1["sampled_tokens"]
    return {
        "turn0": {"wall_s": wall0, "sampled": s0["sampled_tokens"], "prefill_tokens": s0["prefill_tokens"],
                  "prefill_s": s0["prefill_s"], "decode_s": s0["decode_s"],
                  "tok_s": s0["sampled_tokens"] / wall0},
        "turn1": {"wall_s": wall1, "sampled": s1["sampled_tokens"], "prefill_tokens": s1["prefill_tokens"],
                  "cached_tokens": sum(r.extra.get("cached_tokens", 0) for r in r1),
                  "prefill_s": s1["prefill_s"], "decode_s": s1["decode_s"],
                  "tok_s": s1["sampled_tokens"] / wall1},
        "tok_s": sampled / (wall0 + wall1),
        "cpu_s": cpu,
        "tok_per_cpu_s": sampled / max(cpu, 1e-9),
        "decode_tok_s": sampled / max(s0["decode_s"] + s1["decode_s"], 1e-9),
        "prefill_tok_s": (s0["prefill_tokens"] + s1["prefill_tokens"]) / max(s0["prefill_s"] + s1["prefill_s"],
                                                                              1e-9),
        "errors": errors,
        "turn0_texts": [r.text for r in r0],
    }


def _peer_generate(b, chats: list[list[dict]], max_tokens: int) -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    import torch

    tok = b.tokenizer
    tools = TOOLS if b.template_tools else None
    texts = [b.renderer.render(m, tools, True) for m in chats]
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        t, c = time.perf_counter(), time.process_time()
        out = b.model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, eos_token_id=sorted(b.stop_ids),
                               pad_token_id=tok.pad_token_id)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    n = 0
    for row in out[:, enc["input_ids"].shape[1]:].tolist():
        for tid in row:
            n += 1
            if tid in b.stop_ids:
                break
    return n, wall, cpu


def bench_peer(b, qs: list[str], turn0_texts: list[str], max_tokens: int) -> dict:  # type: ignore[no-untyped-def]
    """transformers' own generate() on the same two turns: each turn re-reads the whole chat as one left-padded
    batch (no cache across turns), which is what the backend's per-episode streams avoid."""
    chats0 = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in qs]
    chats1 = [m + [{"role": "assistant", "content": a},
                   {"role": "tool", "tool_call_id": f"c{i}", "name": "search_inbox", "content": tool_result(i)}]
              for i, (m, a) in enumerate(zip(chats0, turn0_texts))]
    n0, w0, c0 = _peer_generate(b, chats0, max_tokens)
    n1, w1, c1 = _peer_generate(b, chats1, max_tokens)
    return {"turn0": {"sampled": n0, "wall_s": w0, "tok_s": n0 / w0}, "turn1": {"sampled": n1, "wall_s": w1},
            "tok_s": (n0 + n1) / (w0 + w1), "cpu_s": c0 + c1, "tok_per_cpu_s": (n0 + n1) / max(c0 + c1, 1e-9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["qwen2.5-coder-0.5b", "smollm2-135m"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4, 8])
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--dtypes", nargs="+", default=["float32"], help="float32, bfloat16, int8")
    ap.add_argument("--no-peer", action="store_true", help="skip transformers' generate() as the peer")
    ap.add_argument("--json", type=Path, help="write all results here")
    ap.add_argument("--dump", type=Path, help="append every raw model output here (JSONL)")
    args = ap.parse_args()
    global DUMP
    DUMP = args.dump

    import torch

    results = []
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}  {platform.processor() or platform.machine()}  "
          f"cores={os.cpu_count()}  torch={torch.__version__}  load avg={os.getloadavg()[0]:.1f}", flush=True)
    print("| model | dtype | threads | batch | rollout tok/s (turn 0+1) | tok per CPU-s | decode tok/s | "
          "prefill tok/s | turn-1 cached / computed prompt tokens | peer generate() tok/s | peer tok per CPU-s | "
          "rollout / peer | rollout / llama.cpp | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    from inboxrl.models.base import ChatRequest

    for model in args.models:
        qs_all = questions(max(args.batches))
        for dtype in args.dtypes:
            b = load(model, args.threads[0], dtype)
            for th in args.threads:
                b.threads = th
                b.generate([ChatRequest("warmup", [{"role": "user", "content": "hi"}], max_tokens=2)])
                b.end_episode("warmup")
                for bs in args.batches:
                    qs = qs_all[:bs]
                    r = bench_backend(b, qs, args.max_tokens, f"{model}-{dtype}-{th}-{bs}")
                    peer = None
                    if not args.no_peer:
                        torch.set_num_threads(th)
                        peer = bench_peer(b, qs, r["turn0_texts"], args.max_tokens)
                    load_avg = os.getloadavg()[0]
                    row = {"model": model, "dtype": dtype, "threads": th, "batch": bs, **r, "peer": peer,
                           "llama_cpp_tok_s": LLAMA_CPP_TOKS.get(model), "load_avg": load_avg}
                    results.append(row)
                    ratio_peer = f"{r['tok_s'] / peer['tok_s']:.2f}" if peer else "-"
                    llama = LLAMA_CPP_TOKS.get(model)
                    print(f"| {model} | {dtype} | {th} | {bs} | {r['tok_s']:.1f} | {r['tok_per_cpu_s']:.1f} | "
                          f"{r['decode_tok_s']:.1f} | {r['prefill_tok_s']:.0f} | {r['turn1']['cached_tokens']} / "
                          f"{r['turn1']['prefill_tokens']} | {peer['tok_s'] if peer else float('nan'):.1f} | "
                          f"{peer['tok_per_cpu_s'] if peer else float('nan'):.1f} | "
                          f"{ratio_peer} | {(r['tok_s'] / llama if llama else float('nan')):.2f} | "
                          f"{load_avg:.1f} |", flush=True)
                    if r["errors"]:
                        print(f"  errors: {r['errors'][:2]}", file=sys.stderr)
                    if args.json:
                        args.json.write_text(json.dumps(results, indent=1))
            del b
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
