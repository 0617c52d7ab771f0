"""Any OpenAI-compatible chat endpoint: OpenAI, vLLM, llama.cpp server, Ollama, LiteLLM, Gemini's compatible API.

What an evaluation run needs from an endpoint is mostly about failure: rate limits and flaky servers are retried
with exponential backoff (honouring Retry-After), a dead endpoint turns into one clear error per request instead
of a traceback (the agent ends those episodes and the run can be resumed), and after one request has exhausted its
retries on a connection failure the rest of the batch fails fast rather than each waiting through its own
backoff. `check()` lets a CLI find out in a second, before a long run, that the server is not there.

Every attempt has a total deadline (`timeout_s`, default 120 s): the HTTP client's timeout applies to each read, so a
server that sends one byte every few seconds would otherwise hold a request for ever. A reply that is not a chat
completion (not JSON, a non-text `content`) is one error line, not a traceback.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from inboxrl.models.base import BackendError, ChatRequest, ChatResponse
from inboxrl.trajectory import ToolCall

DEAD_HOLD_S = 30.0  # after a request gave up on a connection failure, others fail fast for this long
DEFAULT_TIMEOUT_S = 120.0  # total time for one attempt of one request, every read included
# A server that did not answer within the deadline rarely does on the next try: one more, then give up.
MAX_TIMEOUT_RETRIES = 1
T = TypeVar("T")


class _DeadlineExceeded(Exception):
    pass


class _Malformed(Exception):
    """The server answered 200 with something that is not a chat completion."""


def _print_retry(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _within(deadline_s: float, fn: Callable[[], T]) -> T:
    """fn() in a daemon thread, waited for at most deadline_s. On expiry the thread is left to end on its own read
    timeout (the client's per-read limit) and never blocks the process's exit: the HTTP client has no total
    timeout to set instead."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread as is
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=run, daemon=True, name="inboxrl-endpoint-call").start()
    if not done.wait(deadline_s):
        raise _DeadlineExceeded()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


class OpenAIBackend:
    template_tools = False  # an endpoint gets tools natively (`native_tools`) or described in the prompt

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 name: str | None = None, native_tools: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_retries: int = 5, backoff_s: float = 1.0, max_backoff_s: float = 30.0, concurrency: int = 8,
                 extra_body: dict[str, Any] | None = None, client: Any = None,
                 on_retry: Callable[[str], None] | None = None) -> None:
        from openai import OpenAI

        self.model = model
        self.name = name or model
        self.native_tools = native_tools
        self.base_url = base_url or "https://api.openai.com/v1"
        if not timeout_s > 0:
            raise BackendError(f"the endpoint timeout must be more than 0 s, got {timeout_s}")
        self.timeout_s = float(timeout_s)
        self.on_retry = on_retry or _print_retry  # "retry 2/5 in 4 s: HTTP 429", as it happens
        self.max_retries = max(0, max_retries)
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.concurrency = max(1, concurrency)
        self.extra_body = extra_body or {}
        # The SDK's own retries are off: ours count attempts, honour the dead-endpoint hold, and say what failed.
        self.client = client or OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout_s,
                                       max_retries=0)
        self._no_response_format = False  # the server rejected response_format once: stop sending it
        self._use_max_completion_tokens = False
        self._dead_until = 0.0
        self._dead_error = ""
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    # --- the ChatBackend interface -----------------------------------------------------------------------------

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        if not requests:
            return []
        if len(requests) == 1 or self.concurrency == 1:
            return [self._one(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self._one, requests))

    def end_episode(self, episode_id: str) -> None:
        return None  # stateless: the whole chat is sent every turn

    def check(self, timeout_s: float = 5.0) -> None:
        """Raises `BackendError` with one line when the endpoint cannot be reached or refuses the key."""
        import openai

        try:
            _within(timeout_s, lambda: self.client.with_options(timeout=timeout_s, max_retries=0).models.list())
        except _DeadlineExceeded as e:
            raise BackendError(f"cannot reach {self.base_url} : no answer within {timeout_s:g} s") from e
        except openai.AuthenticationError as e:
            raise BackendError(f"{self.base_url} rejected the API key: {_status_line(e)}") from e
        except openai.APIConnectionError as e:
            raise BackendError(f"cannot reach {self.base_url} : {_connection_reason(e)}") from e
        except openai.APIStatusError:
            return  # reachable; some servers simply do not implement /models

    # --- one request ---------------------------------------------------------------------------------------------

    def _kwargs(self, r: ChatRequest) -> dict[str, Any]:
        kw: dict[str, Any] = {"model": self.model, "messages": self._messages(r), "temperature": r.temperature}
        kw["max_completion_tokens" if self._use_max_completion_tokens else "max_tokens"] = r.max_tokens
        if r.seed is not None:
            kw["seed"] = r.seed
        if self.native_tools and r.tools:
            kw["tools"] = r.tools
            if r.tool_choice:
                kw["tool_choice"] = {"type": "function", "function": {"name": r.tool_choice}}
        if r.response_format is not None and not self._no_response_format:
            rf = r.response_format
            if "type" not in rf:  # a bare JSON schema
                rf = {"type": "json_schema", "json_schema": {"name": "response", "schema": rf}}
            kw["response_format"] = rf
        if self.extra_body:
            kw["extra_body"] = self.extra_body
        return kw

    def _messages(self, r: ChatRequest) -> list[dict[str, Any]]:
        """In JSON-in-text mode the assistant turns carry no structured calls, and endpoints reject a `tool`
        message that answers no call; such results are sent as user messages instead."""
        out: list[dict[str, Any]] = []
        call_ids: set[str] = set()
        for m in r.messages:
            m = dict(m)
            if m.get("role") == "assistant":
                if not self.native_tools:
                    m.pop("tool_calls", None)
                for c in m.get("tool_calls") or []:
                    call_ids.add(str(c.get("id")))
                if not m.get("tool_calls"):
                    m.pop("tool_calls", None)
            elif m.get("role") == "tool" and str(m.get("tool_call_id")) not in call_ids:
                label = m.get("name") or "tool"
                m = {"role": "user", "content": f"[{label} result]\n{m.get('content') or ''}"}
            out.append(m)
        return out

    def _one(self, r: ChatRequest) -> ChatResponse:
        import openai

        t0 = time.perf_counter()
        attempt = 0
        timeouts = 0
        last = ""
        while True:
            if time.time() < self._dead_until:
                return ChatResponse(error=self._dead_error, latency_s=time.perf_counter() - t0)
            kwargs = self._kwargs(r)
            try:
                resp = _within(self.timeout_s, lambda kw=kwargs: self.client.chat.completions.create(**kw))  # type: ignore[misc]
                with self._lock:
                    self.stats["requests"] += 1
                return self._response(resp, time.perf_counter() - t0, attempt)
            except _DeadlineExceeded:
                timeouts += 1
                last = f"no complete answer from {self.base_url} within {self.timeout_s:g} s"
                if attempt >= self.max_retries or timeouts > MAX_TIMEOUT_RETRIES:
                    return self._fail(f"{last} (gave up after {attempt + 1} attempts)", t0)
                self._retry(attempt, 0.0, f"timed out after {self.timeout_s:g} s")
                attempt += 1
                continue
            except (_Malformed, ValueError, TypeError, AttributeError) as e:
                # a 200 whose body is not JSON (the SDK's JSONDecodeError) or not a chat completion
                detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                return self._fail(f"{self.base_url} sent a reply that is not a chat completion: {detail}", t0)
            except openai.BadRequestError as e:
                msg = _status_line(e).lower()
                if (("response_format" in msg or "json_schema" in msg or "structured" in msg)
                        and r.response_format is not None and not self._no_response_format):
                    self._no_response_format = True  # plain text then; the caller's prompt spells the JSON out
                    continue
                if "max_tokens" in msg and "max_completion_tokens" in msg and not self._use_max_completion_tokens:
                    self._use_max_completion_tokens = True
                    continue
                if "context" in msg and ("length" in msg or "window" in msg or "too long" in msg):
                    return ChatResponse(error=f"context_full: {_status_line(e)}", finish_reason="context_full",
                                        latency_s=time.perf_counter() - t0)
                return self._fail(f"{self.base_url} rejected the request: {_status_line(e)}", t0)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                return self._fail(f"{self.base_url} refused access: {_status_line(e)}", t0)
            except openai.NotFoundError as e:
                return self._fail(f"model {self.model!r} not found at {self.base_url}: {_status_line(e)}", t0)
            except openai.UnprocessableEntityError as e:
                return self._fail(f"{self.base_url} rejected the request: {_status_line(e)}", t0)
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError,
                    openai.APIStatusError) as e:
                status = getattr(e, "status_code", None)
                if isinstance(e, openai.APIStatusError) and status is not None and status < 500 and status != 429 \
                        and status != 408:
                    return self._fail(f"{self.base_url} answered HTTP {status}: {_status_line(e)}", t0)
                if isinstance(e, openai.APIConnectionError):
                    kind = "timed out" if isinstance(e, openai.APITimeoutError) else _connection_reason(e)
                    last = f"cannot reach {self.base_url} : {kind}"
                else:
                    last = f"{self.base_url} answered HTTP {status}: {_status_line(e)}"
                if attempt >= self.max_retries:
                    err = f"{last} (gave up after {attempt + 1} attempts)"
                    if isinstance(e, openai.APIConnectionError) and not isinstance(e, openai.APITimeoutError):
                        self._dead_until = time.time() + DEAD_HOLD_S
                        self._dead_error = err
                    return self._fail(err, t0)
                reason = (kind if isinstance(e, openai.APIConnectionError) else f"HTTP {status}")
                self._retry(attempt, self._delay(attempt, e), reason)
                attempt += 1

    def _retry(self, attempt: int, delay: float, reason: str) -> None:
        with self._lock:
            self.stats["retries"] += 1
        self.on_retry(f"retry {attempt + 1}/{self.max_retries} in {delay:.0f} s: {reason} ({self.name})")
        time.sleep(delay)

    def _delay(self, attempt: int, e: Exception) -> float:
        retry_after = None
        resp = getattr(e, "response", None)
        if resp is not None:
            try:
                retry_after = float(resp.headers.get("retry-after"))
            except (TypeError, ValueError):
                retry_after = None
        base = min(self.max_backoff_s, self.backoff_s * (2 ** attempt))
        if retry_after is not None:
            return min(self.max_backoff_s, max(retry_after, 0.0))
        return base * (0.5 + random.random() / 2)

    def _fail(self, error: str, t0: float) -> ChatResponse:
        with self._lock:
            self.stats["failures"] += 1
        return ChatResponse(error=error, latency_s=time.perf_counter() - t0)

    def _response(self, resp: Any, latency: float, retries: int) -> ChatResponse:
        from inboxrl.models.toolcalls import _FAIL, _loads_lenient, new_call_id

        if not getattr(resp, "choices", None):
            return ChatResponse(error=f"{self.base_url} returned no choices", latency_s=latency)
        choice = resp.choices[0]
        msg = getattr(choice, "message", None)
        content = getattr(msg, "content", None)
        if msg is None or not isinstance(content, str | None):
            raise _Malformed(f"message content is {type(content).__name__}, not text")
        calls: list[ToolCall] | None = None
        if getattr(msg, "tool_calls", None):
            calls = []
            for c in msg.tool_calls:
                fn = getattr(c, "function", None)
                if fn is None:
                    continue
                if not isinstance(fn.name, str | None) or not isinstance(fn.arguments, str | dict | None):
                    raise _Malformed("a tool call whose name or arguments are not text")
                raw = fn.arguments or "{}"
                args = _loads_lenient(raw) if isinstance(raw, str) else raw
                if args is _FAIL or not isinstance(args, dict):
                    # Kept, not dropped: the tool rejects it as bad arguments and the rubric counts it.
                    args = {"_unparseable_arguments": raw}
                calls.append(ToolCall(id=c.id or new_call_id(), name=fn.name or "", arguments=args))
        usage = getattr(resp, "usage", None)
        return ChatResponse(
            text=content or "",
            tool_calls=calls,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            latency_s=latency,
            finish_reason=choice.finish_reason,
            extra={"retries": retries} if retries else {},
        )


def _status_line(e: Exception) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"]).splitlines()[0][:300]
        if isinstance(err, str):
            return err.splitlines()[0][:300]
    s = str(e).strip().splitlines()
    return (s[0] if s else type(e).__name__)[:300]


def _connection_reason(e: BaseException) -> str:
    """The root cause of a connection failure, in words ("connection refused", "name not resolved")."""
    seen = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError):
            return "connection refused"
        text = str(cur).lower()
        if "connection refused" in text or "errno 111" in text:
            return "connection refused"
        if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
            return "host name not resolved"
        if "timed out" in text:
            return "timed out"
        cur = cur.__cause__ or cur.__context__
    return str(e).splitlines()[0] if str(e) else "connection failed"
