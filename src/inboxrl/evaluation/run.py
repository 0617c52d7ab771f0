"""An evaluation run: every (model, question) pair, judged and written as it finishes, resumable.

Why append-as-you-go: a run of a 0.5B model on CPU takes hours, and a remote endpoint can die mid-run. Each episode
is judged and appended to `trajectories.jsonl` the moment it ends, so nothing finished is ever lost, and a re-run with
the same `out_dir` skips the pairs already written. Episodes stopped by a backend error are NOT written (they say
nothing about the model); several in a row abort the run with the backend's own message, and a resume retries them.

`metrics.json` shape:

    {
      "created_at": "2026-11-23T12:00:00Z",
      "questions": {"n": 50, "grounded": 50, "grounded_in_scope": 50, "grounded_known": true, "ids": [...]},
      "judge": "lexical",
      "agent_config": {...AgentConfig...},
      "models.<spec>.harness": "guided" / "free" / "custom": the harness preset that model ran under,
      "precision": {"INBOXRL_DTYPE": ..., "local_dtype": "float32", "cpu": "no native bf16 on this CPU"},
      "models": {"<model spec>": {...see inboxrl.evaluation.metrics...}, ...},
      "checks": {"n_episodes": 50, "detectors": {"shotgun": {"count": 0, "flagged": [], "detail": ...}, ...}}
    }

Rates in "models" are computed over the run's question set only (a resumed run with a smaller `limit` reports the
smaller set), one trajectory per (model, question): the last written.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.runner import open_store, run_episodes
from inboxrl.checks import run_checks
from inboxrl.evaluation.metrics import json_safe, latest_per_pair, metrics
from inboxrl.models.base import BackendError
from inboxrl.models.hardware import precision_record
from inboxrl.questions.schema import Question
from inboxrl.trajectory import EVAL_TRAJECTORIES, Trajectory, read_jsonl, write_jsonl

TRAJECTORIES = EVAL_TRAJECTORIES
METRICS = "metrics.json"


class EvalAborted(RuntimeError):
    """The run stopped early (dead endpoint, repeated backend errors); what was finished is on disk."""


@dataclass
class EvalResult:
    out_dir: Path
    metrics: dict[str, Any]
    written: int = 0  # trajectories appended by this call
    skipped: int = 0  # (model, question) pairs already in the file
    backend_errors: int = 0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)


def grounded_ids(db: str | Path, questions: Sequence[Question], in_scope: bool = False) -> set[str]:
    """Ids of the questions whose every source mail is in the store (with `in_scope`, also in the question's inbox
    and before its date: findable by the tools)."""
    from inboxrl.questions.grounding import grounded_questions

    return {q.id for q in grounded_questions(db, list(questions), in_scope=in_scope)}


def check_store(db: str | Path) -> None:
    """Raises EvalAborted (one line) for a store that cannot serve a run: one whose ingest did not finish would
    answer "no emails found" to every search, and the episodes would be recorded as done."""
    from inboxrl.store.schema import StoreIncompleteError

    try:
        open_store(db).close()
    except (StoreIncompleteError, sqlite3.DatabaseError, FileNotFoundError) as e:
        raise EvalAborted(str(e)) from None


def cut_torn_tail(path: Path) -> int:
    """Cuts a partial last line (a run killed mid-write) so that the next append starts on a line of its own:
    appended onto the fragment, the next trajectory would be lost with it. Returns the bytes cut."""
    if not path.exists():
        return 0
    with path.open("rb+") as f:
        size = f.seek(0, 2)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        keep = 0
        pos = size
        while pos > 0:  # back to the last newline, a block at a time
            step = min(1 << 16, pos)
            f.seek(pos - step)
            block = f.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = pos - step + nl + 1
                break
            pos -= step
        f.truncate(keep)
        return size - keep


def done_pairs(path: Path) -> set[tuple[str, str]]:
    """(model, question id) pairs already in a trajectories file, backend-error stops excluded."""
    if not path.exists():
        return set()
    return {(t.model, t.question_id) for t in read_jsonl(path) if t.stop_reason != "backend_error"}


def evaluate(
    questions: Sequence[Question],
    model_specs: Sequence[str],
    db: str | Path,
    judge: Any,
    cfg: AgentConfig | None = None,
    out_dir: str | Path = "runs/eval",
    limit: int | None = None,
    concurrency: int = 8,
    *,
    backend_opts: dict[str, Any] | None = None,
    backend_factory: Callable[[str], Any] | None = None,
    reward_cfg: Any = None,
    abort_after_backend_errors: int = 3,
    on_progress: Callable[[str, Trajectory | None], None] | None = None,
    on_model_start: Callable[[str, int, int], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> EvalResult:
    """Runs, judges and writes every (model, question) pair not yet in `out_dir`, then writes metrics.json.

    `backend_factory(spec)` builds a backend (tests, custom setups); by default `load_backend(spec, **backend_opts)`.
    `on_model_start(spec, todo, skipped)` and `on_progress(spec, trajectory)` feed a progress display; `on_event`
    gets every episode event (searches, reads, format errors) for a live log.
    Raises `EvalAborted` on a dead backend; everything finished before is already in trajectories.jsonl.
    """
    from inboxrl.scoring.score import score_trajectories

    cfg = cfg or AgentConfig()
    qs = list(questions)[:limit] if limit is not None else list(questions)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    traj_path = out / TRAJECTORIES
    check_store(db)
    cut_torn_tail(traj_path)
    done = done_pairs(traj_path)
    conn = open_store(db)
    result = EvalResult(out_dir=out, metrics={})
    names: list[str] = []
    harnesses: dict[str, str] = {}
    try:
        for spec in model_specs:
            try:
                backend = backend_factory(spec) if backend_factory else _load_backend(spec, backend_opts or {})
            except BackendError as e:
                raise EvalAborted(str(e)) from e
            name = getattr(backend, "name", spec)
            names.append(name)
            model_cfg = cfg.with_harness_default(spec)
            harnesses[name] = model_cfg.harness_name()
            todo = [q for q in qs if (name, q.id) not in done]
            check = getattr(backend, "check", None)
            if todo and callable(check):  # an endpoint that cannot be reached fails now, in one line
                try:
                    check()
                except BackendError as e:
                    raise EvalAborted(f"{name}: {e}") from e
            result.skipped += len(qs) - len(todo)
            if on_model_start:
                on_model_start(name, len(todo), len(qs) - len(todo))
            sink = _Sink(name, traj_path, judge, reward_cfg, conn, model_cfg.max_turns, abort_after_backend_errors,
                         result, on_progress, score_trajectories)
            if todo:
                try:
                    run_episodes(todo, backend, conn, model_cfg, on_done=sink, on_event=on_event, batch_size=concurrency)
                except EvalAborted:
                    raise
                except Exception as e:  # a backend that cannot serve at all: one line, finished work kept
                    if isinstance(e, (BackendError, ConnectionError, TimeoutError, OSError)):
                        raise EvalAborted(f"{name}: {e}") from e
                    raise
        result.metrics = write_metrics(out, qs, names, db, getattr(judge, "name", str(judge)), cfg, harnesses)
        result.models = result.metrics["models"]
    finally:
        conn.close()
    return result


class _Sink:
    """Receives each finished episode: judge it, score it, append it; count and eventually abort on backend errors."""

    def __init__(self, name: str, path: Path, judge: Any, reward_cfg: Any, conn: sqlite3.Connection, max_turns: int,
                 abort_after: int, result: EvalResult, on_progress: Callable[[str, Trajectory | None], None] | None,
                 score: Callable[..., Any]):
        self.name, self.path, self.judge, self.reward_cfg, self.conn = name, path, judge, reward_cfg, conn
        self.max_turns, self.abort_after, self.result, self.on_progress = max_turns, abort_after, result, on_progress
        self.score = score
        self.consecutive = 0

    def __call__(self, t: Trajectory) -> None:
        if t.stop_reason == "backend_error":
            self.result.backend_errors += 1
            self.consecutive += 1
            if self.on_progress:
                self.on_progress(self.name, None)
            if self.consecutive >= self.abort_after:
                raise EvalAborted(f"{self.name}: {t.backend_error or 'unknown backend error'}")
            return
        self.consecutive = 0
        try:
            self.score([t], self.judge, self.reward_cfg, db=self.conn, max_turns=self.max_turns)
        except BackendError as e:
            raise EvalAborted(f"judge {getattr(self.judge, 'name', '?')}: {e}") from e
        write_jsonl(self.path, [t.without_token_ids()])
        self.result.written += 1
        if self.on_progress:
            self.on_progress(self.name, t)


_ENDPOINT_ONLY = {"base_url", "api_key_env", "max_retries", "timeout_s", "concurrency", "native_tools", "backoff_s"}
_LOCAL_ONLY = {"threads", "max_context", "kv_cache_mb", "top_p", "top_k", "dtype", "max_batch", "shared"}


def _load_backend(spec: str, opts: dict[str, Any]) -> Any:
    """One set of options serves a mixed run (`--model local/x --model gpt-4o`): each backend gets its own kind."""
    from inboxrl.models.registry import load_backend
    from inboxrl.models.spec import parse_spec

    drop = _ENDPOINT_ONLY if parse_spec(spec).is_local and not opts.get("base_url") else _LOCAL_ONLY
    return load_backend(spec, **{k: v for k, v in opts.items() if k not in drop})


def write_metrics(out: Path, questions: Sequence[Question], models: Sequence[str], db: str | Path,
                  judge_name: str, cfg: AgentConfig, harnesses: dict[str, str] | None = None) -> dict[str, Any]:
    """Computes metrics from what is on disk (this run and earlier ones) for this run's questions and models.
    Each model's `harness` is the one it ran under (`harnesses`, else what its trajectories recorded)."""
    ids = {q.id for q in questions}
    traj_path = out / TRAJECTORIES
    trajs = latest_per_pair(read_jsonl(traj_path)) if traj_path.exists() else []
    grounded = grounded_ids(db, questions)
    in_scope = grounded_ids(db, questions, in_scope=True)
    per_model: dict[str, Any] = {}
    for m in models:
        mine = [t for t in trajs if t.model == m and t.question_id in ids]
        per_model[m] = metrics(mine)
        recorded = sorted({str(t.meta.get("harness")) for t in mine if t.meta.get("harness")})
        per_model[m]["harness"] = (harnesses or {}).get(m) or ("+".join(recorded) if recorded else None)
    doc = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "questions": {"n": len(questions), "grounded": len(grounded & ids),
                      "grounded_in_scope": len(in_scope & ids), "grounded_known": True, "ids": sorted(ids)},
        "judge": judge_name,
        "agent_config": cfg.model_dump(),  # `harness` None here: each model ran under its own default (models)
        "precision": precision_record(),
        "models": per_model,
        # The reward-hacking detectors over every episode in the file (docs/detectors.md).
        "checks": run_checks(list(read_jsonl(traj_path))).model_dump() if traj_path.exists() else None,
    }
    doc = json_safe(doc)
    (out / METRICS).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return doc
