"""The HTTP API: `/v1/ask` (the agent), an OpenAI-compatible `/v1/chat/completions` and `/v1/models`, `/health`,
`/metrics`. Every error is a JSON body with a 4xx/5xx status; a stack trace never leaves the process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException

from inboxrl.agent.config import AgentConfig
from inboxrl.models.base import ChatRequest, ChatResponse
from inboxrl.serving.access import Access
from inboxrl.serving.batcher import BatchingBackend
from inboxrl.serving.metrics import ServerMetrics
from inboxrl.serving.schemas import AskRequest, ChatCompletionRequest
from inboxrl.trajectory import EVAL_TRAJECTORIES, Trajectory, write_jsonl

log = logging.getLogger("inboxrl.serve")

MAX_BODY_BYTES = 2 * 1024 * 1024  # a long chat fits; a flood does not reach the JSON parser
ROUTES = ("/v1/ask", "/v1/chat/completions", "/v1/models", "/health", "/metrics")
TRAJECTORIES = EVAL_TRAJECTORIES  # the file `inboxrl eval` writes, so the viewer opens --out as a run


@dataclass
class ServedModel:
    spec: str
    backend: BatchingBackend
    cfg: AgentConfig  # the agent harness /v1/ask runs this model under


@dataclass
class ServerState:
    db: Path
    models: dict[str, ServedModel]
    access: Access
    out_dir: Path
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    started: float = field(default_factory=time.time)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _inboxes: dict[str, bool] = field(default_factory=dict)

    def model(self, name: str | None) -> ServedModel:
        if not name:
            return next(iter(self.models.values()))
        if name in self.models:
            return self.models[name]
        canonical = _canonical(name)
        for m in self.models.values():
            if _canonical(m.spec) == canonical:
                return m
        raise HTTPException(404, f"unknown model {name[:200]!r}: this server serves {', '.join(self.models)}")

    def inbox_exists(self, inbox: str) -> bool:
        if inbox not in self._inboxes:
            from inboxrl.store.access import Store

            with Store.open(self.db) as store:
                self._inboxes[inbox] = store.has_inbox(inbox)
        return self._inboxes[inbox]

    def keep(self, t: Trajectory) -> None:
        with self._write_lock:
            write_jsonl(self.out_dir / TRAJECTORIES, [t.without_token_ids()])
        self.metrics.tokens(t.prompt_tokens, t.completion_tokens)


def _canonical(spec: str) -> str:
    from inboxrl.models.base import BackendError
    from inboxrl.models.spec import parse_spec

    try:
        ms = parse_spec(spec)
    except BackendError:
        return spec
    if ms.bundled:
        return f"local/{ms.bundled}" + (f"+{ms.adapter}" if ms.adapter else "")
    return ms.raw


def _error(status: int, message: str, kind: str | None = None, param: str | None = None) -> JSONResponse:
    kind = kind or ("invalid_request_error" if status < 500 else "server_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}},
                        status_code=status)


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(title="inboxrl", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.inboxrl = state

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        msg = str(first.get("msg", "invalid request"))
        if first.get("type") == "json_invalid":
            msg = "the body is not valid JSON"
        more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
        return _error(422 if first.get("type") != "json_invalid" else 400, f"{loc}: {msg}{more}" if loc else msg,
                      param=loc or None)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(500, "internal server error (logged on the server)")

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Any]) -> Any:
        t0 = time.perf_counter()
        route = request.url.path if request.url.path in ROUTES else "other"
        response: Any
        allowed = state.access.check(request.headers.get("authorization"))
        length = request.headers.get("content-length")
        if allowed is None:
            response = _error(401, "missing or invalid bearer token (Authorization: Bearer <token>)",
                              kind="authentication_error")
            response.headers["WWW-Authenticate"] = "Bearer"
        elif length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            response = _error(413, f"request body over {MAX_BODY_BYTES} bytes")
        else:
            request.state.inboxes = allowed
            try:
                response = await call_next(request)
            except Exception:
                log.exception("unhandled error")
                response = _error(500, "internal server error (logged on the server)")
        state.metrics.observe(route, response.status_code, time.perf_counter() - t0)
        return response

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(state.models), "uptime_s": round(time.time() - state.started, 1)}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        extra: dict[str, float] = {"uptime_seconds": round(time.time() - state.started, 1)}
        for i, m in enumerate(state.models.values()):
            extra[f"backend_batches_total_{i}"] = m.backend.batches
            extra[f"backend_batched_requests_total_{i}"] = m.backend.batched_requests
        return PlainTextResponse(state.metrics.render(extra), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": int(state.started), "owned_by": "inboxrl",
             "harness": m.cfg.harness_name()} for name, m in state.models.items()]}

    @app.post("/v1/ask", response_model=None)
    async def ask(body: AskRequest, request: Request) -> Any:
        if not Access.allows(request.state.inboxes, body.inbox):
            raise HTTPException(403, "this token may not read that inbox")
        served = state.model(body.model)
        if not await run_in_threadpool(state.inbox_exists, body.inbox):
            raise HTTPException(404, f"unknown inbox {body.inbox!r}: no mail to or from it in the store")
        from inboxrl.questions.schema import Question

        q = Question(id=f"serve-{uuid.uuid4().hex[:12]}", question=body.question, answer="",
                     inbox_address=body.inbox, query_date=body.date or dt.date.today().isoformat())

        def run(on_event: Callable[[Any], None] | None) -> Trajectory:
            from inboxrl.agent.runner import run_episodes

            t = run_episodes([q], served.backend, state.db, served.cfg, on_event=on_event, batch_size=1)[0]
            t.golden_answer = None
            state.keep(t)
            return t

        if not body.stream:
            t = await run_in_threadpool(run, None)
            if t.stop_reason == "backend_error":
                raise HTTPException(502, f"the model failed: {t.backend_error or 'backend error'}")
            return _ask_result(t)
        return StreamingResponse(_ask_stream(run), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatCompletionRequest) -> Any:
        served = state.model(body.model)
        req, tool_names = _chat_request(body, served.cfg)
        resp: ChatResponse = (await run_in_threadpool(served.backend.generate, [req]))[0]
        served.backend.end_episode(req.episode_id)
        if resp.error:
            if resp.finish_reason == "context_full":
                raise HTTPException(400, f"the chat is too long for the model's context: {resp.error}")
            raise HTTPException(502, f"the model failed: {resp.error}")
        state.metrics.tokens(resp.prompt_tokens, resp.completion_tokens)
        forced = body.tool_choice.function.name if body.tool_choice is not None and not isinstance(
            body.tool_choice, str) else None
        completion = _completion(body.model, resp, tool_names, forced)
        if not body.stream:
            return completion
        return StreamingResponse(_chat_chunks(completion), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return app


def _ask_result(t: Trajectory) -> dict[str, Any]:
    return {"answer": t.final_answer, "sources": t.final_sources, "turns": len(t.turns),
            "stop_reason": t.stop_reason, "trajectory_id": t.meta.get("episode_id"), "model": t.model,
            "harness": t.meta.get("harness")}


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n".encode()


async def _ask_stream(run: Callable[[Callable[[Any], None] | None], Trajectory]) -> AsyncIterator[bytes]:
    """One `tool` event per tool call as it happens (searches, reads, refusals), then `answer` (or `error`)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def on_event(ev: Any) -> None:
        if ev.kind in ("search", "read", "tool", "tool_error", "format_error"):
            d = ev.data
            item = {"turn": ev.turn, "kind": ev.kind, "name": d.get("name"), "arguments": d.get("arguments"),
                    "ids": d.get("ids"), "error": d.get("error") or d.get("detail")}
            loop.call_soon_threadsafe(queue.put_nowait, ("tool", {k: v for k, v in item.items() if v is not None}))

    def worker() -> None:
        try:
            t = run(on_event)
            loop.call_soon_threadsafe(queue.put_nowait, ("answer", _ask_result(t)))
        except Exception as e:
            log.exception("ask failed")
            loop.call_soon_threadsafe(queue.put_nowait, ("error", {"message": f"{type(e).__name__}"}))

    task = asyncio.ensure_future(run_in_threadpool(worker))
    while True:
        kind, data = await queue.get()
        yield _sse(kind, data)
        if kind in ("answer", "error"):
            break
    await task


def _chat_request(body: ChatCompletionRequest, cfg: AgentConfig) -> tuple[ChatRequest, list[str]]:
    """The OpenAI request as the backend's ChatRequest; a named `tool_choice` starts the reply with that tool's
    call (the same forcing the agent's guided harness uses on a local model)."""
    from inboxrl.agent.prompt import call_prefix

    messages = []
    for m in body.messages:
        d = m.model_dump(exclude_none=True)
        if d["role"] == "developer":
            d["role"] = "system"
        messages.append(d)
    choice = body.tool_choice
    tools = [t.model_dump() for t in body.tools] if body.tools and choice != "none" else None
    names = [t["function"]["name"] for t in tools or []]
    prefix = None
    if choice is not None and not isinstance(choice, str):
        if choice.function.name not in names:
            raise HTTPException(400, f"tool_choice names {choice.function.name[:64]!r}, which is not in tools")
        prefix = call_prefix(next(t for t in tools or [] if t["function"]["name"] == choice.function.name))
    elif choice == "required":
        if not tools:
            raise HTTPException(400, "tool_choice 'required' needs tools")
        prefix = call_prefix(tools[0]) if len(tools) == 1 else '{"name": "'
    max_tokens = body.max_completion_tokens or body.max_tokens or cfg.max_tokens_per_turn
    temperature = body.temperature if body.temperature is not None else 1.0
    return ChatRequest(episode_id=f"chat-{uuid.uuid4().hex}", messages=messages, tools=tools, max_tokens=max_tokens,
                       temperature=temperature, seed=body.seed, assistant_prefix=prefix), names


def _completion(model: str, resp: ChatResponse, tool_names: list[str], forced: str | None = None) -> dict[str, Any]:
    """The OpenAI chat.completion object. Calls the model wrote as text become structured `tool_calls`; the text
    stays as the content, so a client that sends it back gets exactly the chat the model saw. A forced tool always
    comes back as a call, as OpenAI's does, its arguments as written when they are not valid JSON."""
    from inboxrl.models.toolcalls import new_call_id, parse_tool_calls

    calls: list[dict[str, Any]] = []
    if tool_names:
        for c in parse_tool_calls(resp.text or "", frozenset(tool_names)).calls:
            calls.append({"id": c.id, "type": "function",
                          "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}})
    if forced and not any(c["function"]["name"] == forced for c in calls):
        raw = (resp.text or "").partition('"arguments":')[2].strip()
        if raw.count("}") > raw.count("{"):
            raw = raw[: raw.rfind("}")].rstrip()
        calls = [{"id": new_call_id(), "type": "function", "function": {"name": forced, "arguments": raw}}]
    finish = "tool_calls" if calls else ("length" if resp.finish_reason == "length" else "stop")
    message: dict[str, Any] = {"role": "assistant", "content": resp.text or ""}
    if calls:
        message["tool_calls"] = calls
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": resp.prompt_tokens, "completion_tokens": resp.completion_tokens,
                      "total_tokens": resp.prompt_tokens + resp.completion_tokens}}


async def _chat_chunks(c: dict[str, Any]) -> AsyncIterator[bytes]:
    """A finished completion as `chat.completion.chunk` events: the local backend does not stream tokens, so the
    reply comes as one content delta, then its tool calls, then the finish reason and usage."""
    base = {"id": c["id"], "object": "chat.completion.chunk", "created": c["created"], "model": c["model"]}
    choice = c["choices"][0]
    msg = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        return ("data: " + json.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                                       **extra}, ensure_ascii=False) + "\n\n").encode()

    yield chunk({"role": "assistant", "content": ""})
    if msg.get("content"):
        yield chunk({"content": msg["content"]})
    for i, call in enumerate(msg.get("tool_calls") or []):
        yield chunk({"tool_calls": [{"index": i, **call}]})
    yield chunk({}, choice["finish_reason"], usage=c["usage"])
    yield b"data: [DONE]\n\n"


def check_store(db: Path) -> None:
    """Fails at startup, in one line, on a file that is not a readable store."""
    from inboxrl.store.access import Store

    try:
        with Store.open(db) as store:
            store.check()
    except (sqlite3.DatabaseError, FileNotFoundError) as e:
        raise ValueError(f"{db}: not a readable inboxrl store ({e})") from None
