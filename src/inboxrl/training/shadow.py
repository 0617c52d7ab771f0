"""One bf16 copy of the policy for rollouts and validation, refreshed in place from the trained weights.

`LocalBackend.from_model(..., dtype="bfloat16")` deep-copies the whole fp32 PEFT model, merges the LoRA and converts
it: 2 GB of transient fp32 for a 0.5B model on every rollout and every validation, freed into the allocator
afterwards. Here a bf16 model is allocated once and each call writes `W + scale * B @ A` into it, one linear layer at
a time: a resident copy at half the fp32 size and no per-step churn. The weights are the same as the deep-copied
merge (tests/test_training_shadow.py).
"""

from __future__ import annotations

import weakref
from typing import Any

_SHADOWS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _base(model: Any) -> Any:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _merged_weights(model: Any) -> dict[str, Any]:
    """name (without PEFT's `base_layer`) -> tensor with the active LoRA adapters folded in, without copying
    layers that have no adapter."""
    base = _base(model)
    out: dict[str, Any] = {}
    lora_layers: dict[str, Any] = {}
    for mname, m in base.named_modules():
        if hasattr(m, "base_layer") and hasattr(m, "get_delta_weight") and hasattr(m, "lora_A"):
            lora_layers[mname] = m
    for n, p in base.named_parameters():
        if ".lora_" in n:
            continue
        out[n.replace(".base_layer", "")] = p
    for mname, m in lora_layers.items():
        if getattr(m, "disable_adapters", False) or getattr(m, "merged", False):
            continue  # disabled: the base weight alone; merged: already in the base weight
        key = f"{mname}.weight"
        w = out[key]
        for a in m.active_adapters:
            if a in m.lora_A:
                w = w + m.get_delta_weight(a).to(w.dtype)
        out[key] = w
    return out


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
        src = _merged_weights(model)
        for n, p in shadow.named_parameters():  # tied weights appear once
            if n not in src:
                raise KeyError(f"bf16 copy: no source weight for {n}")
            p.copy_(src[n])
        bufs = dict(base.named_buffers())
        for n, b in shadow.named_buffers():
            s = bufs.get(n) if n in bufs else bufs.get(n.replace(".weight", ".base_layer.weight"))
            if s is not None and s.shape == b.shape:
                b.copy_(s)
    return shadow


def release(model: Any) -> None:
    """Drops the copy of `model` (end of training)."""
    _SHADOWS.pop(_base(model), None)
