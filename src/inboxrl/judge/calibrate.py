"""Measuring a judge against hand-labelled verdicts.

A reward is only as good as the judge behind it, and the two ways a judge can be wrong cost differently in RL:
a *false accept* rewards a wrong answer (the policy learns to hallucinate confidently), a *false reject* withholds
reward from a right one (slower learning). So the report gives both rates, not just agreement:

- false-accept rate = rows labelled wrong that the judge accepted / rows labelled wrong;
- false-reject rate = rows labelled right that the judge rejected / rows labelled right.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from inboxrl.judge.base import Judge, Verdict

SHIPPED_FILE = "judge_calibration.jsonl"


class CalibrationRow(BaseModel):
    question: str
    golden_answer: str
    candidate: str
    label: bool
    kind: str = ""
    question_id: str | None = None


class CalibrationFileError(ValueError):
    """A calibration file that cannot be read; the message names the file and line."""


def shipped_path() -> Path:
    """The labelled file that ships with the package."""
    return Path(str(resources.files("inboxrl") / "data" / SHIPPED_FILE))


def load_calibration(path: str | Path | None = None) -> list[CalibrationRow]:
    p = Path(path) if path is not None else shipped_path()
    if not p.is_file():
        raise CalibrationFileError(f"calibration file not found: {p}")
    rows: list[CalibrationRow] = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(CalibrationRow.model_validate(json.loads(line)))
            except (ValueError, ValidationError) as e:
                first = str(e).splitlines()
                detail = "; ".join(s.strip() for s in first[1:3]) if isinstance(e, ValidationError) else first[0]
                raise CalibrationFileError(f"{p}:{lineno}: not a calibration row ({detail})") from e
    if not rows:
        raise CalibrationFileError(f"{p}: no rows")
    return rows


@dataclass
class CalibrationReport:
    judge: str
    n: int
    true_accept: int
    false_accept: int
    true_reject: int
    false_reject: int
    seconds: float
    per_kind: dict[str, dict[str, int]] = field(default_factory=dict)  # kind -> {"n", "agree"}
    errors: list[dict[str, Any]] = field(default_factory=list)  # the disagreements
    judge_stats: dict[str, int] = field(default_factory=dict)  # e.g. the LLM judge's unparseable count

    @property
    def agreement(self) -> float:
        return (self.true_accept + self.true_reject) / self.n if self.n else 0.0

    @property
    def false_accept_rate(self) -> float:
        neg = self.false_accept + self.true_reject
        return self.false_accept / neg if neg else 0.0

    @property
    def false_reject_rate(self) -> float:
        pos = self.true_accept + self.false_reject
        return self.false_reject / pos if pos else 0.0

    def to_dict(self, with_errors: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "judge": self.judge, "n": self.n, "agreement": round(self.agreement, 4),
            "false_accept_rate": round(self.false_accept_rate, 4),
            "false_reject_rate": round(self.false_reject_rate, 4),
            "confusion": {"true_accept": self.true_accept, "false_accept": self.false_accept,
                          "true_reject": self.true_reject, "false_reject": self.false_reject},
            "labelled_right": self.true_accept + self.false_reject,
            "labelled_wrong": self.false_accept + self.true_reject,
            "per_kind": self.per_kind, "seconds": round(self.seconds, 2), "judge_stats": self.judge_stats,
        }
        if with_errors:
            d["errors"] = self.errors
        return d


def calibrate(judge: Judge, rows: Sequence[CalibrationRow], batch_size: int = 16,
              on_progress: Callable[[int], None] | None = None) -> CalibrationReport:
    """Judges every row (in batches, so a model judge generates several at once) and compares with the labels."""
    t0 = time.perf_counter()
    verdicts: list[Verdict] = []
    for s in range(0, len(rows), batch_size):
        chunk = rows[s:s + batch_size]
        got = judge.judge_many([(r.question, r.golden_answer, r.candidate) for r in chunk])
        if len(got) != len(chunk):
            raise RuntimeError(f"judge returned {len(got)} verdicts for {len(chunk)} rows")
        verdicts += got
        if on_progress:
            on_progress(len(chunk))
    rep = CalibrationReport(judge=str(getattr(judge, "name", judge)), n=len(rows), true_accept=0, false_accept=0,
                            true_reject=0, false_reject=0, seconds=time.perf_counter() - t0)
    for i, (r, v) in enumerate(zip(rows, verdicts)):
        k = rep.per_kind.setdefault(r.kind or "?", {"n": 0, "agree": 0})
        k["n"] += 1
        if v.accept and r.label:
            rep.true_accept += 1
        elif v.accept:
            rep.false_accept += 1
        elif r.label:
            rep.false_reject += 1
        else:
            rep.true_reject += 1
        if v.accept == r.label:
            k["agree"] += 1
        else:
            rep.errors.append({"row": i + 1, "kind": r.kind, "label": r.label, "judge_accept": v.accept,
                               "question": r.question, "golden_answer": r.golden_answer, "candidate": r.candidate,
                               "reason": v.reason})
    stats = getattr(judge, "stats", None)
    if isinstance(stats, dict):
        rep.judge_stats = {k: int(v) for k, v in stats.items()}
    return rep
