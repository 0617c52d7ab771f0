"""The in-process backend: a transformers causal LM on CPU, generating many episodes' turns as one batch.

Design, because this path is the cost of the whole project (every evaluation and every GRPO rollout runs here):
- Each episode owns a token stream (prompt + everything sampled + everything the environment appended) and the
  KV cache of that stream. A new turn tokenises only the text the new messages add (found by diffing two renders of
  the chat template, see `chat_render`) and feeds only those tokens; nothing is re-tokenised or re-computed.
  Training gets exactly the ids the model saw and sampled.
- A call with several requests is one batch: caches are left-padded into one buffer, prompts are prefilled in
  groups of similar length (padding waste stays small), then all rows decode together; finished rows leave the
  batch. Masks and positions are explicit, so a row's result does not depend on what it was batched with (up to
  float rounding).
- `from_model()` wraps a model someone else owns (the GRPO trainer's PEFT model): generation switches it to eval
  mode and restores every module's mode afterwards, runs under `inference_mode`, and keeps no reference to
  gradients.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inboxrl.models.base import BackendError, ChatRequest, ChatResponse
from inboxrl.models.spec import ModelSpec

MAX_STREAMS = 4096  # episodes whose stream is kept; older ones are dropped (a caller that never ends episodes)


class _ContextFull(Exception):
    pass


@dataclass
class _Stream:
    ids: list[int]
    messages: list[dict[str, Any]]
    tools_key: str
    last_stop: bool = False  # did the last reply end with the end-of-turn token?
    kv: Any = None  # EpisodeKV of ids[:kv_len]
    kv_len: int = 0
    last_used: float = 0.0


@dataclass
class _Work:
    index: int  # position in the request list
    req: ChatRequest
    stream: _Stream
    new_ids: list[int]  # ids appended before generation (the response's input_ids)
    max_new: int
    reset: bool
    feed: list[int] = field(default_factory=list)  # ids whose KV must still be computed
    out: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    stopped: bool = False
    generator: Any = None
    prefill_tokens: int = 0
    error: str | None = None


class LocalBackend:
    """A `ChatBackend` over a transformers model. Build it with `from_spec`, `from_pretrained` or `from_model`."""

    native_tools = False

    def __init__(self, model: Any, tokenizer: Any, name: str, *, threads: int | None = None,
                 max_context: int | None = None, kv_cache_mb: int = 3072, top_p: float = 1.0, top_k: int = 0,
                 max_batch: int = 16, prefill_chunk: int = 1024, prefix_cache: int = 8,
                 owns_model: bool = False) -> None:
        import torch

        from inboxrl.models.chat_render import ChatRenderer
        from inboxrl.models.kvcache import logits_kwargs

        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.threads = threads if threads is not None else (int(os.environ["INBOXRL_THREADS"])
                                                             if os.environ.get("INBOXRL_THREADS") else None)
        self.kv_cache_bytes = int(kv_cache_mb) * 1024 * 1024
        self.top_p = top_p
        self.top_k = top_k
        self.max_batch = max(1, max_batch)
        self.prefill_chunk = max(16, prefill_chunk)
        self.owns_model = owns_model
        try:
            self.renderer = ChatRenderer(tokenizer)
        except ValueError as e:
            raise BackendError(f"local model {name}: {e}; an instruct/chat model is needed") from e
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.n_layers = int(cfg.num_hidden_layers)
        limit = int(getattr(cfg, "max_position_embeddings", 0) or 32768)
        self.max_context = int(max_context) if max_context else min(limit, 32768)
        self.eot_text = self.renderer.info.end_of_turn
        eot_id = tokenizer.convert_tokens_to_ids(self.eot_text.strip()) if self.eot_text.strip() else None
        self.stop_ids = self._stop_ids(eot_id)
        if not self.stop_ids:
            raise BackendError(f"local model {name}: cannot tell which token ends a reply")
        self.eot_id = eot_id if isinstance(eot_id, int) and eot_id >= 0 else min(self.stop_ids)
        self._logits_kw = logits_kwargs(model)
        self._streams: dict[str, _Stream] = {}
        # KV of prompt prefixes shared by new episodes (a GRPO group asks one question num_generations times): the
        # prefix is prefilled once and every episode starts from it. Keyed by token ids, least recently used last.
        self.prefix_cache_size = prefix_cache
        self._prefixes: dict[tuple[int, ...], Any] = {}
        self._lock = threading.RLock()
        self._rng = random.Random()
        self._torch = torch
        self.last_stats: dict[str, Any] = {}  # what the last generate() did: tokens, batches, prefill/decode time
        self._timing: dict[str, Any] = {}

    # --- construction ------------------------------------------------------------------------------------------

    @classmethod
    def from_spec(cls, ms: ModelSpec, *, dtype: str | None = None, **options: Any) -> LocalBackend:
        """`local/<bundled>`, `local/<dir or hf id>`, optionally `+<adapter dir>`."""
        if ms.bundled:
            from inboxrl.models.bundled import ensure_converted

            path: str = str(ensure_converted(ms.bundled, progress=True))
        else:
            path = str(Path(ms.model).expanduser()) if Path(ms.model).expanduser().exists() else ms.model
        return cls.from_pretrained(path, adapter=ms.adapter, name=ms.raw, dtype=dtype, **options)

    @classmethod
    def from_pretrained(cls, path: str, *, adapter: str | None = None, name: str | None = None,
                        dtype: str | None = None, **options: Any) -> LocalBackend:
        """`dtype`: float32 (default, or `$INBOXRL_DTYPE`), bfloat16 (~2.5x faster where bf16 is native, ~3x
        slower where it is not; tiny numeric drift), auto (bfloat16 only where native), or int8 (dynamic int8
        linears, faster still, outputs drift more); see docs/benchmarks.md, "Local generation speed"."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = _check_dtype(dtype)
        if adapter:
            _check_adapter_dir(adapter)  # before the (slow) base model load
        load_dtype = torch.bfloat16 if dtype == "bfloat16" else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=load_dtype)
        except (OSError, ValueError, KeyError) as e:
            raise BackendError(f"cannot load local model {path!r}: {_first_line(e)}") from e
        if adapter:
            model = _apply_adapter(model, adapter)
        model.eval()
        if dtype == "int8":
            model = _quantize_int8(model)
        return cls(model, tokenizer, name or f"local/{path}", owns_model=True, **options)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, name: str = "local/policy", *, dtype: str | None = None,
                   **options: Any) -> LocalBackend:
        """Wraps a model owned by someone else (e.g. the GRPO trainer's PEFT model). Its train/eval mode is
        restored after every call; weights are never modified.

        With `dtype` ("bfloat16" or "int8") generation runs on a private copy instead (LoRA merged, converted):
        faster rollouts at the price of a copy per call of this constructor and a small mismatch between the
        sampling policy and the trained one (the returned log-probs are the copy's, for importance correction).
        """
        from inboxrl.models.hardware import resolve_dtype

        dtype = resolve_dtype(dtype)  # auto: None where bf16 is not native, so the trainer's own model, no copy
        if dtype is None:
            return cls(model, tokenizer, name, owns_model=False, **options)
        return cls(_shadow_copy(model, _check_dtype(dtype)), tokenizer, name, owns_model=True, **options)

    def _stop_ids(self, eot_id: Any) -> set[int]:
        ids: set[int] = set()
        if isinstance(eot_id, int) and eot_id >= 0 and eot_id != getattr(self.tokenizer, "unk_token_id", None):
            ids.add(eot_id)
        gen = getattr(self.model, "generation_config", None)
        # Tokens that end a document in common chat vocabularies; a reply that emits one is over.
        vocab_specials = {str(t) for t in getattr(self.tokenizer, "all_special_tokens", [])}
        for t in ("<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>"):
            if t in vocab_specials:
                tid = self.tokenizer.convert_tokens_to_ids(t)
                if isinstance(tid, int) and tid >= 0:
                    ids.add(tid)
        for src in (getattr(gen, "eos_token_id", None), getattr(self.tokenizer, "eos_token_id", None)):
            if isinstance(src, int):
                ids.add(src)
            elif isinstance(src, (list, tuple)):
                ids.update(int(x) for x in src)
        return ids

    # --- the ChatBackend interface -----------------------------------------------------------------------------

    @property
    def supports_template_tools(self) -> bool:
        """True when the chat template shows `tools=` to the model (Qwen's does; SmolLM2's does not, so the agent
        must describe the tools in its system prompt)."""
        return self.renderer.info.supports_tools

    @property
    def template_tools(self) -> bool:  # the name the agent's runner looks for
        return self.supports_template_tools

    def end_episode(self, episode_id: str) -> None:
        with self._lock:
            self._streams.pop(episode_id, None)

    def stream(self, episode_id: str) -> list[int] | None:
        """The episode's whole token stream so far (prompt, sampled and appended ids)."""
        st = self._streams.get(episode_id)
        return list(st.ids) if st else None

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        torch = self._torch
        responses: list[ChatResponse | None] = [None] * len(requests)
        with self._lock, torch.inference_mode(), _eval_mode(self.model), _threads(torch, self.threads):
            t0 = time.perf_counter()
            work: list[_Work] = []
            seen: set[str] = set()
            for i, r in enumerate(requests):
                if r.episode_id in seen:
                    responses[i] = ChatResponse(error=f"episode {r.episode_id} appears twice in one batch")
                    continue
                seen.add(r.episode_id)
                try:
                    work.append(self._prepare(i, r))
                except _ContextFull as e:
                    responses[i] = ChatResponse(error=str(e), finish_reason="context_full")
                except Exception as e:  # noqa: BLE001 - a template failure on odd input stops that episode only
                    responses[i] = ChatResponse(error=f"cannot render the chat: {_first_line(e)}")
            stats: dict[str, Any] = {"requests": len(requests), "batches": 0, "prefill_tokens": 0,
                                     "sampled_tokens": 0}
            self._timing = {"prefill_s": 0.0, "decode_s": 0.0, "prefill_groups": 0, "decode_steps": 0}
            sampled = [w for w in work if w.req.demonstration is None]
            for w in work:
                if w.req.demonstration is not None:
                    self._demonstrate(w)
            for start in range(0, len(sampled), self.max_batch):
                chunk = sampled[start:start + self.max_batch]
                try:
                    self._run(chunk)
                except (RuntimeError, MemoryError, ValueError, IndexError) as e:
                    for w in chunk:
                        w.error = f"local generation failed: {_first_line(e)}"
                stats["batches"] += 1
            wall = time.perf_counter() - t0
            for w in work:
                if w.error:
                    responses[w.index] = ChatResponse(error=w.error, latency_s=wall)
                    continue
                responses[w.index] = self._finish(w, wall, len(work))
                stats["prefill_tokens"] += w.prefill_tokens
                stats["sampled_tokens"] += len(w.out)
            stats["seconds"] = wall
            stats.update(self._timing)
            self.last_stats = stats
            self._evict()
        return [r if r is not None else ChatResponse(error="internal: no response") for r in responses]

    # --- preparing a request -----------------------------------------------------------------------------------

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prepare(self, index: int, r: ChatRequest) -> _Work:
        from inboxrl.models.chat_render import normalise

        msgs = normalise(r.messages)
        tools_key = json.dumps(r.tools, sort_keys=True) if r.tools else ""
        st = self._streams.get(r.episode_id)
        new_ids: list[int] | None = None
        if st is not None and st.tools_key == tools_key and len(msgs) > len(st.messages) + 1 \
                and msgs[: len(st.messages)] == st.messages and msgs[len(st.messages)].get("role") == "assistant":
            suffix = self.renderer.suffix(msgs, len(st.messages) + 1, r.tools)
            if suffix is not None:
                closing = ("" if st.last_stop else self.eot_text) + self.renderer.info.after_turn
                new_ids = self._encode(closing + suffix)
                base = st.ids
        reset = st is not None and new_ids is None
        if new_ids is None:
            new_ids = self._encode(self.renderer.render(msgs, r.tools, add_generation_prompt=True))
            base = []
            st = _Stream(ids=[], messages=msgs, tools_key=tools_key)
        assert st is not None  # new_ids is set only on a continued stream; otherwise a fresh one was just made
        if r.assistant_prefix:  # the reply's forced opening: appended as input ids, so it is never trained on
            new_ids = new_ids + self._encode(r.assistant_prefix)
        total = len(base) + len(new_ids)
        room = self.max_context - total
        if room < 1:
            raise _ContextFull(f"context_full: the chat needs {total} tokens and the model's context is "
                               f"{self.max_context}")
        work = _Work(index=index, req=r, stream=st, new_ids=new_ids, max_new=max(1, min(r.max_tokens, room)),
                     reset=reset)
        all_ids = base + new_ids
        if st.kv is None or st.kv_len > len(base):
            st.kv, st.kv_len = None, 0
        work.feed = all_ids[st.kv_len:]
        work.generator = self._generator(r, len(all_ids))
        # Commit the stream only after generation (in `_finish`); keep the would-be ids here.
        work.stream = _Stream(ids=all_ids, messages=msgs, tools_key=tools_key, last_stop=st.last_stop, kv=st.kv,
                              kv_len=st.kv_len)
        return work

    def _demonstrate(self, w: _Work) -> None:
        """The reply is given, not sampled: its ids (and the end-of-turn id) become the output ids, with log-prob
        0, and nothing is computed. The episode's stream grows exactly as if the model had written them. One longer
        than the turn's token budget is cut as a sample would be, so the episode records the same format error."""
        ids = self._encode(w.req.demonstration or "")
        w.stopped = len(ids) < w.max_new  # a demonstration longer than the turn's budget is cut, like a sample
        w.out = ids + [self.eot_id] if w.stopped else ids[: w.max_new]
        w.logprobs = [0.0] * len(w.out)

    def _generator(self, r: ChatRequest, position: int) -> Any:
        if r.temperature <= 0:
            return None
        g = self._torch.Generator()
        if r.seed is None:
            g.manual_seed(self._rng.getrandbits(63))
        else:
            # The episode id is mixed in so that a group of episodes sharing one seed (GRPO) still differs, while
            # a rerun with the same ids and seed reproduces exactly.
            h = hashlib.sha256(f"{r.seed}:{r.episode_id}:{position}".encode()).digest()
            g.manual_seed(int.from_bytes(h[:8], "little") & ((1 << 63) - 1))
        return g

    # --- generation ----------------------------------------------------------------------------------------------

    def _run(self, items: list[_Work]) -> None:
        from inboxrl.models.kvcache import Batch

        torch = self._torch
        dtype = next(self.model.parameters()).dtype
        device = next(self.model.parameters()).device
        max_new = max(w.max_new for w in items)
        t0 = time.perf_counter()
        if self.prefix_cache_size > 0:
            self._share_prefixes(items, device, dtype)
        groups = _prefill_groups(items, self.prefill_chunk)
        logits: dict[int, Any] = {}
        if len(groups) == 1:
            batch = Batch([w.stream.kv for w in items], self.n_layers, max(len(w.feed) for w in items) + max_new,
                          device, dtype)
            last = self._prefill(batch, items)
            for row, w in enumerate(items):
                logits[id(w)] = last[row]
        else:
            for g in groups:
                gb = Batch([w.stream.kv for w in g], self.n_layers, max(len(w.feed) for w in g), device, dtype)
                last = self._prefill(gb, g)
                for row, w in enumerate(g):
                    logits[id(w)] = last[row]
                    w.stream.kv = gb.extract(row)
                    w.stream.kv_len = len(w.stream.ids)
                del gb
            batch = Batch([w.stream.kv for w in items], self.n_layers, max_new, device, dtype)
        t1 = time.perf_counter()
        self._timing["prefill_s"] += t1 - t0
        self._timing["prefill_groups"] += len(groups)
        rows = list(items)  # row -> work item, kept in step with the batch
        cur = torch.stack([logits[id(w)] for w in rows])
        live = [True] * len(rows)
        while True:
            toks, lps = self._sample(cur, rows, live)
            for r, w in enumerate(rows):
                if not live[r]:
                    continue
                w.out.append(toks[r])
                w.logprobs.append(lps[r])
                if toks[r] in self.stop_ids or len(w.out) >= w.max_new:
                    w.stopped = toks[r] in self.stop_ids
                    live[r] = False
                    w.stream.kv = batch.extract(r)
                    w.stream.kv_len = len(w.stream.ids) + len(w.out) - 1
            if not any(live):
                break
            dead = live.count(False)
            if dead >= max(1, len(rows) // 4):
                keep = [r for r in range(len(rows)) if live[r]]
                batch.select_rows(keep)
                rows = [rows[r] for r in keep]
                live = [True] * len(rows)
            ids = torch.tensor([[w.out[-1] if live[r] else self.eot_id] for r, w in enumerate(rows)],
                               dtype=torch.long, device=device)
            valid = torch.tensor([[lv] for lv in live], dtype=torch.bool, device=device)
            cur = batch.forward(self.model, ids, valid, self._logits_kw)
            self._timing["decode_steps"] += 1
        del batch
        self._timing["decode_s"] += time.perf_counter() - t1

    MIN_PREFIX = 48  # shorter shared prefixes are not worth a separate forward pass

    def _share_prefixes(self, items: list[_Work], device: Any, dtype: Any) -> None:
        """Starts new episodes from cached or jointly computed prompt prefixes instead of prefilling each alone."""
        from inboxrl.models.kvcache import Batch

        fresh = [w for w in items if w.stream.kv is None]
        if not fresh:
            return
        # 1. Prefixes computed by an earlier batch of this backend (the same prompt asked again).
        for w in fresh:
            ids = w.stream.ids
            best: tuple[int, ...] | None = None
            for key in self._prefixes:
                if len(key) < len(ids) and (best is None or len(key) > len(best)) and tuple(ids[: len(key)]) == key:
                    best = key
            if best is not None:
                kv = self._prefixes.pop(best)
                self._prefixes[best] = kv  # most recently used last
                w.stream.kv, w.stream.kv_len = kv, len(best)
                w.feed = ids[len(best):]
        # 2. New prefixes shared by several fresh episodes in this batch: cluster by longest common prefix.
        todo = sorted((w for w in fresh if w.stream.kv is None), key=lambda w: w.stream.ids)
        clusters: list[tuple[int, list[_Work]]] = []
        for w in todo:
            if clusters:
                lcp = _common_prefix(clusters[-1][1][-1].stream.ids, w.stream.ids)
                n = min(lcp, clusters[-1][0])
                if n >= self.MIN_PREFIX:
                    clusters[-1] = (n, clusters[-1][1] + [w])
                    continue
            clusters.append((len(w.stream.ids), [w]))
        for n, members in clusters:
            if len(members) < 2:
                continue
            n = min([n] + [len(w.stream.ids) - 1 for w in members])  # every row must still feed one token
            if n < self.MIN_PREFIX:
                continue
            prefix = members[0].stream.ids[:n]
            b = Batch([None], self.n_layers, n, device, dtype)
            pw = _Work(index=-1, req=members[0].req, stream=_Stream(ids=prefix, messages=[], tools_key=""),
                       new_ids=[], max_new=0, reset=False, feed=list(prefix))
            self._prefill(b, [pw])
            kv = b.extract(0)
            del b
            members[0].prefill_tokens += n  # computed once, counted on one episode
            for w in members:
                w.stream.kv, w.stream.kv_len = kv, n
                w.feed = w.stream.ids[n:]
            self._prefixes[tuple(prefix)] = kv
            while len(self._prefixes) > self.prefix_cache_size:
                self._prefixes.pop(next(iter(self._prefixes)))

    def _prefill(self, batch: Any, items: list[_Work]) -> Any:
        """Feeds every item's pending ids (left-padded, in chunks); returns each row's last logits."""
        torch = self._torch
        device = batch.device
        n = max(len(w.feed) for w in items)
        pad = self.eot_id
        ids = torch.full((len(items), n), pad, dtype=torch.long, device=device)
        valid = torch.zeros((len(items), n), dtype=torch.bool, device=device)
        for row, w in enumerate(items):
            if w.feed:
                ids[row, n - len(w.feed):] = torch.tensor(w.feed, dtype=torch.long)
                valid[row, n - len(w.feed):] = True
            w.prefill_tokens += len(w.feed)
        last = None
        step = max(1, self.prefill_chunk // max(1, len(items)))
        for s in range(0, n, step):
            if not bool(valid[:, s:s + step].any()):
                continue  # all padding: nothing to compute (columns stay out of the cache)
            last = batch.forward(self.model, ids[:, s:s + step], valid[:, s:s + step], self._logits_kw)
        assert last is not None
        return last.float()

    def _sample(self, logits: Any, rows: list[_Work], live: list[bool]) -> tuple[list[int], list[float]]:
        torch = self._torch
        logits = logits.float()
        temps = torch.tensor([w.req.temperature if w.req.temperature > 0 else 1.0 for w in rows],
                             dtype=torch.float32, device=logits.device)
        logp = torch.log_softmax(logits / temps[:, None], dim=-1)
        greedy = logits.argmax(dim=-1)
        toks: list[int] = []
        lps: list[float] = []
        for r, w in enumerate(rows):
            if not live[r]:
                toks.append(self.eot_id)
                lps.append(0.0)
                continue
            if w.req.temperature <= 0:
                t = int(greedy[r])
            else:
                t = int(torch.multinomial(self._filtered_probs(logp[r]), 1, generator=w.generator)[0])
            toks.append(t)
            lps.append(float(logp[r, t]))
        return toks, lps

    def _filtered_probs(self, logp: Any) -> Any:
        torch = self._torch
        probs = logp.exp()
        if self.top_k and self.top_k > 0:
            kth = torch.topk(probs, min(self.top_k, probs.numel())).values[-1]
            probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
        if 0 < self.top_p < 1:
            sp, si = torch.sort(probs, descending=True)
            cum = sp.cumsum(0)
            cut = cum - sp > self.top_p * cum[-1]
            sp[cut] = 0
            probs = torch.zeros_like(probs).scatter(0, si, sp)
        return probs

    def _finish(self, w: _Work, wall: float, n: int) -> ChatResponse:
        st = w.stream
        st.ids = st.ids + w.out
        st.last_stop = w.stopped and bool(w.out) and w.out[-1] == self.eot_id
        st.last_used = time.time()
        if len(self._streams) >= MAX_STREAMS and w.req.episode_id not in self._streams:
            oldest = min(self._streams, key=lambda k: self._streams[k].last_used)
            self._streams.pop(oldest)
        self._streams[w.req.episode_id] = st
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

    def _evict(self) -> None:
        """Keeps the stored KV caches under budget, dropping the least recently used (they are recomputed from
        the stream if that episode comes back)."""
        from inboxrl.models.kvcache import kv_bytes

        with_kv = [(s.last_used, k) for k, s in self._streams.items() if s.kv is not None]
        total = sum(kv_bytes(self._streams[k].kv) for _, k in with_kv)
        for _, k in sorted(with_kv):
            if total <= self.kv_cache_bytes:
                break
            s = self._streams[k]
            total -= kv_bytes(s.kv)
            s.kv, s.kv_len = None, 0


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _prefill_groups(items: list[_Work], chunk: int) -> list[list[_Work]]:
    """Groups requests of similar pending length, so that left-padding wastes little compute.

    Prefill is compute-bound (batching it saves little), decoding is memory-bound (batching saves a lot); so a
    long prompt next to short tool results is prefilled on its own, and all rows then decode together.
    """
    order = sorted(items, key=lambda w: len(w.feed))
    groups: list[list[_Work]] = []
    cur: list[_Work] = []
    real = 0
    for w in order:
        n = len(w.feed)
        if cur:
            padded = (len(cur) + 1) * n  # n is the new maximum (sorted)
            if padded > 1.3 * (real + n) + 32 * (len(cur) + 1):
                groups.append(cur)
                cur, real = [], 0
        cur.append(w)
        real += n
    if cur:
        groups.append(cur)
    return groups


@contextlib.contextmanager
def _eval_mode(model: Any) -> Iterator[None]:
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            if m.training != training:
                m.training = training


@contextlib.contextmanager
def _threads(torch: Any, n: int | None) -> Iterator[None]:
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


DTYPES = ("float32", "bfloat16", "int8")


def _check_dtype(dtype: str | None) -> str:
    """A dtype name, with aliases, the default (`$INBOXRL_DTYPE`, else float32) and "auto" (bfloat16 where this
    machine computes it natively, else float32) resolved."""
    from inboxrl.models.hardware import local_dtype_name

    d = local_dtype_name(dtype)
    if d not in DTYPES:
        raise BackendError(f"unsupported dtype {d!r}: use one of {', '.join(DTYPES)} or auto")
    return d


def _quantize_int8(model: Any) -> Any:
    """Dynamic int8 linears (fbgemm): weights stored int8, activations quantised per step. Decoding on this CPU is
    bound by reading weights, so 4x fewer bytes than fp32 is most of the speed-up."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():
            # Deprecated in favour of torchao (not installed here), still present and working in torch 2.13.
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    except (AttributeError, ImportError, RuntimeError) as e:
        raise BackendError(f"int8 is not available with this torch build ({_first_line(e)}); use bfloat16") from e


def _shadow_copy(model: Any, dtype: str) -> Any:
    import copy

    import torch

    with torch.no_grad():
        shadow = copy.deepcopy(model)
        if hasattr(shadow, "merge_and_unload"):  # a PEFT model: fold the LoRA into the copy's weights
            shadow = shadow.merge_and_unload()
        # A trainer (accelerate) replaces `model.forward` on the instance with a wrapper bound to the original
        # model; deepcopy keeps that attribute, so the copy would run the original fp32 weights under a bf16 mask.
        # The class's own forward is the one the copy must run.
        for m in shadow.modules():
            m.__dict__.pop("forward", None)
        shadow.eval()
        for p in shadow.parameters():
            p.requires_grad_(False)
        if dtype == "bfloat16":
            shadow = shadow.to(torch.bfloat16)
        elif dtype == "int8":
            shadow = _quantize_int8(shadow.float())
    return shadow


def _check_adapter_dir(adapter: str) -> Path:
    p = Path(adapter).expanduser()
    if not (p / "adapter_config.json").is_file():
        raise BackendError(f"LoRA adapter not found: {adapter} (expected a directory with adapter_config.json)")
    return p


def _apply_adapter(model: Any, adapter: str) -> Any:
    p = _check_adapter_dir(adapter)
    try:
        from peft import PeftModel
    except ImportError as e:
        raise BackendError("a LoRA adapter needs peft: pip install 'inboxrl[train]'") from e
    try:
        # Merged for inference: the LoRA matmuls would otherwise add a few percent to every step.
        return PeftModel.from_pretrained(model, str(p)).merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise BackendError(f"cannot apply LoRA adapter {adapter}: {_first_line(e)}") from e


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__
