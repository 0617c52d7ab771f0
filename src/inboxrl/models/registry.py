"""`load_backend(spec)`: the one entry point from a `--model` string to a `ChatBackend`.

Heavy imports (torch, transformers, openai) happen inside, so a CLI can validate a spec cheaply and only pay for
the backend it actually uses. Local backends are shared per process by default: the agent and a judge naming the
same local model then use one copy of the weights (episodes are kept apart by `episode_id`).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from inboxrl.models.base import BackendError, ChatBackend
from inboxrl.models.spec import ModelSpec, parse_spec

_shared: dict[tuple[str, tuple[tuple[str, Any], ...]], ChatBackend] = {}
_lock = threading.Lock()


def load_backend(
    spec: str,
    *,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    **options: Any,
) -> ChatBackend:
    """Builds the backend a spec names.

    - `local/qwen2.5-coder-0.5b`, `local/smollm2-135m`: the bundled offline models (converted once, then cached).
    - `local/<hf id or dir>`: any transformers causal LM; `local/<base>+<adapter dir>` puts a PEFT LoRA on top.
    - with `base_url`, a `local/...` spec names that model on the endpoint (`inboxrl serve` serves it so).
    - anything else: a model name on an OpenAI-compatible endpoint at `base_url` (default: `$OPENAI_BASE_URL`, else
      OpenAI), with the key from the environment variable `api_key_env`.

    Options go to the backend: for local ones `threads`, `max_context`, `kv_cache_tokens`, `top_p`, `top_k`,
    `shared` (default True); for endpoints `native_tools`, `timeout_s`, `max_retries`, `concurrency`, ...
    Raises `BackendError` (one line) for a bad spec or a model that cannot be loaded or reached.
    """
    ms = parse_spec(spec)
    if ms.is_local and base_url:
        # A local spec at an endpoint: the model as `inboxrl serve` serves it, asked for by the same name.
        ms = ModelSpec(raw=ms.raw, kind="endpoint", model=ms.raw)
    if ms.is_local:
        return _load_local(ms, **options)
    return _load_endpoint(ms, base_url=base_url, api_key_env=api_key_env, **options)


def _load_local(ms: ModelSpec, shared: bool = True, **options: Any) -> ChatBackend:
    from inboxrl.models.local import LocalBackend

    key = (ms.raw, tuple(sorted(options.items())))
    with _lock:
        if shared and key in _shared:
            return _shared[key]
        backend = LocalBackend.from_spec(ms, **options)
        if shared:
            _shared[key] = backend
        return backend


def _load_endpoint(ms: ModelSpec, *, base_url: str | None, api_key_env: str, **options: Any) -> ChatBackend:
    from inboxrl.models.openai_backend import OpenAIBackend

    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    key = os.environ.get(api_key_env)
    if not key:
        if base_url is None:
            raise BackendError(f"no API key for {ms.raw!r}: set {api_key_env}, or pass --base-url for a local "
                               "OpenAI-compatible server (vLLM, llama.cpp, Ollama, LiteLLM)")
        key = "EMPTY"  # local servers accept any key
    return OpenAIBackend(ms.model, base_url=base_url, api_key=key, name=ms.raw, **options)


def clear_shared() -> None:
    """Drops the per-process shared local backends (tests, or a long process switching models)."""
    with _lock:
        _shared.clear()
