"""Hand-labelling the answers of several runs without knowing which run wrote them, then scoring every run by
those labels and the lexical judge by its agreement with them.

    python benchmarks/blind_labels.py sheet RUN_A.jsonl RUN_B.jsonl ... --out sheet.jsonl
    # edit sheet.jsonl: set "label" to true (right) or false (wrong) on every row
    python benchmarks/blind_labels.py score sheet.jsonl RUN_A.jsonl RUN_B.jsonl ...

Why: the CPU demonstration compares runs that differ by a few answers in 53, and the lexical judge decides them. A
reader who knows which run wrote an answer may lean towards the run they hope wins. The sheet holds every distinct
(question, answer) pair that any of the files attempted, shuffled with a fixed seed, with the question, the golden
answer and the candidate, and no run name. The same answer from two runs is one row, so it gets one label. Run
`sheet` again with more files to append the answers the sheet lacks; rows already there keep their labels.

`score` prints, for each file, right and wrong by the labels next to the lexical judge's, each later file's
difference from the first with its paired 95% interval (`evaluation.intervals`, as `inboxrl compare`), and the judge's
agreement, false-accept and false-reject rates on the whole sheet: the sheet is a calibration file, read and
scored by `inboxrl.judge.calibrate` exactly as `inboxrl judge calibrate --file sheet.jsonl --judge lexical` does. A row labelled
right whose `kind` is "partial" (the asked fact is there, a detail of the golden answer is missing or a wrong one
is added) counts as right, and again as wrong in `reader_right_strict`, so a lenient reader shows as a range.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import asdict
from pathlib import Path

from inboxrl.evaluation.intervals import paired_difference
from inboxrl.judge.calibrate import CalibrationFileError, calibrate, load_calibration
from inboxrl.judge.registry import load_judge
from inboxrl.trajectory import Trajectory, read_jsonl


def _key(question_id: str, answer: str) -> str:
    return f"{question_id}\t{' '.join(answer.split()).lower()}"


def _attempted(t: Trajectory) -> bool:
    """A real answer: "I don't know" and no answer need no reader."""
    return t.rubric is not None and t.rubric.attempted_answer and bool(t.final_answer)


def sheet(files: list[Path], out: Path, seed: int) -> int:
    """Writes the rows to label; an existing sheet keeps its rows and labels, and only answers it lacks are added
    (shuffled, at the end), so a later run's answers are labelled without re-reading the earlier ones."""
    have: set[str] = set()
    if out.exists():
        with out.open(encoding="utf-8") as fh:
            have = {_key(str(r["question_id"]), str(r["candidate"])) for r in map(json.loads, filter(str.strip, fh))}
    rows: dict[str, dict[str, object]] = {}
    for f in files:
        for t in filter(_attempted, read_jsonl(f)):
            k = _key(t.question_id, t.final_answer or "")
            if k not in have:
                rows.setdefault(k, {"question_id": t.question_id, "question": t.question,
                                    "golden_answer": t.golden_answer or "", "candidate": t.final_answer,
                                    "label": None, "kind": "blind"})
    order = sorted(rows)
    random.Random(seed).shuffle(order)
    with out.open("a", encoding="utf-8") as fh:
        for k in order:
            fh.write(json.dumps(rows[k], ensure_ascii=False) + "\n")
    return len(order)


def score(sheet_path: Path, files: list[Path]) -> dict[str, object]:
    try:
        rows = load_calibration(sheet_path)  # the calibration reader: a row without a true/false label is an error
    except CalibrationFileError as e:
        sys.exit(f"error: {e}")
    labels = {_key(str(r.question_id), r.candidate): r.label for r in rows}
    partial = {_key(str(r.question_id), r.candidate) for r in rows if r.label and r.kind == "partial"}
    out: dict[str, object] = {}
    by_question: list[dict[str, dict[str, bool]]] = []  # per file: question id -> the reader's outcome
    for f in files:
        trajs = list(read_jsonl(f))
        counts = {"n": len(trajs), "reader_right": 0, "reader_wrong": 0, "reader_right_strict": 0,
                  "judge_right": 0, "judge_wrong": 0, "unlabelled": 0}
        outcomes: dict[str, dict[str, bool]] = {}
        for t in trajs:
            read = {"reader_right": False, "reader_wrong": False, "reader_right_strict": False}
            if not _attempted(t):
                outcomes[t.question_id] = read  # "I don't know" or no answer: neither right nor wrong
                continue
            k = _key(t.question_id, t.final_answer or "")
            counts["judge_right" if t.rubric is not None and t.rubric.answer_correct else "judge_wrong"] += 1
            if k not in labels:
                counts["unlabelled"] += 1
                outcomes.pop(t.question_id, None)  # not read: left out of the paired figures
                continue
            read = {"reader_right": labels[k], "reader_wrong": not labels[k],
                    "reader_right_strict": labels[k] and k not in partial}
            for name, hit in read.items():
                counts[name] += hit
            outcomes[t.question_id] = read
        out[str(f)] = counts
        by_question.append(outcomes)
    if len(files) > 1:  # each later file against the first, paired by question, as `inboxrl compare` does
        out["paired_with_first"] = {
            str(f): {name: asdict(paired_difference({q: o[name] for q, o in by_question[0].items()},
                                                    {q: o[name] for q, o in after.items()}))
                     for name in ("reader_right", "reader_right_strict", "reader_wrong")}
            for f, after in zip(files[1:], by_question[1:])}
    out["lexical_judge_on_sheet"] = calibrate(load_judge("lexical"), rows).to_dict()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheet")
    s.add_argument("files", nargs="+", type=Path)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("score")
    c.add_argument("sheet", type=Path)
    c.add_argument("files", nargs="+", type=Path)
    a = ap.parse_args()
    try:
        if a.cmd == "sheet":
            print(f"{sheet(a.files, a.out, a.seed)} new rows to label in {a.out}", file=sys.stderr)
        else:
            print(json.dumps(score(a.sheet, a.files), indent=2))
    except (OSError, ValueError) as e:  # a missing file, or a line that is not a trajectory / sheet row
        sys.exit(f"error: {str(e).splitlines()[0]}")


if __name__ == "__main__":
    main()
