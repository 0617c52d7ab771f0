"""Ingest benchmark: the whole shared Enron corpus into a fresh store; time, messages/s, store size.

python benchmarks/bench_ingest.py                       # full corpus -> data/enron.db, 2 workers python
benchmarks/bench_ingest.py --peer kaminski-v,lay-k,kean-s   # plus 1-vs-2-worker ratio on a subset

The store is built under a temporary name and moved to --db at the end, so readers of an existing
data/enron.db never see a half-built file. The machine's load average is printed with the figures: this box is
shared, and a run next to other CPU-heavy jobs is slower in proportion.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import sys
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from inboxrl.store.ingest import IngestConfig, ingest


def _cpu_s() -> tuple[float, float]:
    """CPU seconds of this (the writing) process and of its finished children (the parser workers)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _run(sources: list[Path], db: Path, cfg: IngestConfig) -> dict[str, object]:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    load0 = os.getloadavg()[0]
    cpu0 = _cpu_s()
    s = ingest(sources, db, config=cfg)
    cpu1 = _cpu_s()
    main_cpu, workers_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = sum(Path(f"{db}{x}").stat().st_size for x in ("", "-wal") if Path(f"{db}{x}").exists())
    return {
        "workers": cfg.workers,
        "fts": cfg.fts,
        "elapsed_s": s.elapsed_s,
        "msgs_per_s": s.msgs_per_s,
        "cpu_s": round(main_cpu + workers_cpu, 1),
        "cpu_writer_s": round(main_cpu, 1),
        "cpu_workers_s": round(workers_cpu, 1),
        "load_avg_start": round(load0, 2),
        "load_avg_end": round(os.getloadavg()[0], 2),
        "messages_read": s.messages_read,
        "stored": s.stored,
        "duplicates": s.duplicates,
        "skipped": s.skipped,
        "skip_reasons": s.skip_reasons,
        "participants": s.store_participants,
        "store_mb": round(size / 1e6, 1),
        "phase_s": s.phase_s,
        "writer_cpu_s": s.writer_cpu_s,
    }


def main() -> None:
    shared = Path(os.environ.get("INBOXRL_SHARED", REPO.parent / "shared"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=shared / "data" / "enron-mbox")
    ap.add_argument("--db", type=Path, default=REPO / "data" / "enron.db")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fts", choices=["inline", "rebuild"], default="rebuild")
    ap.add_argument("--peer", default="", help="comma-separated custodians: also time 1 vs N workers on them")
    ap.add_argument("--skip-full", action="store_true", help="only the --peer comparison")
    args = ap.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"corpus not found: {args.corpus} (set INBOXRL_SHARED)")

    results: dict[str, object] = {
        "date": date.today().isoformat(),
        "command": " ".join(["python"] + sys.argv),
        "cores": os.cpu_count(),
    }
    if args.peer:
        subset = [args.corpus / c for c in args.peer.split(",")]
        tmp = args.db.with_name(".bench-peer.db")
        one = _run(subset, tmp, IngestConfig(workers=1, fts=args.fts))
        many = _run(subset, tmp, IngestConfig(workers=args.workers, fts=args.fts))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
        results["peer"] = {
            "custodians": args.peer,
            "workers_1": one,
            f"workers_{args.workers}": many,
            "speedup": round(one["elapsed_s"] / many["elapsed_s"], 2),
        }
    if not args.skip_full:
        args.db.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.db.with_name(f".{args.db.name}.building-{os.getpid()}")
        full = _run([args.corpus], tmp, IngestConfig(workers=args.workers, fts=args.fts))
        conn = sqlite3.connect(tmp)
        conn.execute("PRAGMA journal_mode=DELETE")  # one self-contained file: no -wal/-shm to move along
        conn.close()
        os.replace(tmp, args.db)  # readers of an old store keep their file; new readers get the whole new one
        for suffix in ("-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        full["db"] = str(args.db)
        results["full"] = full
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
