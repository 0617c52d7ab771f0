"""A tiny random Qwen2 model built locally: the smoke config and the tests train it without any hub download.

It has the real Qwen2.5 tokenizer and chat template (taken from the bundled model), so the rollout, the mask and
the trainer see exactly the token streams the real model produces, only from a 2-layer network with hidden size 64
that runs a GRPO step in seconds. Its outputs are random text, which exercises the format-error paths too.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

TINY_SPECS: dict[str, dict[str, Any]] = {
    # name -> Qwen2 config overrides
    "qwen2": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=8192),
}
VERSION = 1
MARKER = "inboxrl-tiny.json"


def tiny_dir(name: str = "qwen2") -> Path:
    from inboxrl.models.bundled import cache_dir

    return cache_dir() / "tiny" / f"{name}-v{VERSION}"


def _qwen_tokenizer():  # type: ignore[no-untyped-def]
    """The bundled Qwen tokenizer: from its converted copy when there is one, else straight from the GGUF (about
    half a minute, once per machine)."""
    from transformers import AutoTokenizer

    from inboxrl.models import bundled

    key = "qwen2.5-coder-0.5b"
    if bundled.is_converted(key):
        return AutoTokenizer.from_pretrained(bundled.converted_dir(key))
    gguf = bundled.gguf_path(key)
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def build_tiny_model(name: str = "qwen2", seed: int = 0) -> Path:
    """The directory of the tiny model (config, random weights, tokenizer), built once and cached."""
    if name not in TINY_SPECS:
        raise ValueError(f"unknown tiny model {name!r}; known: {', '.join(TINY_SPECS)}")
    target = tiny_dir(name)
    if (target / MARKER).is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    tok = _qwen_tokenizer()
    end = tok.convert_tokens_to_ids("<|im_end|>")
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.convert_tokens_to_ids("<|endoftext|>")
    cfg = Qwen2Config(vocab_size=max(len(tok), 151936), tie_word_embeddings=True, bos_token_id=None,
                      eos_token_id=end, pad_token_id=pad, **TINY_SPECS[name])
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=[end, pad], pad_token_id=pad, do_sample=True,
                                               temperature=1.0, top_k=None, top_p=None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}-"))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({"name": name, "version": VERSION, "seed": seed}))
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep theirs
            if not (target / MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
