"""Engines: what samples one turn of many episodes at once, given their token streams.

`LocalBackend` does the chat bookkeeping (rendering, token streams, responses) and hands each batch to an
`Engine`. The in-house `KVCacheEngine` runs a transformers model on CPU; `training.vllm_backend.VllmEngine` sends the
streams to vLLM on GPUs; a later engine implements the same two methods.

`KVCacheEngine` is hand-written for a measured reason: `model.generate()` re-reads the whole chat every turn and
cannot batch episodes of different lengths (benchmarks/bench_generation.py measures both, docs/models.md).
- A call with several requests is one batch: caches are left-padded into one buffer, prompts are prefilled in
  groups of similar length (padding waste stays small), then all rows decode together; finished rows leave the
  batch. Masks and positions are explicit, so a row's result does not depend on what it was batched with (up to
  float rounding).
- Each stream's KV cache is kept between turns (under a memory budget), and prompt prefixes shared by new episodes
  (a GRPO group asks one question several times) are prefilled once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from inboxrl.models.streams import Stream, Work


@dataclass(frozen=True)
class Stops:
    ids: frozenset[int]  # any of these ends a reply
    eot_id: int  # the end-of-turn id: closes a reply, and pads


@runtime_checkable
class Engine(Protocol):
    def run(self, items: list[Work], stops: Stops) -> dict[str, float]:
        """Samples each item's reply from `stream.ids` (of which `feed` is not yet in the engine's state): fills
        `out`, `logprobs`, `stopped` and `prefill_tokens`, and may leave state for the next turn in `stream.kv`.
        Returns timings to add to the backend's stats (`prefill_s`, `decode_s`, ...)."""
        ...

    def release(self, streams: Mapping[str, Stream]) -> None:
        """Called after each batch: drop engine state (`stream.kv`) to stay within the engine's budget."""
        ...


class KVCacheEngine:
    """Batched decoding over per-episode KV caches with a transformers causal LM (see the module docstring)."""

    MIN_PREFIX = 48  # shorter shared prefixes are not worth a separate forward pass

    def __init__(self, model: Any, *, kv_cache_mb: int = 3072, top_p: float = 1.0, top_k: int = 0,
                 prefill_chunk: int = 1024, prefix_cache: int = 8) -> None:
        import torch

        from inboxrl.models.kvcache import logits_kwargs

        self.model = model
        self.kv_cache_bytes = int(kv_cache_mb) * 1024 * 1024
        self.top_p = top_p
        self.top_k = top_k
        self.prefill_chunk = max(16, prefill_chunk)
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.n_layers = int(cfg.num_hidden_layers)
        self._logits_kw = logits_kwargs(model)
        # KV of prompt prefixes shared by new episodes, keyed by token ids, least recently used first.
        self.prefix_cache_size = prefix_cache
        self._prefixes: dict[tuple[int, ...], Any] = {}
        self._torch = torch

    def run(self, items: list[Work], stops: Stops) -> dict[str, float]:
        from inboxrl.models.kvcache import Batch

        torch = self._torch
        timing: dict[str, float] = {"prefill_s": 0.0, "decode_s": 0.0, "prefill_groups": 0, "decode_steps": 0}
        dtype = next(self.model.parameters()).dtype
        device = next(self.model.parameters()).device
        max_new = max(w.max_new for w in items)
        t0 = time.perf_counter()
        if self.prefix_cache_size > 0:
            self._share_prefixes(items, device, dtype, stops.eot_id)
        groups = prefill_groups(items, self.prefill_chunk)
        logits: dict[int, Any] = {}
        if len(groups) == 1:
            batch = Batch([w.stream.kv for w in items], self.n_layers, max(len(w.feed) for w in items) + max_new,
                          device, dtype)
            last = self._prefill(batch, items, stops.eot_id)
            for row, w in enumerate(items):
                logits[id(w)] = last[row]
        else:
            for g in groups:
                gb = Batch([w.stream.kv for w in g], self.n_layers, max(len(w.feed) for w in g), device, dtype)
                last = self._prefill(gb, g, stops.eot_id)
                for row, w in enumerate(g):
                    logits[id(w)] = last[row]
                    w.stream.kv = gb.extract(row)
                    w.stream.kv_len = len(w.stream.ids)
                del gb
            batch = Batch([w.stream.kv for w in items], self.n_layers, max_new, device, dtype)
        t1 = time.perf_counter()
        timing["prefill_s"] += t1 - t0
        timing["prefill_groups"] += len(groups)
        rows = list(items)  # row -> work item, kept in step with the batch
        cur = torch.stack([logits[id(w)] for w in rows])
        live = [True] * len(rows)
        while True:
            toks, lps = self._sample(cur, rows, live, stops.eot_id)
            for r, w in enumerate(rows):
                if not live[r]:
                    continue
                w.out.append(toks[r])
                w.logprobs.append(lps[r])
                if toks[r] in stops.ids or len(w.out) >= w.max_new:
                    w.stopped = toks[r] in stops.ids
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
            ids = torch.tensor([[w.out[-1] if live[r] else stops.eot_id] for r, w in enumerate(rows)],
                               dtype=torch.long, device=device)
            valid = torch.tensor([[lv] for lv in live], dtype=torch.bool, device=device)
            cur = batch.forward(self.model, ids, valid, self._logits_kw)
            timing["decode_steps"] += 1
        del batch
        timing["decode_s"] += time.perf_counter() - t1
        return timing

    def _share_prefixes(self, items: list[Work], device: Any, dtype: Any, pad: int) -> None:
        """Starts new episodes from cached or jointly computed prompt prefixes instead of prefilling each alone."""
        from inboxrl.models.kvcache import Batch

        fresh = [w for w in items if w.stream.kv is None]
        if not fresh:
            return
        # 1. Prefixes computed by an earlier batch of this engine (the same prompt asked again).
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
        clusters: list[tuple[int, list[Work]]] = []
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
            pw = Work(index=-1, req=members[0].req, stream=Stream(ids=prefix, messages=[], tools_key=""),
                      new_ids=[], max_new=0, reset=False, feed=list(prefix))
            self._prefill(b, [pw], pad)
            kv = b.extract(0)
            del b
            members[0].prefill_tokens += n  # computed once, counted on one episode
            for w in members:
                w.stream.kv, w.stream.kv_len = kv, n
                w.feed = w.stream.ids[n:]
            self._prefixes[tuple(prefix)] = kv
            while len(self._prefixes) > self.prefix_cache_size:
                self._prefixes.pop(next(iter(self._prefixes)))

    def _prefill(self, batch: Any, items: list[Work], pad: int) -> Any:
        """Feeds every item's pending ids (left-padded, in chunks); returns each row's last logits."""
        torch = self._torch
        device = batch.device
        n = max(len(w.feed) for w in items)
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

    def _sample(self, logits: Any, rows: list[Work], live: list[bool], pad: int) -> tuple[list[int], list[float]]:
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
                toks.append(pad)
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

    def release(self, streams: Mapping[str, Stream]) -> None:
        """Keeps the stored KV caches under budget, dropping the least recently used (they are recomputed from
        the stream if that episode comes back)."""
        from inboxrl.models.kvcache import kv_bytes

        with_kv = [(s.last_used, k) for k, s in streams.items() if s.kv is not None]
        total = sum(kv_bytes(streams[k].kv) for _, k in with_kv)
        for _, k in sorted(with_kv):
            if total <= self.kv_cache_bytes:
                break
            s = streams[k]
            total -= kv_bytes(s.kv)
            s.kv, s.kv_len = None, 0


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def prefill_groups(items: list[Work], chunk: int) -> list[list[Work]]:
    """Groups requests of similar pending length, so that left-padding wastes little compute.

    Prefill is compute-bound (batching it saves little), decoding is memory-bound (batching saves a lot); so a
    long prompt next to short tool results is prefilled on its own, and all rows then decode together.
    """
    order = sorted(items, key=lambda w: len(w.feed))
    groups: list[list[Work]] = []
    cur: list[Work] = []
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
