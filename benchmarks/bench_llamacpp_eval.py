"""llama.cpp's OpenAI-compatible server against the in-process engine, both run by `inboxrl eval`'s own code on the
same questions with the same agent config, harness and judge (issue 25, "Measure it").

1. llama.cpp: `python -m llama_cpp.server` serves the bundled GGUF (Qwen2.5-Coder-0.5B, Q4_K_M) with
   `--chat_format chatml --n_threads 2` on a free loopback port. The evaluation goes through it with
   `tool_mode: json` (under chatml the server ignores `tools`) and one episode at a time (it serves one request
   at a time). The server is stopped when this phase ends, on an error, on Ctrl-C and on SIGTERM.
2. In-process: `local/qwen2.5-coder-0.5b` with `INBOXRL_DTYPE=auto` (how the prompted baselines are measured), the
   episodes batched as `inboxrl eval` batches them (`--local-batch`, its `--concurrency`).

The two never run at once (each has both cores). Per engine: accuracy, wrong, "I don't know", format errors,
episodes, wall time, time per episode, sampled tokens/s over the wall time, and the prefill and decode tokens/s of
the engine itself (llama.cpp: summed from the timings it prints per completion; in-process: the backend's own
counters). One JSON goes to benchmarks/results/llamacpp-eval-<UTC date>.json; trajectories, metrics.json and the
server's log go to --out (a new directory: a resumed run would report wrong times).

Harness: the OpenAI chat API has no way to start the assistant's reply, so the guided harness's forced openings
(`force_search_first` etc., sent to local models as the first characters of the reply) do not reach the server;
the JSON records it. `--harness free` runs both engines without them, like for like.

    python benchmarks/bench_llamacpp_eval.py --db data/enron.db --questions runs/cpu-demo/data/val.jsonl --limit 10
    python benchmarks/bench_llamacpp_eval.py --db data/enron.db --questions runs/cpu-demo/data/val.jsonl --harness free
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import llamacpp_common as lc  # the benchmarks folder is not a package

ENGINES = ("llamacpp", "local")
ENDPOINT_MODEL = "llamacpp/qwen2.5-coder-0.5b-q4_k_m"  # the server's --model_alias, the name in trajectories
LOCAL_MODEL = "local/qwen2.5-coder-0.5b"
NOTE_WEIGHTS = ("llama.cpp computes on the Q4_K_M weights of the GGUF; the in-process engine on the same weights "
                "de-quantised (bf16 or float32, see engines.local.precision)")
NOTE_HARNESS = ("the guided harness's forced openings reach only the in-process engine: the chat API cannot start "
                "the assistant's reply")
# (key in the engine summary, row label)
ROWS = [("episodes", "episodes"), ("right", "right"), ("accuracy", "accuracy"), ("wrong", "wrong"),
        ("dont_know", "I don't know"), ("format_error_episodes", "episodes with a format error"),
        ("format_errors", "format errors (count)"), ("out_of_turns", "out of turns"),
        ("mean_reward", "mean reward"), ("wall_s", "wall time, s"), ("s_per_episode", "s per episode"),
        ("latency_p50_s", "episode latency p50, s"), ("load_s", "model load / server start, s"),
        ("sampled_tokens", "sampled tokens"), ("sampled_tok_s", "sampled tok/s over the wall time"),
        ("decode_tok_s", "decode tok/s (engine)"), ("prefill_tok_s", "prefill tok/s (engine)"),
        ("prefill_tokens_computed", "prompt tokens computed"), ("prompt_tokens", "prompt tokens sent"),
        ("forced_openings_sent", "harness openings reach the model")]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, default=Path("data/enron.db"), help="mail store (default data/enron.db)")
    ap.add_argument("--questions", type=Path, default=Path("runs/cpu-demo/data/val.jsonl"),
                    help="question file; default the validation split of `inboxrl train --config "
                         "configs/cpu-demo.yaml --split-only`")
    ap.add_argument("--limit", type=int, help="only the first N questions")
    ap.add_argument("--config", type=Path, default=lc.REPO / "configs" / "cpu-demo.yaml",
                    help="agent config (its agent section), as `inboxrl eval --config`")
    ap.add_argument("--harness", choices=["free", "guided"], help="override the config's harness, both engines")
    ap.add_argument("--judge", default="lexical", help="judge spec, as `inboxrl eval --judge`")
    ap.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    ap.add_argument("--threads", type=int, default=2, help="threads of both engines")
    ap.add_argument("--local-model", default=LOCAL_MODEL, help="in-process model spec (the GGUF's model)")
    ap.add_argument("--dtype", default="auto", help="in-process engine: INBOXRL_DTYPE (auto as the baselines)")
    ap.add_argument("--local-batch", type=int, default=8, help="in-process episodes in one batch (eval's "
                                                               "--concurrency for a local model)")
    ap.add_argument("--concurrency", type=int, default=1, help="requests in flight to llama.cpp's server")
    ap.add_argument("--n-ctx", type=int, default=8192, help="llama.cpp context (its server's default is 2048, "
                                                            "shorter than a 5-turn episode with 3,000-char bodies)")
    ap.add_argument("--logits-all", action="store_true", help="the server's own default: logits of every prompt "
                                                                "token (slower prefill; only logprobs need them)")
    ap.add_argument("--gguf", type=Path, help="GGUF to serve (default: the bundled Qwen, as the project finds it)")
    ap.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    ap.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the server")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds one request may take")
    ap.add_argument("--out", type=Path, help="trajectories, metrics and server log (default "
                                             "runs/bench-llamacpp-eval/<UTC date>; must be new)")
    ap.add_argument("--results-dir", type=Path, default=lc.RESULTS)
    args = ap.parse_args(argv)
    for name in ("limit", "threads", "local_batch", "concurrency", "n_ctx"):
        v = getattr(args, name)
        if v is not None and v < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.out is None:
        args.out = Path("runs") / "bench-llamacpp-eval" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return args


def fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def engine_summary(metrics: dict[str, Any], trajectories: list[Any], wall_s: float, load_s: float,
                   engine_timings: dict[str, Any]) -> dict[str, Any]:
    """One engine's column: counts and rates from `inboxrl eval`'s metrics, tokens from its trajectories, speed from
    the wall time and the engine's own timings."""
    n = int(metrics.get("n_scored") or 0)
    episodes = len(trajectories)

    def count(rate_key: str) -> int | None:
        r = metrics.get(rate_key)
        return round(r * n) if isinstance(r, (int, float)) and n else None

    sampled = sum(t.completion_tokens for t in trajectories)
    return {
        "episodes": episodes, "scored": n,
        "right": count("accuracy"), "accuracy": metrics.get("accuracy"),
        "accuracy_ci95": [metrics.get("accuracy_ci95_lo"), metrics.get("accuracy_ci95_hi")],
        "wrong": count("hallucination_rate"), "dont_know": count("dont_know_rate"),
        "format_error_episodes": count("format_error_rate"),
        "format_errors": sum((metrics.get("format_errors") or {}).values()),
        "out_of_turns": count("out_of_turns_rate"), "mean_reward": metrics.get("mean_reward"),
        "stop_reasons": metrics.get("stop_reasons"), "harness": metrics.get("harness"),
        "wall_s": round(wall_s, 1), "s_per_episode": round(wall_s / episodes, 1) if episodes else None,
        "latency_p50_s": metrics.get("latency_p50_s"), "load_s": round(load_s, 1),
        "sampled_tokens": sampled, "prompt_tokens": sum(t.prompt_tokens for t in trajectories),
        "sampled_tok_s": sampled / wall_s if wall_s > 0 else None,
        "decode_tok_s": engine_timings.get("decode_tok_s"), "prefill_tok_s": engine_timings.get("prefill_tok_s"),
        "prefill_tokens_computed": engine_timings.get("prefill_tokens"), "engine_timings": engine_timings,
    }


def _eval(qs: list[Any], spec: str, args: argparse.Namespace, cfg: Any, judge: Any, out: Path,
          concurrency: int, **kw: Any) -> tuple[dict[str, Any], list[Any], float]:
    from inboxrl.evaluation.run import TRAJECTORIES, evaluate
    from inboxrl.trajectory import read_jsonl

    done = [0]

    def progress(name: str, t: Any) -> None:
        done[0] += 1
        r = getattr(t, "rubric", None)
        mark = "right" if r is not None and r.attempted_answer and r.answer_correct else (
            getattr(t, "stop_reason", None) or "backend error")
        print(f"  {name}: {done[0]}/{len(qs)} {mark}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    res = evaluate(qs, [spec], args.db, judge, cfg, out, concurrency=concurrency, on_progress=progress, **kw)
    wall = time.perf_counter() - t0
    name = next(iter(res.models))
    trajs = [t for t in read_jsonl(out / TRAJECTORIES) if t.model == name]
    return res.models[name], trajs, wall


def run_llamacpp(qs: list[Any], args: argparse.Namespace, cfg: Any, judge: Any) -> dict[str, Any]:
    gguf = args.gguf or lc.bundled_gguf()
    port = args.port or lc.free_port()
    out = args.out / "llamacpp"
    log = out / "server.log"
    cmd = lc.llamacpp_server_command(gguf, port, threads=args.threads, n_ctx=args.n_ctx, alias=ENDPOINT_MODEL,
                                     logits_all=args.logits_all)
    print(f"llama.cpp: starting {' '.join(cmd[1:4])} on 127.0.0.1:{port} (log {log})", file=sys.stderr, flush=True)
    with lc.serving(cmd, port, log, ready_timeout_s=args.ready_timeout,
                    env=lc.llamacpp_server_env("127.0.0.1", port)) as srv:
        print(f"llama.cpp: ready in {srv.ready_s:.1f} s; {len(qs)} episodes, {args.concurrency} at a time",
              file=sys.stderr, flush=True)
        metrics, trajs, wall = _eval(qs, ENDPOINT_MODEL, args, cfg, judge, out, args.concurrency,
                                     backend_opts={"base_url": f"{srv.url}/v1", "timeout_s": args.timeout})
    timings = lc.parse_timings(log.read_text(encoding="utf-8", errors="replace"))
    s = engine_summary(metrics, trajs, wall, srv.ready_s, timings)
    return {**s, "engine": "llama.cpp server (llama-cpp-python)", "model": ENDPOINT_MODEL, "gguf": str(gguf),
            "server_command": cmd, "tool_mode": "json", "concurrency": args.concurrency,
            "forced_openings_sent": False, "out": str(out)}


def run_local(qs: list[Any], args: argparse.Namespace, cfg: Any, judge: Any) -> dict[str, Any]:
    from inboxrl.models.hardware import precision_record
    from inboxrl.models.registry import load_backend

    os.environ["INBOXRL_DTYPE"] = args.dtype
    out = args.out / "local"
    totals = {"prefill_tokens": 0, "sampled_tokens": 0, "prefill_s": 0.0, "decode_s": 0.0, "batches": 0}
    load = [0.0]

    def factory(spec: str) -> Any:
        t0 = time.perf_counter()
        b = load_backend(spec, threads=args.threads, shared=False)
        load[0] = time.perf_counter() - t0
        inner = b.generate

        def generate(requests: list[Any]) -> list[Any]:  # counts what the engine did, call by call
            out_ = inner(requests)
            for k in totals:
                totals[k] += b.last_stats.get(k, 0)
            return out_

        b.generate = generate
        return b

    print(f"in-process: {args.local_model}, INBOXRL_DTYPE={args.dtype}, {len(qs)} episodes, batch "
          f"{args.local_batch}", file=sys.stderr, flush=True)
    metrics, trajs, wall = _eval(qs, args.local_model, args, cfg, judge, out, args.local_batch,
                                 backend_factory=factory)
    timings = {**totals,
               "prefill_tok_s": totals["prefill_tokens"] / totals["prefill_s"] if totals["prefill_s"] else None,
               "decode_tok_s": totals["sampled_tokens"] / totals["decode_s"] if totals["decode_s"] else None}
    wall -= load[0]  # the load happens inside evaluate(); reported apart, as the server's start is
    s = engine_summary(metrics, trajs, wall, load[0], timings)
    return {**s, "engine": "in-process (LocalBackend)", "model": args.local_model, "precision": precision_record(),
            "tool_mode": "json", "batch": args.local_batch, "forced_openings_sent": True, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "llamacpp" in args.engines:
        try:
            lc.require(lc.SERVER_MODULES)
        except lc.MissingLlamaCpp as e:
            return fail(str(e))
    if not args.db.is_file():
        return fail(f"no mail store at {args.db}: pass --db (built by `inboxrl ingest`)")
    if not args.questions.is_file():
        return fail(f"no question file at {args.questions}: pass --questions, e.g. the validation split that "
                    "`inboxrl train --config configs/cpu-demo.yaml --split-only` writes to runs/cpu-demo/data/val.jsonl")
    for e in args.engines:
        if (args.out / ("llamacpp" if e == "llamacpp" else "local") / "trajectories.jsonl").exists():
            return fail(f"{args.out} already holds a run: pass a new --out (a resumed run reports wrong times)")

    from inboxrl.agent.config import load_agent_config
    from inboxrl.configfile import ConfigFileError
    from inboxrl.evaluation.run import EvalAborted
    from inboxrl.judge.registry import load_judge
    from inboxrl.models.base import BackendError
    from inboxrl.questions.schema import QuestionFileError, load_questions

    try:
        qs = load_questions(args.questions)
        cfg = load_agent_config(args.config)
    except (QuestionFileError, ConfigFileError) as e:
        return fail(str(e))
    qs = qs[:args.limit] if args.limit else qs
    if not qs:
        return fail("no questions to run")
    if args.harness:
        cfg = cfg.with_harness(args.harness)
    # One harness for both: the local model's default, were the config silent (an endpoint's default differs).
    cfg = cfg.with_harness_default(LOCAL_MODEL).model_copy(update={"tool_mode": "json"})
    judge = load_judge(args.judge)

    engines: dict[str, Any] = {}
    doc = {**lc.run_record(argv), "benchmark": "llamacpp-eval",
           "questions": {"file": str(args.questions), "n": len(qs), "ids": [q.id for q in qs]},
           "db": str(args.db), "config": str(args.config), "harness": cfg.harness_name(), "judge": args.judge,
           "threads": args.threads, "agent_config": cfg.model_dump(mode="json"), "engines": engines,
           "notes": [NOTE_WEIGHTS, NOTE_HARNESS]}
    path = lc.result_path("llamacpp-eval", args.results_dir)
    failed = False
    for e in args.engines:
        try:
            engines[e] = (run_llamacpp if e == "llamacpp" else run_local)(qs, args, cfg, judge)
        except (lc.ServerError, EvalAborted, BackendError) as err:  # the other engine still runs
            print(f"error: {e}: {err} (finished trajectories are in {args.out})", file=sys.stderr)
            engines[e] = {"error": str(err)}
            failed = True
        lc.write_result(doc, "llamacpp-eval", path=path)  # after each engine: a later failure keeps this one
    print(lc.markdown_table(["", *engines], [[label, *(engines[e].get(k) for e in engines)] for k, label in ROWS]))
    print(f"\n{len(qs)} questions from {args.questions}, harness {cfg.harness_name()}, judge {args.judge}; "
          f"written {path}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
