"""Writing a generation run: the questions (ART-E field names, nothing else), the splits, the stats sidecar and the
log of every dropped item.

Files are written to a temporary name and renamed, so a killed run never leaves a half-written question file that
a later eval would silently read; what the killed run paid for is in the call cache instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inboxrl.questions.generate import GenerationResult
from inboxrl.questions.schema import Question
from inboxrl.questions.stats import question_stats

ARTE_FIELDS = ("id", "question", "answer", "message_ids", "how_realistic", "inbox_address", "query_date")


def _atomic_write(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def write_questions(path: str | Path, questions: Iterable[Question]) -> int:
    qs = list(questions)
    _atomic_write(Path(path), (json.dumps(q.model_dump(include=set(ARTE_FIELDS)), ensure_ascii=False) for q in qs))
    return len(qs)


def split_path(out: str | Path, split: str) -> Path:
    """questions.jsonl -> questions.train.jsonl"""
    p = Path(out)
    suffix = p.suffix or ".jsonl"
    return p.with_name(f"{p.stem}.{split}{suffix}")


def sidecar_path(out: str | Path) -> Path:
    p = Path(out)
    return p.with_name(p.name + ".stats.json")


def dropped_path(out: str | Path) -> Path:
    p = Path(out)
    return p.with_name(p.name + ".dropped.ndjson")  # not *.jsonl: a glob of question files must not catch it


def run_summary(result: GenerationResult, meta: dict[str, Any], splits: dict[str, list[Question]] | None,
                split_files: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        **meta,
        "questions": len(result.questions),
        "stages": [s.model_dump() for s in result.stages.values()],
        "per_inbox": {
            inbox: {
                "owner_name": result.owners.get(inbox, ""),
                "questions": result.questions_per_inbox().get(inbox, 0),
                "stages": [s.model_dump() for s in st.values()],
            }
            for inbox, st in result.per_inbox.items()
        },
        "splits": {k: {"questions": len(v), "inboxes": sorted({q.inbox_address for q in v}),
                       "file": (split_files or {}).get(k)} for k, v in (splits or {}).items()},
        "timing": result.timing,
        "stats": question_stats(result.questions),
    }


def write_run(out: str | Path, result: GenerationResult, meta: dict[str, Any],
              splits: dict[str, list[Question]] | None) -> dict[str, Any]:
    out = Path(out)
    write_questions(out, result.questions)
    split_files: dict[str, str] = {}
    for name, qs in (splits or {}).items():
        p = split_path(out, name)
        write_questions(p, qs)
        split_files[name] = str(p)
    _atomic_write(
        dropped_path(out),
        (json.dumps({"reason": r.reason.value, "inbox": r.inbox, "batch": r.batch_index, "detail": r.detail,
                     "item": r.item}, ensure_ascii=False, default=str) for r in result.rejected),
    )
    summary = run_summary(result, meta, splits, split_files)
    summary["files"] = {"questions": str(out), "dropped": str(dropped_path(out)), **split_files}
    _atomic_write(sidecar_path(out), [json.dumps(summary, indent=2, ensure_ascii=False)])
    return summary
