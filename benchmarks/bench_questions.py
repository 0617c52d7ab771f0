"""Question generation from three complete shared mailboxes with the bundled 0.5B model, then `inboxrl eval`.

    python benchmarks/bench_questions.py                 # qwen 0.5B, SmolLM2 as the peer, 2 batches of 5 per inbox
    python benchmarks/bench_questions.py --no-peer --max-batches 2

Runs the real commands (`inboxrl questions generate/stats`, `inboxrl eval`) as subprocesses and writes `report.md`
+ `report.json` in the output folder. The call cache lives in the output folder, so a killed benchmark resumes;
time per batch counts only calls that reached the model (delete the folder for a cold run).
The store is `data/questions-bench.db`, the three mailboxes ingested on first use (`--db` for another store).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("INBOXRL_SHARED", REPO.parent / "shared")).resolve()
ARTE = SHARED / "data" / "art-e-questions" / "kaminski-train.jsonl"
# Complete custodians (not in the "missing" list of shared/README.md) with distinct addresses, small to mid size.
MAILBOXES = {"allen-p": "phillip.allen@enron.com", "heard-m": "marie.heard@enron.com",
             "mckay-b": "brad.mckay@enron.com"}


def run(cmd: list[str], log: list[dict]) -> tuple[int, str, float]:
    t0 = time.perf_counter()
    print("$", shlex.join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    dt = time.perf_counter() - t0
    log.append({"cmd": shlex.join(cmd), "rc": p.returncode, "s": round(dt, 1)})
    if p.returncode != 0:
        print(p.stderr[-2000:], file=sys.stderr)
    return p.returncode, p.stdout, dt


def ensure_db(db: Path | None) -> Path:
    """The three mailboxes in a store of their own (built in seconds), so batches do not change when the
    whole-corpus store is rebuilt; `--db data/enron.db` runs on the whole corpus instead."""
    if db is not None:
        return db
    own = REPO / "data" / "questions-bench.db"
    if not own.exists():
        from inboxrl.store.ingest import ingest

        ingest([SHARED / "data" / "enron-mbox" / c for c in MAILBOXES], own, workers=1)
    return own


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path)
    ap.add_argument("--model", default="local/qwen2.5-coder-0.5b")
    ap.add_argument("--peer", default="local/smollm2-135m")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--batch-size", type=int, default=5)
    ap.add_argument("--max-batches", type=int, default=2)
    ap.add_argument("--email-chars", type=int, default=500)
    ap.add_argument("--max-tokens", type=int, default=384)
    ap.add_argument("--eval-limit", type=int, default=3)
    ap.add_argument("--eval-max-turns", type=int, default=4)
    ap.add_argument("--out-dir", type=Path, default=REPO / "runs" / "bench-questions")
    args = ap.parse_args()

    db = ensure_db(args.db)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    log: list[dict] = []
    report: dict = {"db": str(db), "mailboxes": MAILBOXES, "runs": {}, "commands": log}
    models = [args.model] + ([] if args.no_peer else [args.peer])
    files = []
    for model in models:
        name = model.split("/")[-1]
        qfile = out / f"{name}.jsonl"
        inboxes = [w for a in MAILBOXES.values() for w in ("--inbox", a)]
        cmd = ["inboxrl", "questions", "generate", "--db", str(db), *inboxes,
               "--model", model, "--out", str(qfile), "--batch-size", str(args.batch_size),
               "--max-batches", str(args.max_batches), "--email-chars", str(args.email_chars),
               "--max-tokens", str(args.max_tokens), "--split", "inbox", "--support-check", "lexical",
               "--json"]
        rc, stdout, dt = run(cmd, log)
        if rc != 0:
            report["runs"][model] = {"error": f"exit {rc}"}
            continue
        summary = json.loads(stdout)
        report["runs"][model] = {"summary": summary, "wall_s": round(dt, 1)}
        files.append(qfile)

    rc, stdout, _ = run(["inboxrl", "questions", "stats", str(ARTE), *map(str, files), "--json"], log)
    report["stats"] = json.loads(stdout) if rc == 0 else None

    main_file = out / f"{args.model.split('/')[-1]}.jsonl"
    if main_file in files and json.loads((out / f"{main_file.name}.stats.json").read_text())["questions"]:
        eval_dir = out / "eval"
        rc, stdout, dt = run(["inboxrl", "eval", "--db", str(db), "--questions", str(main_file), "--model",
                              args.model, "--judge", "lexical", "--out", str(eval_dir), "--limit",
                              str(args.eval_limit), "--max-turns", str(args.eval_max_turns), "--concurrency", "2",
                              "--json"], log)
        report["eval"] = {"rc": rc, "wall_s": round(dt, 1), "metrics": json.loads(stdout) if rc == 0 else None}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))


def markdown(r: dict) -> str:
    lines = [f"Store: `{r['db']}`; inboxes: {', '.join(r['mailboxes'].values())}.", ""]
    for model, run_ in r["runs"].items():
        if "summary" not in run_:
            lines.append(f"- {model}: {run_['error']}")
            continue
        s = run_["summary"]
        t = s["timing"]
        lines += [f"### {model}", "",
                  (f"{s['questions']} questions kept; {t['model_calls']} batches sent, {t['cache_hits']} from the cache; "
                  f"{t['s_per_batch_incl_cached']} s per batch (all batches, cached ones at their recorded time); "
                  f"{t['prompt_tokens']} prompt + {t['completion_tokens']} completion tokens sent now; "
                  f"wall {run_['wall_s']} s."), "",
                  "| stage | unit | seen | kept | dropped |", "|---|---|---|---|---|"]
        for st in s["stages"]:
            drops = ", ".join(f"{k} {v}" for k, v in st["dropped"].items()) or "-"
            lines.append(f"| {st['name']} | {st['unit']} | {st['seen']} | {st['kept']} | {drops} |")
        lines.append("")
    if r.get("stats"):
        from inboxrl.questions.cli import stats_rows

        names = list(r["stats"])
        rows = [stats_rows(r["stats"][n]) for n in names]
        lines += ["| | " + " | ".join(Path(n).name for n in names) + " |", "|---" * (len(names) + 1) + "|"]
        for i, (label, _) in enumerate(rows[0]):
            lines.append(f"| {label.strip()} | " + " | ".join(x[i][1] for x in rows) + " |")
        lines.append("")
    if r.get("eval"):
        lines += ["Eval: " + json.dumps(r["eval"]["metrics"])[:1500] if r["eval"]["metrics"] else
                  f"Eval failed (exit {r['eval']['rc']})", ""]
    lines += ["Commands:", ""] + [f"    {c['cmd']}   # exit {c['rc']}, {c['s']} s" for c in r["commands"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
