"""Loopback load test of `inboxrl serve`: concurrent /v1/chat/completions and /v1/ask against a bundled model.

    python benchmarks/bench_serve.py --db data/enron.db                       # SmolLM2, 8 chats + 4 asks, 4 at once
    python benchmarks/bench_serve.py --db data/enron.db --model local/qwen2.5-coder-0.5b --chats 4 --asks 2

Bounded in count and time: a fixed number of requests, each with a timeout, to a server on 127.0.0.1 in this
process (a real uvicorn server, called over HTTP with the `openai` SDK and urllib). Prints throughput, latency
p50/p99 (numpy) and errors per route, and how many backend batches the requests were merged into.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

QUESTIONS = ["When is the ALP Project presentation at Enron?", "When is the Durasoft COM course?",
             "Who is attending the ALP presentation?", "What did Giuseppe send?"]


def main() -> None:
    import numpy as np
    from openai import OpenAI

    from inboxrl.agent.config import AgentConfig
    from inboxrl.models.registry import load_backend
    from serve_helpers import call, running_server

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--model", default="local/smollm2-135m")
    ap.add_argument("--chats", type=int, default=8)
    ap.add_argument("--asks", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=900.0, help="per request, seconds")
    args = ap.parse_args()

    backend = load_backend(args.model)
    cfg = AgentConfig(max_turns=3, max_tokens_per_turn=48)
    out = Path("runs/bench-serve")
    with running_server(args.db, {args.model: backend}, out, cfg=cfg, max_batch=args.concurrency) as (url, state):
        client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=args.timeout)

        def chat(i: int) -> tuple[str, float, bool]:
            t0 = time.perf_counter()
            try:
                client.chat.completions.create(model=args.model, max_tokens=args.max_tokens, temperature=0,
                                               messages=[{"role": "user", "content": f"Say a word about {i}."}])
                return "chat", time.perf_counter() - t0, True
            except Exception:  # noqa: BLE001 - counted as an error
                return "chat", time.perf_counter() - t0, False

        def ask(i: int) -> tuple[str, float, bool]:
            t0 = time.perf_counter()
            status, _, _ = call(url + "/v1/ask", {"inbox": "vince.kaminski@enron.com", "date": "2001-05-10",
                                                  "question": QUESTIONS[i % len(QUESTIONS)]}, timeout=args.timeout)
            return "ask", time.perf_counter() - t0, status == 200

        jobs = [(chat, i) for i in range(args.chats)] + [(ask, i) for i in range(args.asks)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            results = list(pool.map(lambda j: j[0](j[1]), jobs))
        wall = time.perf_counter() - t0
        served = next(iter(state.models.values())).backend
        report: dict[str, object] = {"model": args.model, "concurrency": args.concurrency, "wall_s": round(wall, 1),
                                     "backend_batches": served.batches,
                                     "mean_batch": round(served.batched_requests / max(served.batches, 1), 2)}
        for route in ("chat", "ask"):
            lat = np.asarray([s for r, s, ok in results if r == route and ok])
            errors = sum(1 for r, _, ok in results if r == route and not ok)
            n = sum(1 for r, _, _ in results if r == route)
            if n:
                report[route] = {"requests": n, "errors": errors, "per_min": round(60 * (n - errors) / wall, 2),
                                 "p50_s": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
                                 "p99_s": round(float(np.percentile(lat, 99)), 2) if lat.size else None}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
