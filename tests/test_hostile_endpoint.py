"""Hostile endpoints (issue 23): a real HTTP server on 127.0.0.1 that drips one byte every few seconds, accepts and
never answers, answers `garbage{` or `"content": 12345`, or rate-limits; and a torn trajectory file. The agent side
of the chat server is SCRIPTED (search, then answer) so that the failures under test are the only variable."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from inboxrl.agent.scripted import completion_body, scripted_agent_reply
from inboxrl.models.base import BackendError, ChatRequest
from inboxrl.models.openai_backend import OpenAIBackend

CLI = "from inboxrl.cli import app; app()"


class HostileServer:
    """`mode` picks the behaviour of POST /chat/completions; GET /models answers normally unless the mode is
    `silent` or `drip` (then the whole server misbehaves, as a hung server would)."""

    def __init__(self, mode: str | Callable[[dict[str, Any]], tuple[int, bytes, dict[str, str]]],
                 drip_every_s: float = 2.0) -> None:
        self.mode = mode
        self.posts = 0
        self.stop = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _reply(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _misbehave(self) -> bool:
                if outer.mode == "silent":  # accepted, read, and never answered
                    outer.stop.wait(60)
                    return True
                if outer.mode == "drip":  # a valid reply, one byte every few seconds, for ever
                    data = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                    data += b" " * 100000
                    for i in range(len(data)):
                        if outer.stop.wait(drip_every_s):
                            return True
                        try:
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                        except OSError:
                            return True
                    return True
                return False

            def do_GET(self) -> None:
                if not self._misbehave():
                    self._reply(200, json.dumps({"object": "list", "data": [{"id": "m"}]}).encode())

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts += 1
                if self._misbehave():
                    return
                if callable(outer.mode):
                    self._reply(*outer.mode(body))
                elif outer.mode == "garbage":
                    self._reply(200, b"garbage{")
                elif outer.mode == "content_int":
                    self._reply(200, completion_body({"role": "assistant", "content": 12345}))
                else:
                    self._reply(200, scripted_agent_reply(body))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _request() -> ChatRequest:
    return ChatRequest(episode_id="e", messages=[{"role": "user", "content": "hi"}], max_tokens=5)


# ---- 1. a total deadline -------------------------------------------------------------------------------------


def test_a_dripping_server_hits_the_total_deadline():
    """One byte every 2 s used to reset the per-read timeout for ever; the deadline bounds the whole request."""
    with HostileServer("drip") as srv:
        b = OpenAIBackend("m", base_url=srv.url, timeout_s=3, max_retries=0)
        t0 = time.monotonic()
        r = b.generate([_request()])[0]
        took = time.monotonic() - t0
    assert r.error and "within 3 s" in r.error, r.error
    assert took < 8, took


def test_retries_are_reported_as_they_happen():
    calls = {"n": 0}

    def limited(body: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        calls["n"] += 1
        if calls["n"] <= 2:
            return 429, json.dumps({"error": {"message": "slow down"}}).encode(), {"Retry-After": "0"}
        return 200, completion_body({"role": "assistant", "content": "ok"}), {}

    lines: list[str] = []
    with HostileServer(limited) as srv:
        b = OpenAIBackend("m", base_url=srv.url, max_retries=5, on_retry=lines.append)
        r = b.generate([_request()])[0]
    assert r.error is None and r.text == "ok"
    assert len(lines) == 2 and lines[0].startswith("retry 1/5 in 0 s: HTTP 429"), lines
    assert lines[1].startswith("retry 2/5"), lines


def test_check_says_within_seconds_that_a_silent_server_is_unreachable():
    with HostileServer("silent") as srv:
        b = OpenAIBackend("m", base_url=srv.url)
        t0 = time.monotonic()
        with pytest.raises(BackendError, match="cannot reach"):
            b.check(timeout_s=2)
        assert time.monotonic() - t0 < 5


def test_ask_fails_fast_on_an_endpoint_that_never_answers(enron_store):
    with HostileServer("silent") as srv:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-c", CLI, "ask", "Who organised the seminar?", "--db", str(enron_store),
                            "--inbox", "vince.kaminski@enron.com", "--date", "2001-01-01", "--model", "m",
                            "--base-url", srv.url], check=False, capture_output=True, text=True, timeout=60)
        took = time.monotonic() - t0
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "cannot reach" in r.stderr and took < 30, (took, r.stderr)


def test_a_refused_port_is_reported_in_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01,
                      on_retry=lambda line: None)
    r = b.generate([_request()])[0]
    assert r.error and "connection refused" in r.error and "gave up after 2 attempts" in r.error


# ---- 6. malformed replies --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode,words", [("garbage", "not a chat completion"), ("content_int", "not a chat completion")])
def test_a_malformed_reply_is_one_clear_error(mode, words):
    with HostileServer(mode) as srv:
        b = OpenAIBackend("m", base_url=srv.url, max_retries=0)
        r = b.generate([_request()])[0]
    assert r.error and words in r.error and "\n" not in r.error, r.error


def _eval(db: Path, questions: Path, out: Path, url: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, "eval", "--db", str(db), "--questions", str(questions),
                           "--model", "m", "--base-url", url, "--judge", "lexical", "--out", str(out),
                           "--concurrency", "1", *extra], check=False, capture_output=True, text=True, timeout=300)


@pytest.fixture
def five_questions(questions_path, tmp_path) -> Path:
    p = tmp_path / "q.jsonl"
    p.write_text("".join(questions_path.read_text().splitlines(keepends=True)[:5]))
    return p


@pytest.mark.parametrize("mode", ["garbage", "content_int"])
def test_eval_counts_a_malformed_reply_as_a_backend_error_and_keeps_finished_episodes(
        mode, enron_store, five_questions, tmp_path):
    out = tmp_path / "run"
    with HostileServer("chat") as srv:
        r = _eval(enron_store, five_questions, out, srv.url, "--limit", "2")
        assert r.returncode == 0, r.stderr[-2000:]
        srv.mode = mode
        r = _eval(enron_store, five_questions, out, srv.url)
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert r.returncode == 1 and "not a chat completion" in " ".join(r.stderr.split()), r.stderr[-2000:]
    lines = (out / "trajectories.jsonl").read_text().splitlines()
    assert len(lines) == 2  # the two finished episodes are kept; none of the failed ones is recorded as done


# ---- 7. a torn trajectory line ------------------------------------------------------------------------------------


def test_a_torn_last_line_is_cut_before_the_resumed_run_appends(enron_store, five_questions, tmp_path):
    out = tmp_path / "run"
    with HostileServer("chat") as srv:
        r = _eval(enron_store, five_questions, out, srv.url, "--limit", "4")
        assert r.returncode == 0, r.stderr[-2000:]
        path = out / "trajectories.jsonl"
        data = path.read_bytes()
        last = data[:-1].rfind(b"\n") + 1
        path.write_bytes(data[: last + (len(data) - last) // 2])  # a kill in the middle of the 4th line
        r = _eval(enron_store, five_questions, out, srv.url, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads(r.stdout)
    assert metrics["models"]["m"]["n"] == 5, metrics["models"]["m"]
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["question_id"] for line in lines)


def test_eval_against_a_dripping_server_ends_in_seconds(enron_store, five_questions, tmp_path):
    """`inboxrl eval` used to wait on such a server indefinitely (still going after 400 s)."""
    with HostileServer("drip") as srv:
        t0 = time.monotonic()
        r = _eval(enron_store, five_questions, tmp_path / "run", srv.url, "--timeout", "3", "--max-retries", "0")
        took = time.monotonic() - t0
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "cannot reach" in r.stderr and took < 60, (took, r.stderr[-500:])
