"""Concurrent HTTP requests into the backend's lock-step batches.

A local backend decodes a batch at more tokens/s than one sequence (docs/benchmarks.md, "Local generation speed"),
but a server gets requests one at a time from many connections. One worker thread owns the backend: whatever
requests are waiting when it is free go to `generate` together, so N concurrent callers share one batch instead of
queueing behind each other.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from inboxrl.models.base import ChatRequest, ChatResponse

# A request that arrives this soon after another joins its batch: concurrent clients rarely arrive together.
GATHER_S = 0.02


class BatchingBackend:
    """A `ChatBackend` that many threads may call at once; their requests are merged into shared batches."""

    def __init__(self, backend: Any, max_batch: int = 8) -> None:
        self.backend = backend
        self.name: str = getattr(backend, "name", "unknown")
        self.native_tools: bool = bool(getattr(backend, "native_tools", False))
        self.template_tools: bool = bool(getattr(backend, "template_tools", False))
        self.max_batch = max(1, max_batch)
        self.batches = 0
        self.batched_requests = 0
        self._queue: queue.Queue[tuple[ChatRequest, Future[ChatResponse]] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._loop, name=f"batcher-{self.name}", daemon=True)
        self._worker.start()

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        futures: list[Future[ChatResponse]] = []
        for r in requests:
            f: Future[ChatResponse] = Future()
            self._queue.put((r, f))
            futures.append(f)
        return [f.result() for f in futures]

    def end_episode(self, episode_id: str) -> None:
        self.backend.end_episode(episode_id)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=5)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            deadline = time.monotonic() + GATHER_S
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            try:
                responses = self.backend.generate([r for r, _ in batch])
            except Exception as e:  # noqa: BLE001 - one failed batch must answer its callers, not kill the worker
                responses = [ChatResponse(error=f"backend failed: {type(e).__name__}: {e}") for _ in batch]
            self.batches += 1
            self.batched_requests += len(batch)
            for (_, fut), resp in zip(batch, responses):
                fut.set_result(resp)
