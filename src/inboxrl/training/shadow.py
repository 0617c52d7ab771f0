"""One bf16 copy of the policy for rollouts and validation, refreshed in place from the trained weights.

`LocalBackend.from_model(..., dtype="bfloat16")` deep-copies the whole fp32 PEFT model, merges the LoRA and converts
it: 2 GB of transient fp32 for a 0.5B model on every rollout and every validation, freed into the allocator
afterwards. Here a bf16 model is allocated once and each call writes `W + scale * B @ A` into it, one linear layer at
a time: a resident copy at half the fp32 size and no per-step churn. The weights are the same as the deep-copied
merge (tests/test_training_shadow.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

_SHADOWS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _merged_weights(model: Any) -> Iterator[tuple[str, Any]]:
    """(name without PEFT's `base_layer`, tensor with the active LoRA adapters folded in), one at a time: only one
    layer's merged fp32 weight exists at once."""
    base = _base(model)
    lora_layers = {f"{mname}.weight": m for mname, m in base.named_modules()
                   if hasattr(m, "base_layer") and hasattr(m, "get_delta_weight") and hasattr(m, "lora_A")}
    for n, p in base.named_parameters():
        if ".lora_" in n:
            continue
        key = n.replace(".base_layer", "")
        m = lora_layers.get(key)
        # disabled adapters: the base weight alone; merged ones are already in it
        if m is not None and not getattr(m, "disable_adapters", False) and not getattr(m, "merged", False):
            w = p
            for a in m.active_adapters:
                if a in m.lora_A:
                    w = w + m.get_delta_weight(a).to(p.dtype)
            yield key, w
        else:
            yield key, p


def refresh(model: Any) -> Any:
    """The bf16 copy of `model` (a PEFT or plain causal LM) with its current weights; built on first use."""
    import torch
    from transformers import AutoModelForCausalLM

    base = _base(model)
    shadow = _SHADOWS.get(base)
    with torch.no_grad():
        if shadow is None:
            shadow = AutoModelForCausalLM.from_config(base.config, dtype=torch.bfloat16)
            shadow.eval()
            for p in shadow.parameters():
                p.requires_grad_(False)
            _SHADOWS[base] = shadow
        dst = dict(shadow.named_parameters())  # tied weights appear once
        done = set()
        for n, w in _merged_weights(model):
            if n in dst and n not in done:
                dst[n].copy_(w)
                done.add(n)
        if done != set(dst):
            raise KeyError(f"bf16 copy: no source weight for {sorted(set(dst) - done)[:3]}")
        bufs = dict(base.named_buffers())
        for n, b in shadow.named_buffers():
            s = bufs.get(n) if n in bufs else bufs.get(n.replace(".weight", ".base_layer.weight"))
            if s is not None and s.shape == b.shape:
                b.copy_(s)
    return shadow


def release(model: Any) -> None:
    """Drops the copy of `model` (end of training)."""
    _SHADOWS.pop(_base(model), None)
