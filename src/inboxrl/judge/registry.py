"""One string names a judge, as one string names a model: `--judge lexical` or `--judge <any model spec>`.

Any model the agent can run can also judge (a local model, or a name on an OpenAI-compatible endpoint), because
the LLM judge talks to the same `ChatBackend` interface. Heavy imports happen only when a model judge is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inboxrl.judge.base import Judge

LEXICAL = "lexical"

# Options meant for the judge itself; everything else is passed to the model backend (base_url, api_key, ...).
_JUDGE_OPTS = ("cache_path", "max_tokens", "prompt_version")


def load_judge(spec: str, **opts: Any) -> Judge:
    """`lexical` gives the offline LexicalJudge; anything else an LLMJudge over `load_backend(spec)`.

    For a model judge, `cache_path` sets the verdict cache (default `default_cache_path()`; `None` turns caching
    off); other options go to the backend loader.
    """
    spec = (spec or "").strip()
    if not spec:
        raise ValueError("empty judge spec: use 'lexical' or a model spec such as 'local/qwen2.5-coder-0.5b'")
    if spec.lower() == LEXICAL:
        from inboxrl.judge.lexical import LexicalJudge

        return LexicalJudge()

    from inboxrl.judge.llm import LLMJudge, default_cache_path
    from inboxrl.models.registry import load_backend

    judge_opts = {k: opts.pop(k) for k in _JUDGE_OPTS if k in opts}
    backend = load_backend(spec, **opts)
    cache: str | Path | None = judge_opts.pop("cache_path", default_cache_path())
    return LLMJudge(backend, cache_path=cache, **judge_opts)
