"""The backend interface the agent loop talks to.

A backend takes a *batch* of chat requests and returns one response each, because batching is what makes local
generation affordable (and a remote backend simply fans the batch out over threads). Each request names its
episode, so a local backend can keep that episode's token stream and append to it rather than re-tokenising the
whole chat every turn: training needs exactly the ids that were sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from inboxrl.trajectory import ToolCall


@dataclass
class ChatRequest:
    episode_id: str  # stable for all turns of one episode
    messages: list[dict[str, Any]]  # OpenAI-format messages, the whole chat so far
    tools: list[dict[str, Any]] | None = None  # OpenAI tool schemas
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int | None = None
    # JSON schema the answer must follow (judges, question generation). Endpoints that support structured output
    # get it as `response_format`; local backends describe it in the prompt and parse the JSON from the text.
    response_format: dict[str, Any] | None = None
    # Force the reply to be a call of this tool. Endpoints with native tools get it as `tool_choice`; local
    # backends start the reply with `assistant_prefix` (the call's opening JSON), so the model only writes its
    # arguments. The prefix ids are the environment's, not the model's: they are input ids, never trained on.
    tool_choice: str | None = None
    assistant_prefix: str | None = None
    # Teacher forcing (local backends): the reply's text after `assistant_prefix`, taken instead of sampled. Its
    # ids are recorded as the output ids, exactly where sampled ids would be, so a demonstration becomes training
    # data through the same splice and mask as a rollout (the supervised warm start).
    demonstration: str | None = None


@dataclass
class ChatResponse:
    text: str = ""
    # Set when the backend parsed tool calls natively (OpenAI `tools`); None means "parse them from `text`".
    tool_calls: list[ToolCall] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None  # "stop", "length", "tool_calls", ...
    error: str | None = None  # a backend failure (dead endpoint, context overflow): the episode stops, clearly
    # Local backends only: ids appended to the episode's context before generating, and the sampled ids.
    input_ids: list[int] | None = None
    output_ids: list[int] | None = None
    output_logprobs: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BackendError(RuntimeError):
    """A backend that cannot serve at all (dead endpoint, missing model file): one clear line for the user."""


@runtime_checkable
class ChatBackend(Protocol):
    name: str  # the model spec, as recorded in trajectories and reports
    native_tools: bool  # True: pass `tools` and read structured calls; False: tools are described in text

    @property
    def template_tools(self) -> bool:
        """True: the model's chat template shows a request's `tools` to the model."""
        ...

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]: ...

    def end_episode(self, episode_id: str) -> None:
        """Frees per-episode state (a local backend's token stream)."""
        ...
