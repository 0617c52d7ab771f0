"""The in-process backend: a transformers causal LM on CPU, generating many episodes' turns as one batch.

This path is the cost of the whole project (every evaluation and every GRPO rollout runs here), so it is split in
three: this module loads the model (dtype, adapters) and serves the `ChatBackend` interface; `streams` keeps each
episode's token stream (training gets exactly the ids the model saw and sampled); an `Engine` (`engine`) samples
a batch of turns: the in-house `KVCacheEngine` by default, vLLM on GPUs (`training.vllm_backend`).

`from_model()` wraps a model someone else owns (the GRPO trainer's PEFT model): generation switches it to eval mode
and restores every module's mode afterwards, runs under `inference_mode`, and keeps no reference to gradients.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inboxrl.models.base import BackendError, ChatRequest, ChatResponse
from inboxrl.models.engine import Engine, KVCacheEngine, Stops
from inboxrl.models.spec import ModelSpec
from inboxrl.models.streams import ContextFull, Streams, Work


class LocalBackend:
    """A `ChatBackend` over a transformers model. Build it with `from_spec`, `from_pretrained` or `from_model`.

    `engine` samples the turns; by default a `KVCacheEngine` over `model` with the KV options given here."""

    native_tools = False

    def __init__(self, model: Any, tokenizer: Any, name: str, *, threads: int | None = None,
                 max_context: int | None = None, kv_cache_mb: int = 3072, top_p: float = 1.0, top_k: int = 0,
                 max_batch: int = 16, prefill_chunk: int = 1024, prefix_cache: int = 8,
                 owns_model: bool = False, engine: Engine | None = None) -> None:
        import torch

        from inboxrl.models.chat_render import ChatRenderer

        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.threads = threads if threads is not None else (int(os.environ["INBOXRL_THREADS"])
                                                             if os.environ.get("INBOXRL_THREADS") else None)
        self.max_batch = max(1, max_batch)
        self.owns_model = owns_model
        try:
            self.renderer = ChatRenderer(tokenizer)
        except ValueError as e:
            raise BackendError(f"local model {name}: {e}; an instruct/chat model is needed") from e
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        limit = int(getattr(cfg, "max_position_embeddings", 0) or 32768)
        self.max_context = int(max_context) if max_context else min(limit, 32768)
        self.eot_text = self.renderer.info.end_of_turn
        eot_id = tokenizer.convert_tokens_to_ids(self.eot_text.strip()) if self.eot_text.strip() else None
        self.stop_ids = self._stop_ids(eot_id)
        if not self.stop_ids:
            raise BackendError(f"local model {name}: cannot tell which token ends a reply")
        self.eot_id = eot_id if isinstance(eot_id, int) and eot_id >= 0 else min(self.stop_ids)
        self.stops = Stops(frozenset(self.stop_ids), self.eot_id)
        self.engine: Engine = engine if engine is not None else KVCacheEngine(
            model, kv_cache_mb=kv_cache_mb, top_p=top_p, top_k=top_k, prefill_chunk=prefill_chunk,
            prefix_cache=prefix_cache)
        self.streams = Streams(tokenizer, self.renderer, self.eot_id, self.max_context)
        self._lock = threading.RLock()
        self._torch = torch
        self.last_stats: dict[str, Any] = {}  # what the last generate() did: tokens, batches, prefill/decode time

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
    def template_tools(self) -> bool:
        """True when the chat template shows `tools=` to the model (Qwen's does; SmolLM2's does not, so the agent
        must describe the tools in its system prompt)."""
        return bool(self.renderer.info.supports_tools)

    def end_episode(self, episode_id: str) -> None:
        with self._lock:
            self.streams.end(episode_id)

    def stream(self, episode_id: str) -> list[int] | None:
        """The episode's whole token stream so far (prompt, sampled and appended ids)."""
        return self.streams.ids(episode_id)

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        torch = self._torch
        responses: list[ChatResponse | None] = [None] * len(requests)
        with self._lock, torch.inference_mode(), _eval_mode(self.model), _threads(torch, self.threads):
            t0 = time.perf_counter()
            work: list[Work] = []
            seen: set[str] = set()
            for i, r in enumerate(requests):
                if r.episode_id in seen:
                    responses[i] = ChatResponse(error=f"episode {r.episode_id} appears twice in one batch")
                    continue
                seen.add(r.episode_id)
                try:
                    work.append(self.streams.prepare(i, r))
                except ContextFull as e:
                    responses[i] = ChatResponse(error=str(e), finish_reason="context_full")
                except Exception as e:  # noqa: BLE001 - a template failure on odd input stops that episode only
                    responses[i] = ChatResponse(error=f"cannot render the chat: {_first_line(e)}")
            stats: dict[str, Any] = {"requests": len(requests), "batches": 0, "prefill_tokens": 0,
                                     "sampled_tokens": 0, "prefill_s": 0.0, "decode_s": 0.0, "prefill_groups": 0,
                                     "decode_steps": 0}
            sampled = [w for w in work if w.req.demonstration is None]
            for w in work:
                if w.req.demonstration is not None:
                    self.streams.demonstrate(w)
            for start in range(0, len(sampled), self.max_batch):
                chunk = sampled[start:start + self.max_batch]
                try:
                    for k, v in self.engine.run(chunk, self.stops).items():
                        stats[k] = stats.get(k, 0) + v
                except (RuntimeError, MemoryError, ValueError, IndexError) as e:
                    for w in chunk:
                        w.error = f"local generation failed: {_first_line(e)}"
                stats["batches"] += 1
            wall = time.perf_counter() - t0
            for w in work:
                if w.error:
                    responses[w.index] = ChatResponse(error=w.error, latency_s=wall)
                    continue
                responses[w.index] = self.streams.finish(w, wall, len(work))
                stats["prefill_tokens"] += w.prefill_tokens
                stats["sampled_tokens"] += len(w.out)
            stats["seconds"] = wall
            self.last_stats = stats
            self.engine.release(self.streams.by_episode)
        return [r if r is not None else ChatResponse(error="internal: no response") for r in responses]


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
