"""The driver: many episodes in lock-step, one backend call per round.

Each round collects the pending request of every active episode and sends them to `backend.generate` as one batch;
a finished episode's slot is refilled from the queue at once, so a local backend's batch stays full (batched decoding
is what makes CPU generation affordable; docs/benchmarks.md, "Local generation speed").
Remote backends (endpoints) instead run each episode as an independent task, at most `batch_size` at once: a serial
server (llama.cpp's answers one request at a time) then finishes episodes one by one, each written as it ends,
instead of holding every episode until the slowest request of each lock-step round returns.

This is the one episode implementation: `inboxrl ask`, `inboxrl eval` and GRPO rollouts all call `run_episodes`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.episode import Episode
from inboxrl.agent.events import Event
from inboxrl.models.base import ChatBackend, ChatResponse
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
    backend: ChatBackend,
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
    if tools_factory is None and is_endpoint(backend):
        return _run_independent(queue, backend, db, cfg, on_event, on_done, batch_size)
    conn = None
    if tools_factory is None:
        conn = open_store(db)

        def tools_factory(q: Question) -> Any:
            return make_tools(conn, q, cfg)

    native, template, name = backend.native_tools, backend.template_tools, backend.name
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


def is_endpoint(backend: Any) -> bool:
    """An OpenAI-compatible endpoint (it has a URL): its requests are independent, not one batch."""
    return isinstance(getattr(backend, "base_url", None), str)


def _db_path(db: str | Path | sqlite3.Connection) -> str:
    if not isinstance(db, sqlite3.Connection):
        return str(db)
    from inboxrl.store.access import Store

    path = Store(db).path()
    if path is None:
        raise ValueError("the store connection has no file: endpoint episodes need a store path")
    return path


def _run_independent(queue: list[Question], backend: Any, db: str | Path | sqlite3.Connection, cfg: AgentConfig,
                     on_event: Callable[[Event], None] | None, on_done: Callable[[Trajectory], None] | None,
                     concurrency: int) -> list[Trajectory]:
    """Each episode on its own worker thread (its own store connection); `on_done` runs on the calling thread as
    each one finishes, so a judge or writer needs no locking. An exception from `on_done` stops the run: episodes
    not started are dropped, the ones running finish first."""
    path = _db_path(db)
    name = getattr(backend, "name", "unknown")
    native = bool(getattr(backend, "native_tools", False))
    lock = threading.Lock()
    stop = threading.Event()

    def emit(ev: Event) -> None:
        if on_event is not None:
            with lock:
                on_event(ev)

    def one(q: Question) -> Trajectory | None:
        if stop.is_set():
            return None
        conn = open_store(path)
        try:
            ep = Episode(q, make_tools(conn, q, cfg), cfg, name, native_tools=native)
            while not ep.done:
                req = ep.request()
                assert req is not None
                resp = backend.generate([req])[0]
                if not isinstance(resp, ChatResponse):
                    resp = ChatResponse(error=f"backend returned {type(resp).__name__}, not a ChatResponse")
                for ev in ep.step(resp):
                    emit(ev)
            backend.end_episode(ep.id)
            return ep.trajectory
        finally:
            conn.close()

    results: dict[int, Trajectory] = {}
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        pending: dict[Future[Trajectory | None], int] = {pool.submit(one, q): i for i, q in enumerate(queue)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    t = fut.result()
                    if t is not None:
                        results[i] = t
                        if on_done is not None:
                            on_done(t)
        except BaseException:
            stop.set()
            for fut in pending:
                fut.cancel()
            raise
    return [results[i] for i in sorted(results)]
