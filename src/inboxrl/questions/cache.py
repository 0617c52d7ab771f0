"""A cache of model calls, so a killed or repeated generation run never pays twice for the same batch.

The key names the model, the prompt version and the batch's Message-IDs, plus a hash of the exact request (so a
change of email cut or max_tokens is a different entry, not a stale hit). Each answer is committed as soon as it
arrives: a run killed after batch 37 resumes at batch 38. Backend errors are not cached, so they are retried.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

_DDL = """
CREATE TABLE IF NOT EXISTS calls (
    key            TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,      -- 'generate' or 'support'
    model          TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    message_ids    TEXT NOT NULL,      -- JSON list
    text           TEXT NOT NULL,
    prompt_tokens  INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    latency_s      REAL NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL
);
"""


def call_key(kind: str, model: str, prompt_version: str, message_ids: list[str], request: dict[str, Any]) -> str:
    blob = json.dumps(
        {"kind": kind, "model": model, "prompt": prompt_version, "ids": message_ids, "request": request},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CallCache:
    def __init__(self, path: str | Path | None) -> None:
        """`path=None` gives a cache that never hits and stores nothing (--no-cache)."""
        self.path = Path(path) if path is not None else None
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_DDL)
            self._conn.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        if self._conn is None:
            self.misses += 1
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT text, prompt_tokens, completion_tokens, latency_s FROM calls WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return {"text": row[0], "prompt_tokens": row[1], "completion_tokens": row[2], "latency_s": row[3]}

    def put(self, key: str, *, kind: str, model: str, prompt_version: str, message_ids: list[str], text: str,
            prompt_tokens: int = 0, completion_tokens: int = 0, latency_s: float = 0.0) -> None:
        if self._conn is None:
            return
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, kind, model, prompt_version, json.dumps(message_ids), text, prompt_tokens,
                 completion_tokens, latency_s, time.time()),
            )
            self._conn.commit()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
