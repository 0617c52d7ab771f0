"""The one scripted chat backend: replays fixed outputs. For deterministic edge cases only (format errors, backend
errors, driver mechanics, cache hits), never as a stand-in for a model's behaviour: every measured figure comes from
real models. Agent tests script episodes turn by turn; judge and question-generation tests give a `reply` function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
