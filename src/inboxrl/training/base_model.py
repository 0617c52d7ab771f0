"""From the config's `model` string to a loaded base model and tokenizer for training.

Training takes the same model specs as `inboxrl eval`, so that a run's base and the prompted baseline it is compared
with are the same weights: `local/qwen2.5-coder-0.5b` is the bundled model's converted copy, `local/<dir or hub id>`
any transformers causal LM. `tiny/qwen2` builds the tiny smoke-test model. The adapter saved at the end records
the base *directory*, so `local/<that dir>+RUN_DIR/final` and `local/<bundled name>+RUN_DIR/final` both work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inboxrl.training.config import TrainConfigError

TINY_PREFIX = "tiny/"


def resolve_base(spec: str) -> tuple[str, str]:
    """(directory or hub id to load, the model spec to record). Raises TrainConfigError with one line."""
    s = spec.strip()
    if s.startswith(TINY_PREFIX):
        from inboxrl.training.tiny import TINY_SPECS, build_tiny_model

        name = s[len(TINY_PREFIX):]
        if name not in TINY_SPECS:
            raise TrainConfigError(f"model: unknown tiny model {name!r}; known: {', '.join(TINY_SPECS)}")
        d = build_tiny_model(name)
        return str(d), f"local/{d}"
    from inboxrl.models.base import BackendError
    from inboxrl.models.spec import parse_spec

    try:
        ms = parse_spec(s)
    except BackendError as e:
        raise TrainConfigError(f"model: {e}") from None
    if not ms.is_local:
        raise TrainConfigError(f"model: {s!r} is an endpoint model; training needs local weights "
                               "(local/qwen2.5-coder-0.5b, local/<dir>, local/<hub id>, tiny/qwen2)")
    if ms.adapter:
        raise TrainConfigError(f"model: {s!r} has an adapter; train from a base model (merge it first with "
                               "`inboxrl export`)")
    if ms.bundled:
        from inboxrl.models.bundled import ensure_converted

        try:
            return str(ensure_converted(ms.bundled, progress=True)), ms.raw
        except BackendError as e:
            raise TrainConfigError(f"model: {e}") from None
    return ms.model, ms.raw


def load_base(spec: str, *, dtype: str = "float32", device_map: Any = None) -> tuple[Any, Any, str, str]:
    """(model, tokenizer, path, recorded spec). The model is in fp32 on CPU unless told otherwise."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, recorded = resolve_base(spec)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), device_map=device_map)
    except OSError as e:
        raise TrainConfigError(f"model: cannot load {path!r}: {str(e).splitlines()[0]}") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    # Padding side matters for batched generation; the backend sets what it needs, training pads itself.
    return model, tok, path, recorded


def base_dir_of_adapter(adapter_dir: str | Path) -> str:
    """The base model an adapter was trained on, from the adapter's own config."""
    import json

    cfg = Path(adapter_dir) / "adapter_config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"not a LoRA adapter directory (no adapter_config.json): {adapter_dir}")
    base = json.loads(cfg.read_text()).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{cfg}: no base_model_name_or_path; pass --base")
    return str(base)
