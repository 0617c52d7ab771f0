"""Per-episode token streams: the exact ids an episode's model saw and sampled, kept between turns.

Each episode owns a stream (prompt + everything sampled + everything the environment appended). A new turn
tokenises only the text the new messages add (found by diffing two renders of the chat template, see
`chat_render`), so nothing is re-tokenised and training gets exactly the ids the model saw and sampled. An engine
(see `engine`) may keep its own state for a stream (a KV cache) in `Stream.kv`; the streams never look inside it.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from inboxrl.models.base import ChatRequest, ChatResponse

MAX_STREAMS = 4096  # episodes whose stream is kept; older ones are dropped (a caller that never ends episodes)


class ContextFull(Exception):
    """The chat no longer fits the model's context window."""


@dataclass
class Stream:
    ids: list[int]
    messages: list[dict[str, Any]]
    tools_key: str
    last_stop: bool = False  # did the last reply end with the end-of-turn token?
    kv: Any = None  # the engine's state for ids[:kv_len] (a KV cache), or None
    kv_len: int = 0
    last_used: float = 0.0


@dataclass
class Work:
    """One request of a batch, on its way through an engine: the engine fills `out`, `logprobs`, `stopped` and
    `prefill_tokens`, and may leave its state for the stream in `stream.kv`."""

    index: int  # position in the request list
    req: ChatRequest
    stream: Stream
    new_ids: list[int]  # ids appended before generation (the response's input_ids)
    max_new: int
    reset: bool
    feed: list[int] = field(default_factory=list)  # ids the engine must still compute (not covered by stream.kv)
    out: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    stopped: bool = False
    generator: Any = None  # a seeded torch.Generator for sampled requests, None for greedy ones
    prefill_tokens: int = 0
    error: str | None = None


class Streams:
    """The streams of all live episodes of one backend, and the request <-> stream bookkeeping."""

    def __init__(self, tokenizer: Any, renderer: Any, eot_id: int, max_context: int) -> None:
        self.tokenizer = tokenizer
        self.renderer = renderer
        self.eot_id = eot_id
        self.eot_text = renderer.info.end_of_turn
        self.max_context = max_context
        self.by_episode: dict[str, Stream] = {}
        self._rng = random.Random()

    def ids(self, episode_id: str) -> list[int] | None:
        st = self.by_episode.get(episode_id)
        return list(st.ids) if st else None

    def end(self, episode_id: str) -> None:
        self.by_episode.pop(episode_id, None)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prepare(self, index: int, r: ChatRequest) -> Work:
        """The request as work: its stream continued (only the new text tokenised) or started afresh."""
        from inboxrl.models.chat_render import normalise

        msgs = normalise(r.messages)
        tools_key = json.dumps(r.tools, sort_keys=True) if r.tools else ""
        st = self.by_episode.get(r.episode_id)
        new_ids: list[int] | None = None
        base: list[int] = []
        if st is not None and st.tools_key == tools_key and len(msgs) > len(st.messages) + 1 \
                and msgs[: len(st.messages)] == st.messages and msgs[len(st.messages)].get("role") == "assistant":
            suffix = self.renderer.suffix(msgs, len(st.messages) + 1, r.tools)
            if suffix is not None:
                closing = ("" if st.last_stop else self.eot_text) + self.renderer.info.after_turn
                new_ids = self.encode(closing + suffix)
                base = st.ids
        reset = st is not None and new_ids is None
        if new_ids is None:
            new_ids = self.encode(self.renderer.render(msgs, r.tools, add_generation_prompt=True))
            base = []
            st = Stream(ids=[], messages=msgs, tools_key=tools_key)
        assert st is not None  # new_ids is set only on a continued stream; otherwise a fresh one was just made
        if r.assistant_prefix:  # the reply's forced opening: appended as input ids, so it is never trained on
            new_ids = new_ids + self.encode(r.assistant_prefix)
        total = len(base) + len(new_ids)
        room = self.max_context - total
        if room < 1:
            raise ContextFull(f"context_full: the chat needs {total} tokens and the model's context is "
                              f"{self.max_context}")
        work = Work(index=index, req=r, stream=st, new_ids=new_ids, max_new=max(1, min(r.max_tokens, room)),
                    reset=reset)
        all_ids = base + new_ids
        if st.kv is None or st.kv_len > len(base):
            st.kv, st.kv_len = None, 0
        work.feed = all_ids[st.kv_len:]
        work.generator = self._generator(r, len(all_ids))
        # Commit the stream only after generation (in `finish`); keep the would-be ids here.
        work.stream = Stream(ids=all_ids, messages=msgs, tools_key=tools_key, last_stop=st.last_stop, kv=st.kv,
                             kv_len=st.kv_len)
        return work

    def demonstrate(self, w: Work) -> None:
        """The reply is given, not sampled: its ids (and the end-of-turn id) become the output ids, with log-prob
        0, and nothing is computed. The episode's stream grows exactly as if the model had written them. One longer
        than the turn's token budget is cut as a sample would be, so the episode records the same format error."""
        ids = self.encode(w.req.demonstration or "")
        w.stopped = len(ids) < w.max_new
        w.out = ids + [self.eot_id] if w.stopped else ids[: w.max_new]
        w.logprobs = [0.0] * len(w.out)

    def _generator(self, r: ChatRequest, position: int) -> Any:
        if r.temperature <= 0:
            return None
        import torch

        g = torch.Generator()
        if r.seed is None:
            g.manual_seed(self._rng.getrandbits(63))
        else:
            # The episode id is mixed in so that a group of episodes sharing one seed (GRPO) still differs, while
            # a rerun with the same ids and seed reproduces exactly.
            h = hashlib.sha256(f"{r.seed}:{r.episode_id}:{position}".encode()).digest()
            g.manual_seed(int.from_bytes(h[:8], "little") & ((1 << 63) - 1))
        return g

    def finish(self, w: Work, wall: float, n: int) -> ChatResponse:
        """Commits the work's stream and turns it into the response."""
        st = w.stream
        st.ids = st.ids + w.out
        st.last_stop = w.stopped and bool(w.out) and w.out[-1] == self.eot_id
        st.last_used = time.time()
        if len(self.by_episode) >= MAX_STREAMS and w.req.episode_id not in self.by_episode:
            oldest = min(self.by_episode, key=lambda k: self.by_episode[k].last_used)
            self.by_episode.pop(oldest)
        self.by_episode[w.req.episode_id] = st
        body = w.out[:-1] if w.stopped else w.out
        text = (w.req.assistant_prefix or "") + self.tokenizer.decode(body, skip_special_tokens=True)
        extra: dict[str, Any] = {"prefill_tokens": w.prefill_tokens, "cached_tokens": len(st.ids) - len(w.out)
                                 - w.prefill_tokens, "batch_size": n, "wall_share_s": wall / max(n, 1)}
        if w.reset:
            extra["stream_reset"] = True
        if w.req.response_format is not None:
            extra["response_format"] = "not enforced locally"
        return ChatResponse(
            text=text,
            prompt_tokens=len(st.ids) - len(w.out),
            completion_tokens=len(w.out),
            latency_s=wall,
            finish_reason="stop" if w.stopped else "length",
            input_ids=list(w.new_ids),
            output_ids=list(w.out),
            output_logprobs=list(w.logprobs),
            extra=extra,
        )
