"""Model spec strings: one short string names any model the project can run.

`local/...` runs in-process through transformers; anything else is a model name on an OpenAI-compatible endpoint.
Keeping this a tiny parser with no heavy imports lets the CLI reject a bad `--model` before loading anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inboxrl.models.base import BackendError

LOCAL_PREFIX = "local/"

# Bundled offline models: canonical key -> accepted spellings after `local/`.
BUNDLED_ALIASES: dict[str, tuple[str, ...]] = {
    "qwen2.5-coder-0.5b": ("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct", "qwen-0.5b", "qwen"),
    "smollm2-135m": ("smollm2-135m", "smollm2-135m-instruct", "smollm2", "smollm"),
}

_HF_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ModelSpec:
    raw: str  # as given (stripped): the name recorded in trajectories
    kind: Literal["local", "endpoint"]
    model: str  # bundled key, HF id or directory (local); model name (endpoint)
    bundled: str | None = None  # canonical bundled key, when `model` is a bundled model
    adapter: str | None = None  # PEFT LoRA adapter directory on top of a local base

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def bundled_key(name: str) -> str | None:
    n = name.strip().lower()
    for key, aliases in BUNDLED_ALIASES.items():
        if n in aliases:
            return key
    return None


def parse_spec(spec: str) -> ModelSpec:
    """Parses a spec, or raises `BackendError` with one line saying what is wrong and what would be right."""
    if not isinstance(spec, str) or not spec.strip():
        raise BackendError("empty model spec: use local/qwen2.5-coder-0.5b, local/smollm2-135m, local/<dir or hf id>, "
                           "or an endpoint model name such as gpt-4o-mini")
    raw = spec.strip()
    if any(c.isspace() for c in raw):
        raise BackendError(f"bad model spec {raw!r}: it must not contain spaces")
    if not raw.lower().startswith(LOCAL_PREFIX):
        return ModelSpec(raw=raw, kind="endpoint", model=raw)
    rest = raw[len(LOCAL_PREFIX):]
    base, plus, adapter = rest.partition("+")
    if not base:
        raise BackendError(f"bad model spec {raw!r}: say which local model, e.g. local/qwen2.5-coder-0.5b")
    if plus and not adapter:
        raise BackendError(f"bad model spec {raw!r}: '+' must be followed by a LoRA adapter directory")
    key = bundled_key(base)
    if key is None and not _HF_ID.match(base) and not Path(base).expanduser().exists():
        raise BackendError(f"unknown local model {base!r}: not a bundled model ({', '.join(BUNDLED_ALIASES)}), "
                           "not an existing directory, not a Hugging Face id (owner/name)")
    return ModelSpec(raw=raw, kind="local", model=key or base, bundled=key, adapter=adapter or None)


def default_harness(spec: str) -> str:
    """The agent harness preset a model runs under unless told otherwise (agent.config.HARNESS_PRESETS): `guided`
    for the bundled local models (and adapters trained on them, which learned under it), `free` for the rest.
    A spec that does not parse gets `free`: loading it reports the real error."""
    try:
        ms = parse_spec(spec)
    except BackendError:
        return "free"
    return "guided" if ms.bundled is not None else "free"
