"""Activation checkpointing by episode length: only episodes longer than a threshold recompute their forward pass.

Checkpointing exists for the memory peak of long episodes, and it costs a recomputed forward pass
(docs/cpu-training.md). A short episode's activations fit the budget anyway, so with `checkpointing_min_tokens`
set, episodes up to that length keep their activations and only the longer ones are checkpointed. transformers' decoder layers read their `gradient_checkpointing` flag at each
forward, and the checkpoint function is set once by the model's own `activation_checkpointing_enable`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def checkpointed_layers(model: Any) -> list[Any]:
    """The decoder layers of `model` (a PEFT or plain causal LM) that checkpoint their forward pass now."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing]


@contextlib.contextmanager
def checkpointing_for(model: Any, n_tokens: int, min_tokens: int | None) -> Iterator[None]:
    """Inside, a forward pass over `n_tokens` keeps its activations when they are at most `min_tokens` (None:
    checkpointing as configured). The backward may run after the block: a pass's mode is fixed by its forward."""
    layers = checkpointed_layers(model) if min_tokens is not None and n_tokens <= min_tokens else []
    for m in layers:
        m.gradient_checkpointing = False
    try:
        yield
    finally:
        for m in layers:
            m.gradient_checkpointing = True
