"""The one scripted chat backend: replays fixed outputs. For deterministic edge cases only (format errors, backend
errors, driver mechanics, cache hits), never as a stand-in for a model's behaviour: every measured figure comes from
real models. Agent tests script episodes turn by turn; judge and question-generation tests give a `reply` function.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from inboxrl.models.base import ChatRequest, ChatResponse

Step = str | ChatResponse | Callable[[ChatRequest], ChatResponse]
Reply = Callable[[ChatRequest, int], "ChatResponse | str"]  # (request, 1-based number of requests so far) -> reply


class ScriptedBackend:
    """Plays `scripts[question_id]` (or `default`) turn by turn; episode ids start with the question id. With
    `reply`, every request is answered by `reply(request, n)` instead, n counting requests from 1.

    When a script runs out, the backend answers "I don't know" so that a test can never hang. Every request, every
    batch size and every ended episode is recorded for assertions about the caller.
    """

    native_tools = False
    template_tools = False

    def __init__(self, scripts: dict[str, Sequence[Step]] | None = None, default: Sequence[Step] = (),
                 name: str = "scripted", native_tools: bool = False, reply: Reply | None = None):
        self.scripts = {k: list(v) for k, v in (scripts or {}).items()}
        self.default = list(default)
        self.name = name
        self.native_tools = native_tools
        self.reply = reply
        self.calls = 0  # requests answered
        self.position: dict[str, int] = {}
        self.requests: list[ChatRequest] = []
        self.batch_sizes: list[int] = []
        self.ended: list[str] = []

    def _script(self, episode_id: str) -> list[Step]:
        for qid, script in self.scripts.items():
            if episode_id.startswith(f"{qid}-"):
                return script
        return self.default

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        self.batch_sizes.append(len(requests))
        out = []
        for r in requests:
            self.requests.append(r)
            self.calls += 1
            if self.reply is not None:
                res = self.reply(r, self.calls)
                out.append(res if isinstance(res, ChatResponse) else ChatResponse(text=res, finish_reason="stop"))
                continue
            i = self.position.get(r.episode_id, 0)
            self.position[r.episode_id] = i + 1
            script = self._script(r.episode_id)
            step: Step = (script[i] if i < len(script)
                          else '{"name": "return_final_answer", "arguments": {"answer": "I don\'t know", '
                               '"sources": []}}')
            if callable(step):
                out.append(step(r))
            elif isinstance(step, ChatResponse):
                out.append(step)
            else:
                out.append(ChatResponse(text=step, prompt_tokens=sum(len(str(m.get("content") or "")) // 4
                                                                     for m in r.messages),
                                        completion_tokens=max(1, len(step) // 4), latency_s=0.01,
                                        finish_reason="stop"))
        return out

    def end_episode(self, episode_id: str) -> None:
        self.ended.append(episode_id)


# ---- the same script over HTTP: bodies of an OpenAI-compatible endpoint, for hostile-endpoint tests and the
# reliability benchmark, which exercise the real endpoint client against a real loopback server


def completion_body(message: dict[str, Any]) -> bytes:
    """A chat-completion response body carrying `message`."""
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                       "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}}).encode()


def scripted_agent_reply(body: dict[str, Any]) -> bytes:
    """SCRIPTED agent over HTTP: search for the question's first long word, then answer citing the first hit."""
    msgs = body["messages"]
    tool_msgs = [m for m in msgs if m["role"] == "tool"]
    if not tool_msgs:
        words = [w.strip("?,.") for w in str(msgs[-1]["content"]).split() if len(w) > 5] or ["enron"]
        call = {"name": "search_inbox", "arguments": json.dumps({"keywords": words[:1]})}
    else:
        try:
            ids = [r["message_id"] for r in json.loads(tool_msgs[-1]["content"]).get("results", [])]
        except (ValueError, AttributeError):
            ids = []
        call = {"name": "return_final_answer", "arguments": json.dumps({"answer": "I don't know",
                                                                        "sources": ids[:1]})}
    return completion_body({"role": "assistant", "content": None,
                            "tool_calls": [{"id": f"c{len(msgs)}", "type": "function", "function": call}]})
