"""The run directory's log: `RUN_DIR/metrics.jsonl`, one JSON object per line.

Records have a `kind`: "train" (one per logging step: TRL's loss, reward, lengths, and our episode numbers),
"validation" (the `inboxrl eval` metrics of the validation questions at a step), and "summary" (end of a `train()`
call). Every record has the optimiser `step` it describes and a wall-clock `time`.

A resumed run first rolls the log back to the checkpoint it resumes from (`truncate_after`), so that a step done
after the last checkpoint by the killed run and done again by the resumed run appears once, not twice.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy / torch scalars
        try:
            return _clean(v.item())
        except (TypeError, ValueError):
            return str(v)
    return v


def append(run_dir: str | Path, record: dict[str, Any]) -> None:
    p = Path(run_dir) / METRICS_FILE
    p.parent.mkdir(parents=True, exist_ok=True)
    rec = {"time": round(time.time(), 3), **_clean(record)}
    with p.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read(run_dir_or_file: str | Path, kind: str | None = None) -> Iterator[dict[str, Any]]:
    """Records in file order; a torn last line (a kill mid-write) is skipped."""
    p = Path(run_dir_or_file)
    if p.is_dir():
        p = p / METRICS_FILE
    if not p.exists():
        return
    with p.open(encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and (kind is None or rec.get("kind") == kind):
                yield rec


def truncate_after(run_dir: str | Path, step: int) -> int:
    """Drops records of steps after `step` (and torn lines); returns how many were dropped."""
    p = Path(run_dir) / METRICS_FILE
    if not p.exists():
        return 0
    keep, dropped = [], 0
    total = sum(1 for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
    for rec in read(p):
        if int(rec.get("step", 0)) > step:
            dropped += 1
        else:
            keep.append(rec)
    dropped += total - len(keep) - dropped  # torn lines
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in keep:
            f.write(json.dumps(rec, default=str) + "\n")
    os.replace(tmp, p)
    return dropped
