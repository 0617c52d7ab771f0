"""A real uvicorn server on 127.0.0.1 in a thread, for the serving tests, and a tiny raw HTTP client."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.serving.access import Access
from inboxrl.serving.app import ServedModel, ServerState, create_app
from inboxrl.serving.batcher import BatchingBackend


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


@contextmanager
def running_server(db: Path, backends: dict[str, Any], out: Path, access: Access | None = None,
                   cfg: AgentConfig | None = None, max_batch: int = 8) -> Iterator[tuple[str, ServerState]]:
    import uvicorn

    models = {name: ServedModel(name, BatchingBackend(b, max_batch=max_batch),
                                (cfg or AgentConfig()).with_harness_default(name)) for name, b in backends.items()}
    state = ServerState(db=db, models=models, access=access or Access(), out_dir=out)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        for m in models.values():
            m.backend.close()


def call(url: str, body: Any = None, token: str | None = None, raw: bytes | None = None,
         timeout: float = 600) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one request; a 4xx/5xx is returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def sse_events(payload: bytes) -> list[tuple[str, Any]]:
    out = []
    for block in payload.decode().split("\n\n"):
        event, data = "message", None
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
        if data is not None:
            out.append((event, json.loads(data) if data != "[DONE]" else data))
    return out
