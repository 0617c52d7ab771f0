"""A scripted chat backend: replays fixed outputs. For deterministic edge cases only (format errors, backend errors,
driver mechanics), never as a stand-in for a model's behaviour: every measured figure comes from real models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from inboxrl.models.base import ChatRequest, ChatResponse

Step = str | ChatResponse | Callable[[ChatRequest], ChatResponse]


class ScriptedBackend:
    """Plays `scripts[question_id]` (or `default`) turn by turn; episode ids start with the question id.

    When a script runs out, the backend answers "I don't know" so that a test can never hang. Every request and
    every batch size is recorded for assertions about the driver.
    """

    native_tools = False
    template_tools = False

    def __init__(self, scripts: dict[str, Sequence[Step]] | None = None, default: Sequence[Step] = (),
                 name: str = "scripted", native_tools: bool = False):
        self.scripts = {k: list(v) for k, v in (scripts or {}).items()}
        self.default = list(default)
        self.name = name
        self.native_tools = native_tools
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
