"""The driver: many episodes in lock-step, one backend call per round.

Each round collects the pending request of every active episode and sends them to `backend.generate` as one batch;
a finished episode's slot is refilled from the queue at once, so a local backend's batch stays full (batched decoding
is what makes CPU generation affordable; docs/benchmarks.md, "Local generation speed").
Remote backends fan the batch out over threads inside `generate`, so `batch_size` is also their concurrency.

This is the one episode implementation: `inboxrl ask`, `inboxrl eval` and GRPO rollouts all call `run_episodes`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.episode import Episode
from inboxrl.agent.events import Event
from inboxrl.models.base import ChatResponse
from inboxrl.questions.schema import Question
from inboxrl.tools.base import Scope
from inboxrl.trajectory import Trajectory


def make_tools(db: Any, question: Question, cfg: AgentConfig) -> Any:
    """The tools one episode may use: the question's inbox, and mail sent before the question's date."""
    from inboxrl.tools.inbox import InboxTools

    scope = Scope(question.inbox_address, before=question.query_date)
    return InboxTools(db, scope, cfg.tools)


def open_store(db: str | Path | sqlite3.Connection) -> sqlite3.Connection:
    """One read-only connection shared by all episodes of a run (the driver is single-threaded)."""
    if isinstance(db, sqlite3.Connection):
        return db
    from inboxrl.store.access import open_readonly

    return open_readonly(db)


def run_episodes(
    questions: Iterable[Question],
    backend: Any,
    db: str | Path | sqlite3.Connection,
    cfg: AgentConfig | None = None,
    *,
    on_event: Callable[[Event], None] | None = None,
    on_done: Callable[[Trajectory], None] | None = None,
    batch_size: int = 8,
    tools_factory: Callable[[Question], Any] | None = None,
) -> list[Trajectory]:
    """Runs one episode per question (repeat a question to sample it several times) and returns the trajectories
    in the order of `questions`.

    `on_done` is called as each episode finishes, so callers can judge and write it at once (a crash or a dead
    endpoint later in the run then loses nothing). An exception from the backend (e.g. `BackendError`) or from a
    callback stops the run after freeing the backend's per-episode state; finished episodes were already handed
    to `on_done`.
    """
    cfg = cfg or AgentConfig()
    queue = list(questions)
    conn = None
    if tools_factory is None:
        conn = open_store(db)

        def tools_factory(q: Question) -> Any:
            return make_tools(conn, q, cfg)

    native = bool(getattr(backend, "native_tools", False))
    template = bool(getattr(backend, "template_tools", False))
    name = getattr(backend, "name", "unknown")
    results: list[Trajectory | None] = [None] * len(queue)
    active: list[tuple[int, Episode]] = []
    next_i = 0

    def finish(slot: int, ep: Episode) -> None:
        try:
            backend.end_episode(ep.id)
        finally:
            results[slot] = ep.trajectory
            if on_done is not None:
                on_done(ep.trajectory)

    try:
        while next_i < len(queue) or active:
            while next_i < len(queue) and len(active) < max(1, batch_size):
                ep = Episode(queue[next_i], tools_factory(queue[next_i]), cfg, name, native_tools=native,
                             template_tools=template)
                active.append((next_i, ep))
                next_i += 1
            requests = []
            for _, ep in active:
                req = ep.request()
                assert req is not None  # finished episodes leave `active` below
                requests.append(req)
            responses = backend.generate(requests)
            if len(responses) != len(requests):
                raise RuntimeError(f"backend {name} returned {len(responses)} responses for {len(requests)} requests")
            still: list[tuple[int, Episode]] = []
            for (slot, ep), resp in zip(active, responses):
                if not isinstance(resp, ChatResponse):
                    resp = ChatResponse(error=f"backend returned {type(resp).__name__}, not a ChatResponse")
                for ev in ep.step(resp):
                    if on_event is not None:
                        on_event(ev)
                if ep.done:
                    finish(slot, ep)
                else:
                    still.append((slot, ep))
            active = still
    finally:
        for _, ep in active:  # interrupted: free the backend's state for episodes that will not continue
            try:
                backend.end_episode(ep.id)
            except Exception:  # noqa: BLE001, S110 - cleanup must not hide the original error
                pass
        if conn is not None and conn is not db:
            conn.close()
    return [t for t in results if t is not None]
