"""Judge calibration figures: each judge against the shipped hand-labelled file, or against several sheets.

    python benchmarks/bench_judge.py                       # lexical + both bundled models
    python benchmarks/bench_judge.py --judge lexical --judge local/smollm2-135m --limit 40
    python benchmarks/bench_judge.py --judge lexical --file benchmarks/results/cpu-demo-blind-labels.jsonl \
        --file benchmarks/results/judge-gaming-eval.jsonl    # blind labels beside a sheet of gaming answers

Model judges run with a fresh, temporary verdict cache (so the time is the real cost of judging) at temperature 0.
Prints a Markdown table (one row per judge and sheet) and writes the full reports (with every disagreement) as JSON.
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
    ap.add_argument("--file", action="append", help="labelled JSONL, repeatable (default: the shipped file)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", default="benchmarks/results/judge_calibration.json")
    args = ap.parse_args()

    from inboxrl.judge.calibrate import calibrate, load_calibration
    from inboxrl.judge.registry import load_judge

    sheets = [(f or "shipped", load_calibration(f)[: args.limit] if args.limit else load_calibration(f))
              for f in (args.file or [None])]
    judges = args.judge or DEFAULT_JUDGES
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in judges:
            t0 = time.perf_counter()
            opts = {} if spec == "lexical" else {"cache_path": Path(tmp) / f"{spec.replace('/', '_')}.sqlite"}
            judge = load_judge(spec, **opts)
            load_s = time.perf_counter() - t0
            for sheet, rows in sheets:
                done = 0

                def progress(n: int, spec: str = spec, total: int = len(rows)) -> None:
                    nonlocal done
                    done += n
                    print(f"  {spec}: {done}/{total}", file=sys.stderr, flush=True)

                rep = calibrate(judge, rows, batch_size=args.batch_size, on_progress=progress)
                d = rep.to_dict(with_errors=True)
                d["load_seconds"] = round(load_s, 1)
                d["file"] = sheet
                reports.append(d)
                print(f"{spec} on {sheet}: agreement {rep.agreement:.1%}, false-accept {rep.false_accept_rate:.1%}, "
                      f"false-reject {rep.false_reject_rate:.1%}, {rep.seconds:.0f} s", file=sys.stderr, flush=True)

    meta = {"date": dt.date.today().isoformat(), "rows": {name: len(rows) for name, rows in sheets},
            "python": platform.python_version(),
            "threads": os.environ.get("OMP_NUM_THREADS", "default"), "cpus": os.cpu_count(),
            "command": "python " + " ".join(sys.argv)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "reports": reports}, indent=2) + "\n", encoding="utf-8")

    print("| judge | sheet | agreement | false-accept rate | false-reject rate | TA / FA / TR / FR | unparseable "
          "| judging time (s) | s per row |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d in reports:
        c = d["confusion"]
        unp = d["judge_stats"].get("unparseable", 0) if d["judge_stats"] else "-"
        print(f"| {d['judge']} | {Path(d['file']).name} | {d['agreement']:.1%} | {d['false_accept_rate']:.1%} | {d['false_reject_rate']:.1%} "
              f"| {c['true_accept']} / {c['false_accept']} / {c['true_reject']} / {c['false_reject']} | {unp} "
              f"| {d['seconds']:.1f} | {d['seconds'] / max(d['n'], 1):.2f} |")
    print(f"\n{sum(meta['rows'].values())} rows, {meta['date']}, full reports in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
