"""The runs the viewer shows, read (never written) from what `inboxrl eval` and `inboxrl train` leave on disk.

- An eval run dir: `trajectories.jsonl` (every model's episodes; the last line per (model, question) counts, as in
  its metrics) and `metrics.json`. One column per model.
- A training run dir: `metrics.jsonl` (train and validation records), `validation/step-N.jsonl` (one column per
  validation step) and `rollouts/step-N.jsonl` (each step's GRPO groups).
- A bare `.jsonl` file of trajectories: one column per model.
- An exported run (benchmarks/export_run.py): the same files, trajectories gzipped (`.jsonl.gz`); its evals under
  `eval/LABEL/` are shown as runs of their own beside it.

Detector flags (`metrics.json` "checks", per model or for the whole file; `checks/<name>` counts in training
records) are shown when present; a run without them shows none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxrl.trajectory import EVAL_TRAJECTORIES, eval_trajectories, step_files
from inboxrl.viewer.index import EpisodeRef, FileIndex

EVAL_METRICS = "metrics.json"
TRAIN_METRICS = "metrics.jsonl"
EXPORTED_EVALS = "eval"  # benchmarks/export_run.py: RUN/eval/LABEL/ holds an eval run


class RunError(ValueError):
    """A path that is not a run: the message names it and says what was expected."""


@dataclass
class Column:
    """One series of episodes shown side by side with others: a model of an eval run, or a validation step."""

    id: int
    run: Run
    label: str
    kind: str  # "eval", "validation" or "rollouts"
    index: FileIndex
    refs: list[EpisodeRef]
    step: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)  # name -> {"count", "flagged", "detail"}
    by_qid: dict[str, int] = field(default_factory=dict)  # question id -> position in refs (the last one)
    flagged: dict[str, list[str]] = field(default_factory=dict)  # episode id -> detector names

    def flags_of(self, ref: EpisodeRef) -> list[str]:
        names = self.flagged.get(ref.episode_id) or []
        if not names and ref.episode_id == ref.question_id:
            names = self.flagged.get(f"{ref.question_id}#0") or []
        return names


@dataclass
class Run:
    id: int
    path: Path
    name: str
    kind: str  # "eval" or "training"
    eval_metrics: dict[str, Any] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    rollouts: list[Column] = field(default_factory=list)
    skipped_lines: int = 0

    def validation_curve(self, key: str = "accuracy") -> list[tuple[int, float]]:
        by_step: dict[int, float] = {}
        for r in self.records:
            v = r.get(key)
            if r.get("kind") == "validation" and isinstance(v, (int, float)):
                by_step[int(r.get("step", 0))] = float(v)
        return sorted(by_step.items())

    def checks_over_steps(self) -> tuple[list[str], list[tuple[int, dict[str, float]]]]:
        """(detector names, [(step, {name: count})]) from the `checks/<name>` keys of the training records."""
        names: list[str] = []
        by_step: dict[int, dict[str, float]] = {}
        for r in self.records:
            for k, v in r.items():
                if k.startswith("checks/") and isinstance(v, (int, float)):
                    n = k[len("checks/"):]
                    if n not in names:
                        names.append(n)
                    by_step.setdefault(int(r.get("step", 0)), {})[n] = float(v)
        return names, sorted(by_step.items())


def _read_json(p: Path) -> dict[str, Any]:
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunError(f"{p}: not readable JSON ({e})") from None
    return d if isinstance(d, dict) else {}


def _read_records(p: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with p.open(encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn last line of a killed run
            if isinstance(rec, dict):
                out.append(rec)
    return out


def _flag_map(checks: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    dets = checks.get("detectors") if isinstance(checks, dict) else None
    for name, d in (dets or {}).items():
        for eid in (d or {}).get("flagged") or []:
            out.setdefault(str(eid), []).append(str(name))
    return out


def _checks_of(doc: dict[str, Any], model: str) -> dict[str, Any]:
    """A model's own checks, else the file-wide ones (a run with one model may carry them at the top)."""
    m = (doc.get("models") or {}).get(model)
    if isinstance(m, dict) and isinstance(m.get("checks"), dict):
        return dict(m["checks"])
    top = doc.get("checks")
    return dict(top) if isinstance(top, dict) else {}


def _last_per_question(refs: list[EpisodeRef]) -> dict[str, int]:
    return {r.question_id: i for i, r in enumerate(refs)}


class Runs:
    """Every run given to the viewer, with its columns numbered across runs."""

    def __init__(self, paths: list[str | Path]):
        self.runs: list[Run] = []
        self.columns: list[Column] = []  # every column, including rollouts, by id
        found = [q for p in paths for q in _with_exported_evals(Path(p).resolve())]
        names = [n for _, n in found]
        for i, (path, short) in enumerate(found):
            name = short if names.count(short) == 1 else str(path)
            self.runs.append(self._load(i, path, name))

    @property
    def question_columns(self) -> list[Column]:
        return [c for r in self.runs for c in r.columns]

    def _add(self, run: Run, label: str, kind: str, index: FileIndex, refs: list[EpisodeRef],
             step: int | None = None) -> Column:
        col = Column(id=len(self.columns), run=run, label=label, kind=kind, index=index, refs=refs, step=step)
        col.by_qid = _last_per_question(refs)
        self.columns.append(col)
        return col

    def _load(self, i: int, path: Path, name: str) -> Run:
        if path.is_file() and path.name.endswith((".jsonl", ".jsonl.gz")):
            run = Run(id=i, path=path, name=name, kind="eval")
            self._eval_columns(run, path, {})
            return run
        if not path.is_dir():
            raise RunError(f"{path}: no such run directory")
        trajectories = eval_trajectories(path)
        if trajectories.is_file():
            run = Run(id=i, path=path, name=name, kind="eval")
            doc = _read_json(path / EVAL_METRICS) if (path / EVAL_METRICS).is_file() else {}
            run.eval_metrics = doc
            self._eval_columns(run, trajectories, doc)
            return run
        if (path / TRAIN_METRICS).is_file() or (path / "validation").is_dir():
            run = Run(id=i, path=path, name=name, kind="training")
            if (path / TRAIN_METRICS).is_file():
                run.records = _read_records(path / TRAIN_METRICS)
            val = {int(r.get("step", 0)): r for r in run.records if r.get("kind") == "validation"}
            for step, f in step_files(path / "validation"):
                idx = FileIndex.build(f)
                run.skipped_lines += idx.skipped
                col = self._add(run, f"step {step}", "validation", idx, idx.refs, step)
                rec = val.get(step, {})
                col.metrics = rec
                col.checks = {"detectors": {k[len("checks/"):]: {"count": v} for k, v in rec.items()
                                            if k.startswith("checks/")}}
                run.columns.append(col)
            for step, f in step_files(path / "rollouts"):
                idx = FileIndex.build(f)
                run.skipped_lines += idx.skipped
                run.rollouts.append(self._add(run, f"rollouts step {step}", "rollouts", idx, idx.refs, step))
            return run
        raise RunError(f"{path}: not a run directory (expected {EVAL_TRAJECTORIES} from `inboxrl eval --out`, or "
                       f"{TRAIN_METRICS} from `inboxrl train`)")

    def _eval_columns(self, run: Run, f: Path, doc: dict[str, Any]) -> None:
        idx = FileIndex.build(f)
        run.skipped_lines += idx.skipped
        models: list[str] = []
        for r in idx.refs:
            if r.model not in models:
                models.append(r.model)
        for m in models:
            mine = [r for r in idx.refs if r.model == m]
            # The last line per question counts (a resumed run may have retried it), as in metrics.json.
            last = _last_per_question(mine)
            refs = [mine[j] for j in sorted(last.values())]
            for r in refs:  # one episode per question in a model's metrics: the id is the question's
                r.episode_id = r.question_id
            col = self._add(run, m, "eval", idx, refs)
            col.metrics = dict((doc.get("models") or {}).get(m) or {})
            col.checks = _checks_of(doc, m)
            col.flagged = _flag_map(col.checks)
            run.columns.append(col)


def _is_run(d: Path) -> bool:
    return eval_trajectories(d).is_file() or (d / TRAIN_METRICS).is_file() or (d / "validation").is_dir()


def _with_exported_evals(path: Path) -> list[tuple[Path, str]]:
    """(path, name) of `path`, then of the eval runs an exported run holds under `eval/`, named `RUN/LABEL` (an
    export of evals alone gives only those)."""
    d = path / EXPORTED_EVALS
    evals = [(e, f"{path.name}/{e.name}") for e in sorted(d.iterdir()) if _is_run(e)] if d.is_dir() else []
    return ([(path, path.name)] if _is_run(path) or not evals else []) + evals


def detector_names(columns: list[Column]) -> list[str]:
    names: list[str] = []
    for c in columns:
        for n in ((c.checks or {}).get("detectors") or {}):
            if n not in names:
                names.append(n)
    return names
