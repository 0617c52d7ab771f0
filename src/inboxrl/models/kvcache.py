"""Batched forward passes over per-episode KV caches, with explicit masks.

Why not `model.generate()`: an agent episode is a chat that grows by a few hundred tokens per turn. `generate()`
re-reads the whole chat every turn (prefill grows quadratically over an episode, and at ~100 prompt tokens/s on
this CPU that is most of the cost), it cannot mix episodes whose chats have different lengths without re-padding
them, and it keeps feeding finished rows. Here each episode keeps the keys/values of its token stream between
turns; a batch is built by left-padding those caches into one preallocated buffer, only the *new* tokens are fed,
and finished rows are dropped from the batch.

Masks are passed as explicit 4D additive masks (0 = attend, dtype-min = not), so padding may sit anywhere (before a
row's past, or between its past and its new tokens), and positions are passed explicitly per row, so every token
sees exactly the positions and context it would see unbatched. A padding query attends only to itself, which keeps
its (ignored) output finite.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

# One episode's cache: per layer (keys, values), each [kv_heads, length, head_dim].
EpisodeKV = list[tuple[torch.Tensor, torch.Tensor]]


class BufferLayer(DynamicLayer):
    """A cache layer that writes into a preallocated buffer instead of concatenating (which copies the whole
    cache at every decoding step)."""

    def __init__(self, capacity: int, keys: torch.Tensor | None = None, values: torch.Tensor | None = None,
                 length: int = 0) -> None:
        super().__init__()
        self.capacity = capacity
        self._k = keys
        self._v = values
        self.n = length
        if keys is not None:
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True
            self._views()

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        b, h, _, d = key_states.shape
        cap = max(self.capacity, key_states.shape[-2])
        self._k = key_states.new_zeros(b, h, cap, d)
        self._v = value_states.new_zeros(b, value_states.shape[1], cap, value_states.shape[-1])
        self.dtype, self.device = key_states.dtype, key_states.device
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        q = key_states.shape[-2]
        assert self._k is not None and self._v is not None
        if self.n + q > self._k.shape[2]:  # more than planned (should not happen): grow by half
            cap = max(self.n + q, int(self._k.shape[2] * 1.5))
            k = self._k.new_zeros(*self._k.shape[:2], cap, self._k.shape[3])
            v = self._v.new_zeros(*self._v.shape[:2], cap, self._v.shape[3])
            k[:, :, : self.n] = self._k[:, :, : self.n]
            v[:, :, : self.n] = self._v[:, :, : self.n]
            self._k, self._v = k, v
        self._k[:, :, self.n: self.n + q] = key_states
        self._v[:, :, self.n: self.n + q] = value_states
        self.n += q
        return self._views()

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        assert self._k is not None and self._v is not None
        keys, values = self._k[:, :, : self.n], self._v[:, :, : self.n]
        self.keys, self.values = keys, values
        return keys, values

    def get_seq_length(self) -> int:
        return self.n

    def select_rows(self, rows: torch.Tensor) -> None:
        if self._k is not None and self._v is not None:
            self._k = self._k.index_select(0, rows)
            self._v = self._v.index_select(0, rows)
            self._views()


class BatchCache(DynamicCache):
    def __init__(self, layers: list[BufferLayer]) -> None:
        Cache.__init__(self, layers=layers)  # type: ignore[arg-type]


class Batch:
    """Rows of episodes sharing one buffer: `valid[b, t]` says whether column t of row b is a real token."""

    def __init__(self, pasts: list[EpisodeKV | None], n_layers: int, extra: int, device: torch.device,
                 dtype: torch.dtype) -> None:
        lens = [0 if p is None else p[0][0].shape[1] for p in pasts]
        b = len(pasts)
        width = max(lens) if lens else 0
        cap = width + extra
        layers: list[BufferLayer] = []
        ref = next((p for p in pasts if p is not None), None)
        for li in range(n_layers):
            if ref is None:
                layers.append(BufferLayer(cap))
                continue
            kh, _, kd = ref[li][0].shape
            vh, _, vd = ref[li][1].shape
            k = torch.zeros(b, kh, cap, kd, dtype=ref[li][0].dtype, device=device)
            v = torch.zeros(b, vh, cap, vd, dtype=ref[li][1].dtype, device=device)
            for row, p in enumerate(pasts):
                if p is not None and lens[row]:
                    k[row, :, width - lens[row]: width] = p[li][0]
                    v[row, :, width - lens[row]: width] = p[li][1]
            layers.append(BufferLayer(cap, k, v, width))
        self.cache = BatchCache(layers)
        self.valid = torch.zeros(b, width, dtype=torch.bool, device=device)
        for row, n in enumerate(lens):
            if n:
                self.valid[row, width - n:] = True
        self.next_pos = torch.tensor(lens, dtype=torch.long, device=device)  # position of each row's next token
        self.dtype = dtype
        self.device = device

    @property
    def rows(self) -> int:
        return int(self.valid.shape[0])

    def forward(self, model: Any, ids: torch.Tensor, new_valid: torch.Tensor, logits_kw: dict[str, Any]
                ) -> torch.Tensor:
        """Feeds `ids` [B, q] (left-padded where `new_valid` is False); returns the last position's logits [B, V].

        The last column must be real for every row that needs logits (rows are left-padded).
        """
        b, q = ids.shape
        t = self.valid.shape[1]
        kv_valid = torch.cat([self.valid, new_valid], dim=1)  # [B, t+q]
        allowed = kv_valid[:, None, :].expand(b, q, t + q).clone()
        if q > 1:
            causal = torch.ones(q, q, dtype=torch.bool, device=self.device).tril()
            allowed[:, :, t:] &= causal[None]
        # A padding query sees only itself: finite output, and no real token ever sees it.
        pad_q = ~new_valid
        if bool(pad_q.any()):
            diag = torch.zeros(b, q, t + q, dtype=torch.bool, device=self.device)
            idx = torch.arange(q, device=self.device)
            diag[:, idx, t + idx] = pad_q
            allowed |= diag
        mask = torch.zeros(b, 1, q, t + q, dtype=self.dtype, device=self.device)
        mask.masked_fill_(~allowed[:, None], torch.finfo(self.dtype).min)
        steps = new_valid.long().cumsum(dim=1) - 1  # 0-based index among a row's real new tokens
        positions = torch.where(new_valid, self.next_pos[:, None] + steps, torch.zeros_like(steps))
        with grouped_query_sdpa(self.device):
            out = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=self.cache,
                        use_cache=True, **logits_kw)
        self.valid = kv_valid
        self.next_pos = self.next_pos + new_valid.long().sum(dim=1)
        return out.logits[:, -1, :]

    def extract(self, row: int) -> EpisodeKV:
        """The row's real keys/values, compact, as an episode cache."""
        idx = self.valid[row].nonzero().squeeze(1)
        out: EpisodeKV = []
        for layer in self.cache.layers:
            assert isinstance(layer, BufferLayer) and layer._k is not None and layer._v is not None
            out.append((layer._k[row].index_select(1, idx).contiguous(),
                        layer._v[row].index_select(1, idx).contiguous()))
        return out

    def select_rows(self, rows: list[int]) -> None:
        r = torch.tensor(rows, dtype=torch.long, device=self.device)
        for layer in self.cache.layers:
            assert isinstance(layer, BufferLayer)
            layer.select_rows(r)
        self.valid = self.valid.index_select(0, r)
        self.next_pos = self.next_pos.index_select(0, r)


GQA_SWITCH = "TRANSFORMERS_SDPA_FORCE_GQA"


@contextlib.contextmanager
def grouped_query_sdpa(device: torch.device) -> Iterator[None]:
    """On CPU, masked attention takes the key/value head groups as they are (SDPA's `enable_gqa`). transformers
    otherwise copies every key/value head once per query head for a masked call, as CUDA's fast kernels need; over
    a long episode's cache those copies, not the matrix products, slowed prefill down most
    (docs/cpu-training.md). transformers reads this switch at each attention call; elsewhere it is left alone."""
    if device.type != "cpu" or os.environ.get(GQA_SWITCH) is not None:
        yield
        return
    os.environ[GQA_SWITCH] = "1"
    try:
        yield
    finally:
        os.environ.pop(GQA_SWITCH, None)


def logits_kwargs(model: Any) -> dict[str, Any]:
    """`logits_to_keep=1` when the model supports it: computing logits for every prompt position over Qwen's
    151,936-word vocabulary would cost more memory and time than the rest of the prefill."""
    base = model
    for attr in ("get_base_model",):
        if hasattr(base, attr):
            try:
                base = getattr(base, attr)()
            except Exception:  # noqa: BLE001, S110 - any failure just means "use the model itself"
                pass
    try:
        params = inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return {}
    if "logits_to_keep" in params:
        return {"logits_to_keep": 1}
    if "num_logits_to_keep" in params:
        return {"num_logits_to_keep": 1}
    return {}


def kv_bytes(kv: EpisodeKV) -> int:
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
