"""The viewer at scale: a run of N episodes (default 10,000), how long until its question list is served, and how
much memory the index holds.

    python benchmarks/bench_viewer.py [--episodes 10000] [--template tests/data/viewer/run-guided/trajectories.jsonl]

Each episode is a copy of a real trajectory (the committed fixture's first line) with its own question id and an
outcome drawn in turn, so lines have the size of real ones. Prints JSON: file size, the index build (start-up) time,
the first question page and a filtered page (wrong answers, with a text search) through the real app, the peak
memory of the process before and after start-up, and the same figures for reading every trajectory whole
(`read_jsonl` into a list) as the peer the index replaces.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUTCOMES = [  # rubric fields that make each outcome
    {"attempted_answer": True, "answer_correct": True},
    {"attempted_answer": True, "answer_correct": False},
    {"said_dont_know": True},
    {"ran_out_of_turns": True},
]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_run(template: Path, out: Path, n: int) -> Path:
    rec = json.loads(template.read_text(encoding="utf-8").splitlines()[0])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "trajectories.jsonl"
    question = rec["question"]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            rec["question_id"] = f"bench-{i:05d}"
            rec["question"] = f"Question {i}: {question}"
            r = dict(rec.get("rubric") or {})
            r.update({"attempted_answer": False, "answer_correct": False, "said_dont_know": False,
                      "ran_out_of_turns": False, **OUTCOMES[i % len(OUTCOMES)]})
            rec["rubric"] = r
            f.write(json.dumps(rec) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--template", type=Path,
                    default=REPO / "tests" / "data" / "viewer" / "run-guided" / "trajectories.jsonl")
    a = ap.parse_args()
    from fastapi.testclient import TestClient

    from inboxrl.trajectory import read_jsonl
    from inboxrl.viewer.app import create_app

    with tempfile.TemporaryDirectory() as d:
        path = make_run(a.template, Path(d) / "run", a.episodes)
        size_mb = path.stat().st_size / 1e6
        gc.collect()
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        app = create_app([path.parent])
        t_index = time.perf_counter() - t0
        rss1 = _rss_mb()
        client = TestClient(app)
        t0 = time.perf_counter()
        r1 = client.get("/questions")
        t_page = time.perf_counter() - t0
        t0 = time.perf_counter()
        r2 = client.get("/questions", params={"show": "wrong", "q": "question 99", "page_no": 1})
        t_filter = time.perf_counter() - t0
        t0 = time.perf_counter()
        r3 = client.get("/episode/0/9999" if a.episodes >= 10_000 else "/episode/0/0")
        t_episode = time.perf_counter() - t0
        assert r1.status_code == r2.status_code == r3.status_code == 200
        del app, client
        gc.collect()
        t0 = time.perf_counter()
        whole = list(read_jsonl(path))
        t_whole = time.perf_counter() - t0
        rss2 = _rss_mb()
        out = {
            "episodes": a.episodes, "file_mb": round(size_mb, 1),
            "index_build_s": round(t_index, 3), "first_page_s": round(t_page, 3),
            "filtered_page_s": round(t_filter, 3), "episode_page_s": round(t_episode, 3),
            "peak_rss_mb_before": round(rss0, 1), "peak_rss_mb_after_index": round(rss1, 1),
            "peer_read_all_s": round(t_whole, 3), "peer_peak_rss_mb": round(rss2, 1), "peer_n": len(whole),
            "python": sys.version.split()[0],
        }
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
