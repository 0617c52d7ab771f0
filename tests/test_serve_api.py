"""`inboxrl serve`'s HTTP API on a real uvicorn server over the real kaminski store: access control, bad requests,
/health, /metrics, /v1/ask (plain and streamed). The model here is a ScriptedBackend (named as such): these tests
are about the server's plumbing and refusals, which must not depend on what a model happens to write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.serving.access import load_access
from serve_helpers import call, running_server, sse_events

INBOX = "vince.kaminski@enron.com"
SEARCH = '{"name": "search_inbox", "arguments": {"keywords": ["Durasoft"]}}'


def _answer(req: object) -> object:
    from inboxrl.models.base import ChatResponse

    # answers with the id of the first search hit, as a model that read the results would
    tool_msgs = [m for m in req.messages if m.get("role") == "tool"]  # type: ignore[attr-defined]
    hits = json.loads(tool_msgs[-1]["content"])["results"] if tool_msgs else []
    src = [hits[0]["message_id"]] if hits else []
    return ChatResponse(text=json.dumps({"name": "return_final_answer",
                                         "arguments": {"answer": "The course is in May.", "sources": src}}),
                        finish_reason="stop", completion_tokens=20, prompt_tokens=100)


@pytest.fixture()
def server(enron_store: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("vince-only-token: [vince.kaminski@enron.com]\nall-inboxes-token: '*'\n")
    backend = ScriptedBackend(default=[SEARCH, _answer], name="scripted")
    with running_server(enron_store, {"scripted": backend}, tmp_path / "out",
                        access=load_access("main-token-123", tokens)) as (url, state):
        yield url, state, tmp_path / "out"


def test_every_request_needs_a_valid_bearer_token(server) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = server
    status, headers, body = call(url + "/health")
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    assert headers.get("www-authenticate") == "Bearer" or headers.get("WWW-Authenticate") == "Bearer"
    assert call(url + "/health", token="wrong-token")[0] == 401
    status, _, body = call(url + "/health", token="main-token-123")
    assert status == 200 and json.loads(body)["models"] == ["scripted"]


def test_ask_answers_streams_and_keeps_the_trajectory(server) -> None:  # type: ignore[no-untyped-def]
    url, _, out = server
    q = {"inbox": INBOX, "question": "When is the Durasoft course?", "date": "2001-05-13"}
    status, _, body = call(url + "/v1/ask", q, token="vince-only-token")
    assert status == 200, body
    r = json.loads(body)
    assert r["answer"] == "The course is in May." and r["stop_reason"] == "answered" and r["turns"] == 2
    assert r["sources"] and r["sources"][0].endswith("@thyme>") and r["harness"] == "free"
    from inboxrl.trajectory import read_jsonl

    kept = {t.meta["episode_id"]: t for t in read_jsonl(out / "trajectories.jsonl")}
    assert r["trajectory_id"] in kept and kept[r["trajectory_id"]].final_answer == r["answer"]

    status, headers, body = call(url + "/v1/ask", {**q, "stream": True}, token="main-token-123")
    assert status == 200 and headers.get("content-type", "").startswith("text/event-stream")
    events = sse_events(body)
    assert [e for e, _ in events] == ["tool", "answer"]
    assert events[0][1]["name"] == "search_inbox" and events[0][1]["ids"]
    assert events[1][1]["answer"] == "The course is in May."


def test_a_token_limited_to_other_inboxes_gets_403_and_nothing_else(server) -> None:  # type: ignore[no-untyped-def]
    url, _, out = server
    before = (out / "trajectories.jsonl").read_text() if (out / "trajectories.jsonl").exists() else ""
    status, _, body = call(url + "/v1/ask", {"inbox": "john.lavorato@enron.com", "question": "Who is Louise?"},
                           token="vince-only-token")
    assert status == 403
    err = json.loads(body)["error"]
    assert set(json.loads(body)) == {"error"} and "may not read" in err["message"]
    # the same refusal whether the inbox exists or not: a restricted token learns nothing about other inboxes
    status2, _, body2 = call(url + "/v1/ask", {"inbox": "nobody@nowhere.example", "question": "x?"},
                             token="vince-only-token")
    assert status2 == 403 and json.loads(body2) == json.loads(body)
    after = (out / "trajectories.jsonl").read_text() if (out / "trajectories.jsonl").exists() else ""
    assert after == before  # no episode ran


@pytest.mark.parametrize(("path", "body", "status", "fragment"), [
    ("/v1/ask", {"question": "When?"}, 422, "inbox"),
    ("/v1/ask", {"inbox": INBOX}, 422, "question"),
    ("/v1/ask", {"inbox": "nobody@nowhere.example", "question": "When?"}, 404, "unknown inbox"),
    ("/v1/ask", {"inbox": INBOX, "question": "When?", "date": "2001-02-30"}, 422, "YYYY-MM-DD"),
    ("/v1/ask", {"inbox": INBOX, "question": "x" * 1_000_000}, 422, "question"),
    ("/v1/ask", {"inbox": INBOX, "question": "When?", "model": "gpt-17"}, 404, "unknown model"),
    ("/v1/chat/completions", {"model": "scripted", "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"type": "function", "function": {"name": "bad name!"}}]}, 422, "tools"),
    ("/v1/chat/completions", {"model": "scripted", "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"function": {"name": "x"}}]}, 422, "tools"),
    ("/v1/chat/completions", {"model": "scripted", "messages": [{"role": "user", "content": "hi"}],
                              "tools": "search"}, 422, "tools"),
    ("/v1/chat/completions", {"model": "scripted", "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"type": "function", "function": {"name": "a"}}],
                              "tool_choice": {"type": "function", "function": {"name": "b"}}}, 400, "not in tools"),
    ("/v1/chat/completions", {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}, 404,
     "unknown model"),
    ("/v1/chat/completions", {"model": "scripted", "messages": []}, 422, "messages"),
    ("/v1/chat/completions", {"model": "scripted", "messages": [{"role": "wizard", "content": "hi"}]}, 422,
     "messages"),
])
def test_bad_requests_get_a_4xx_json_error_and_no_trace(server, path, body, status, fragment) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = server
    got, headers, raw = call(url + path, body, token="main-token-123")
    assert got == status, raw[:300]
    assert headers.get("content-type", "").startswith("application/json")
    err = json.loads(raw)["error"]
    assert fragment in err["message"] or fragment in str(err.get("param")), err
    assert "Traceback" not in raw.decode() and 'File "' not in raw.decode()


def test_malformed_json_and_oversized_bodies(server) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = server
    status, _, raw = call(url + "/v1/ask", raw=b'{"inbox": ', token="main-token-123")
    assert status == 400 and "not valid JSON" in json.loads(raw)["error"]["message"]
    import http.client
    from urllib.parse import urlparse

    u = urlparse(url)  # a 3 MB body announced: refused from the headers, before a byte of it is read
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.putrequest("POST", "/v1/ask")
    conn.putheader("Authorization", "Bearer main-token-123")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(3_000_000))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "error" in json.loads(resp.read())
    conn.close()


def test_metrics_count_requests_errors_latency_and_tokens(server) -> None:  # type: ignore[no-untyped-def]
    url, _, out = server
    call(url + "/v1/ask", {"inbox": INBOX, "question": "When is the Durasoft course?", "date": "2001-05-13"},
         token="main-token-123")
    call(url + "/v1/ask", {"inbox": INBOX}, token="main-token-123")
    status, headers, raw = call(url + "/metrics", token="main-token-123")
    text = raw.decode()
    assert status == 200 and headers.get("content-type", "").startswith("text/plain")
    assert 'inboxrl_requests_total{route="/v1/ask",status="200"} 1' in text
    assert 'inboxrl_requests_total{route="/v1/ask",status="422"} 1' in text
    assert 'inboxrl_errors_total{route="/v1/ask"} 1' in text
    assert 'inboxrl_request_latency_seconds{route="/v1/ask",quantile="0.99"}' in text
    from inboxrl.trajectory import read_jsonl

    (t,) = list(read_jsonl(out / "trajectories.jsonl"))
    assert t.completion_tokens > 20 and f'inboxrl_tokens_total{{kind="completion"}} {t.completion_tokens}' in text


def test_serve_refuses_a_public_address_without_a_token(enron_store: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "inboxrl", "serve", "--db", str(enron_store), "--host", "0.0.0.0",
                        "--model", "local/smollm2-135m"], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--token" in r.stderr and "Traceback" not in r.stderr
