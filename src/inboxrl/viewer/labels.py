"""Blind labels: a reader marks answers right, wrong or borderline without seeing which run wrote them.

The sheet is a calibration file (`inboxrl judge calibrate --file SHEET` reads it; so does
`benchmarks/blind_labels.py score`): one JSON object per line with `question_id`, `question`, `golden_answer`,
`candidate`, `label` (true/false) and `kind`. Borderline is `label: true, kind: "partial"`, the convention of
`benchmarks/blind_labels.py` (counted right, and wrong in its strict count). The same answer to the same question
from several runs is one row. A sheet made by `blind_labels.py sheet` (rows with `label: null`) is filled in place.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inboxrl.viewer.index import ANSWER_CHARS

LABELS = {"right": (True, "blind"), "wrong": (False, "blind"), "borderline": (True, "partial")}
SEED = 0


def key(question_id: str, answer: str) -> str:
    """blind_labels.py's key: the same answer up to spaces and case is one row."""
    return f"{question_id}\t{' '.join(answer.split()).lower()}"


@dataclass
class Item:
    key: str
    question_id: str
    candidate: str
    column: int  # where to read the question and golden answer from
    position: int


class Sheet:
    """The label file, read once and rewritten whole (atomically) on each label: it holds at most a few thousand
    short rows, and a half-written sheet must never be left behind."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        if self.path.exists():
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except ValueError as e:
                            raise ValueError(f"{self.path}: not a label sheet ({e})") from None
                        if isinstance(row, dict):
                            self.rows.append(row)

    def labelled(self) -> set[str]:
        # The pool knows answers by their first ANSWER_CHARS (all the index keeps); so does this.
        return {key(str(r.get("question_id")), str(r.get("candidate") or "")[:ANSWER_CHARS]) for r in self.rows
                if isinstance(r.get("label"), bool)}

    def put(self, question_id: str, question: str, golden: str, candidate: str, label: str) -> None:
        value, kind = LABELS[label]
        row = {"question_id": question_id, "question": question, "golden_answer": golden,
               "candidate": candidate, "label": value, "kind": kind}
        k = key(question_id, candidate)
        for i, r in enumerate(self.rows):
            if key(str(r.get("question_id")), str(r.get("candidate") or "")) == k:
                self.rows[i] = row
                break
        else:
            self.rows.append(row)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for r in self.rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, self.path)


def pool(columns: list[Any]) -> list[Item]:
    """Every distinct attempted (question, answer) of the given columns, shuffled with a fixed seed so that runs
    interleave and a reader cannot tell them apart by order."""
    items: dict[str, Item] = {}
    for c in columns:
        for i, r in enumerate(c.refs):
            if r.outcome in ("right", "wrong") and r.answer.strip():
                k = key(r.question_id, r.answer)
                items.setdefault(k, Item(key=k, question_id=r.question_id, candidate=r.answer, column=c.id,
                                         position=i))
    order = sorted(items)
    random.Random(SEED).shuffle(order)
    return [items[k] for k in order]
