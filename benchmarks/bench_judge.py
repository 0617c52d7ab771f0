"""Judge calibration figures: each judge against the shipped hand-labelled file.

    python benchmarks/bench_judge.py                       # lexical + both bundled models
    python benchmarks/bench_judge.py --judge lexical --judge local/smollm2-135m --limit 40

Model judges run with a fresh, temporary verdict cache (so the time is the real cost of judging) at temperature 0.
Prints a Markdown table for docs/benchmarks.md and writes the full reports (with every disagreement) as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DEFAULT_JUDGES = ["lexical", "local/smollm2-135m", "local/qwen2.5-coder-0.5b"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--judge", action="append", help="judge spec (repeatable); default: lexical and both bundled")
    ap.add_argument("--file", default=None, help="labelled JSONL (default: the shipped file)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="benchmarks/results/judge_calibration.json")
    args = ap.parse_args()

    from inboxrl.judge.calibrate import calibrate, load_calibration
    from inboxrl.judge.registry import load_judge

    rows = load_calibration(args.file)
    if args.limit:
        rows = rows[: args.limit]
    judges = args.judge or DEFAULT_JUDGES
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in judges:
            t0 = time.perf_counter()
            opts = {} if spec == "lexical" else {"cache_path": Path(tmp) / f"{spec.replace('/', '_')}.sqlite"}
            judge = load_judge(spec, **opts)
            load_s = time.perf_counter() - t0
            done = 0

            def progress(n: int, spec: str = spec) -> None:
                nonlocal done
                done += n
                print(f"  {spec}: {done}/{len(rows)}", file=sys.stderr, flush=True)

            rep = calibrate(judge, rows, batch_size=args.batch_size, on_progress=progress)
            d = rep.to_dict(with_errors=True)
            d["load_seconds"] = round(load_s, 1)
            reports.append(d)
            print(f"{spec}: agreement {rep.agreement:.1%}, false-accept {rep.false_accept_rate:.1%}, "
                  f"false-reject {rep.false_reject_rate:.1%}, {rep.seconds:.0f} s", file=sys.stderr, flush=True)

    meta = {"date": dt.date.today().isoformat(), "rows": len(rows), "python": platform.python_version(),
            "threads": os.environ.get("OMP_NUM_THREADS", "default"), "cpus": os.cpu_count(),
            "command": "python " + " ".join(sys.argv)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "reports": reports}, indent=2) + "\n", encoding="utf-8")

    print("| judge | agreement | false-accept rate | false-reject rate | TA / FA / TR / FR | unparseable "
          "| judging time (s) | s per row |")
    print("|---|---|---|---|---|---|---|---|")
    for d in reports:
        c = d["confusion"]
        unp = d["judge_stats"].get("unparseable", 0) if d["judge_stats"] else "-"
        print(f"| {d['judge']} | {d['agreement']:.1%} | {d['false_accept_rate']:.1%} | {d['false_reject_rate']:.1%} "
              f"| {c['true_accept']} / {c['false_accept']} / {c['true_reject']} / {c['false_reject']} | {unp} "
              f"| {d['seconds']:.1f} | {d['seconds'] / max(d['n'], 1):.2f} |")
    print(f"\n{meta['rows']} rows, {meta['date']}, full reports in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
