"""OpenAIBackend against a real HTTP server on 127.0.0.1: a tiny stdlib server that speaks the chat-completions
protocol with SCRIPTED responses (so retries, rate limits and failures are deterministic)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inboxrl.models.base import BackendError, ChatRequest
from inboxrl.models.openai_backend import OpenAIBackend
from inboxrl.models.registry import load_backend

Reply = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, headers


def completion(content: str = "", tool_calls: list[dict[str, Any]] | None = None, finish: str = "stop") -> Reply:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                 "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                 "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}, {}


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    return status, {"error": {"message": message, "type": "err", "code": None}}, headers or {}


class ScriptedChatServer:
    """Serves /v1/chat/completions from a script: a list of replies, or a function of the request body."""

    def __init__(self, script: list[Reply] | Callable[[dict[str, Any]], Reply]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _send(self, reply: Reply) -> None:
                status, body, headers = reply
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send((200, {"object": "list", "data": [{"id": "m", "object": "model"}]}, {}))

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(body)
                    if callable(outer.script):
                        reply = outer.script(body)
                    else:
                        reply = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                self._send(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedChatServer:
        self.thread.start()
        return self

    def __exit__(self, *a: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


TOOLS = [{"type": "function", "function": {"name": "search_inbox", "description": "search",
                                           "parameters": {"type": "object", "properties": {
                                               "keywords": {"type": "array", "items": {"type": "string"}}}}}}]


def req(eid: str = "e1", **kw: Any) -> ChatRequest:
    messages = kw.pop("messages", [{"role": "system", "content": "s"}, {"role": "user", "content": "question"}])
    return ChatRequest(episode_id=eid, messages=messages, **kw)


def backend(url: str, **kw: Any) -> OpenAIBackend:
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("max_backoff_s", 0.05)
    return OpenAIBackend("m", base_url=url, api_key="k", timeout_s=5, **kw)


def test_native_tool_calls_scripted_server() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "search_inbox", "arguments": json.dumps({"keywords": ["gas"]})}}
    with ScriptedChatServer([completion("", [call], finish="tool_calls")]) as srv:
        (r,) = backend(srv.url).generate([req(tools=TOOLS)])
    assert r.error is None
    assert r.tool_calls is not None and [(c.id, c.name, c.arguments) for c in r.tool_calls] == \
        [("call_1", "search_inbox", {"keywords": ["gas"]})]
    assert (r.prompt_tokens, r.completion_tokens, r.finish_reason) == (11, 7, "tool_calls")
    assert srv.requests[0]["tools"] == TOOLS and srv.requests[0]["model"] == "m"


def test_forced_tool_is_sent_as_tool_choice_scripted_server() -> None:
    call = {"id": "c1", "type": "function",
            "function": {"name": "search_inbox", "arguments": json.dumps({"keywords": ["gas"]})}}
    with ScriptedChatServer([completion("", [call]), completion("plain")]) as srv:
        backend(srv.url).generate([req(tools=TOOLS, tool_choice="search_inbox")])
        backend(srv.url).generate([req(tools=TOOLS)])
    assert srv.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "search_inbox"}}
    assert "tool_choice" not in srv.requests[1]


def test_broken_native_arguments_are_kept_for_the_tool_to_reject_scripted_server() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "search_inbox", "arguments": "{keywords: [oops"}}
    with ScriptedChatServer([completion("", [call])]) as srv:
        (r,) = backend(srv.url).generate([req(tools=TOOLS)])
    assert r.tool_calls and "_unparseable_arguments" in r.tool_calls[0].arguments


def test_429_then_success_is_retried_scripted_server() -> None:
    with ScriptedChatServer([error(429, "slow down", {"Retry-After": "0"}), completion("hello")]) as srv:
        b = backend(srv.url)
        (r,) = b.generate([req()])
    assert r.error is None and r.text == "hello"
    assert len(srv.requests) == 2
    assert r.extra.get("retries") == 1 and b.stats["retries"] == 1


def test_500s_until_give_up_give_one_clear_error_scripted_server() -> None:
    with ScriptedChatServer([error(500, "boom")]) as srv:
        (r,) = backend(srv.url, max_retries=2).generate([req()])
    assert len(srv.requests) == 3
    assert r.error is not None and "HTTP 500" in r.error and "gave up after 3 attempts" in r.error
    assert "\n" not in r.error


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_dead_port_gives_clear_error_quickly() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    b = backend(url, max_retries=1)
    t0 = time.perf_counter()
    rs = b.generate([req(f"e{i}") for i in range(4)])
    elapsed = time.perf_counter() - t0
    assert all(r.error and "connection refused" in r.error and url in r.error for r in rs)
    assert elapsed < 20  # a sanity bound on "gives up", not a speed benchmark
    with pytest.raises(BackendError, match="cannot reach .* connection refused"):
        b.check()


def test_check_passes_on_a_live_server_scripted_server() -> None:
    with ScriptedChatServer([completion("x")]) as srv:
        backend(srv.url).check()


def test_response_format_rejected_falls_back_to_plain_scripted_server() -> None:
    def script(body: dict[str, Any]) -> Reply:
        if "response_format" in body:
            return error(400, "response_format json_schema is not supported by this server")
        return completion('{"accept": true, "reason": "same"}')

    rf = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": {"type": "object"}}}
    with ScriptedChatServer(script) as srv:
        b = backend(srv.url)
        (r,) = b.generate([req(response_format=rf)])
        (r2,) = b.generate([req("e2", response_format=rf)])
    assert r.error is None and json.loads(r.text)["accept"] is True
    assert srv.requests[0]["response_format"] == rf
    assert "response_format" not in srv.requests[1] and "response_format" not in srv.requests[2]
    assert r2.error is None and len(srv.requests) == 3  # remembered: no second rejected attempt


def test_json_in_text_mode_sends_tool_results_as_user_messages_scripted_server() -> None:
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                {"role": "assistant", "content": '{"name": "search_inbox", "arguments": {"keywords": ["a"]}}'},
                {"role": "tool", "tool_call_id": "call_9", "name": "search_inbox", "content": "[]"}]
    with ScriptedChatServer([completion("ok")]) as srv:
        (r,) = backend(srv.url, native_tools=False).generate([req(messages=messages, tools=TOOLS)])
    sent = srv.requests[0]
    assert r.error is None and r.tool_calls is None
    assert "tools" not in sent
    assert sent["messages"][-1] == {"role": "user", "content": "[search_inbox result]\n[]"}


def test_context_overflow_is_context_full_scripted_server() -> None:
    with ScriptedChatServer([error(400, "This model's maximum context length is 8192 tokens.")]) as srv:
        (r,) = backend(srv.url).generate([req()])
    assert r.finish_reason == "context_full" and r.error and r.error.startswith("context_full")


def test_batch_runs_concurrently_and_keeps_order_scripted_server() -> None:
    def script(body: dict[str, Any]) -> Reply:
        time.sleep(0.05)
        return completion("echo:" + body["messages"][-1]["content"])

    with ScriptedChatServer(script) as srv:
        rs = backend(srv.url, concurrency=3).generate(
            [req(f"e{i}", messages=[{"role": "user", "content": str(i)}]) for i in range(7)])
    assert [r.text for r in rs] == [f"echo:{i}" for i in range(7)]
    assert len(srv.requests) == 7


def test_load_backend_builds_endpoint_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        load_backend("gpt-4o-mini")
    with ScriptedChatServer([completion("hi")]) as srv:
        b = load_backend("qwen2.5:0.5b", base_url=srv.url, max_retries=0)
        assert b.name == "qwen2.5:0.5b" and b.native_tools
        (r,) = b.generate([req()])
    assert r.text == "hi"
    monkeypatch.setenv("MY_KEY", "secret")
    b = load_backend("gpt-4o-mini", api_key_env="MY_KEY", native_tools=False)
    assert b.native_tools is False and b.client.api_key == "secret"
