"""The trainer's LM head scores only the tokens the model wrote, not the tool results between them.

An episode's completion is the model's turns with the tool results (the mail it read) in between. TRL's loss masks
the tool results out (`tool_mask`), but the labels it hands its fused LM head know only where the completion starts,
so every tool-result position is still projected through the 152k-word head, forward and backward, and most of an
agent's completion tokens are tool results. Marking them -100 in those labels skips their projection. The loss,
its gradient and the logged entropy (TRL averages it under the same mask) do not change: the positions dropped are
exactly those the loss mask zeroes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def model_tokens_only(model: Any, scored: Any) -> Iterator[None]:
    """While inside, the fused-head calls of `model` (`model(..., labels=L, fused_lm_head=True)`, TRL's loss forward)
    leave out every completion position where `scored` (batch x completion length, 1 = a token the model wrote and
    the loss counts) is 0. TRL may split the micro-batch into chunks of rows: the hook follows them in order."""
    rows = {"next": 0}

    def mask_labels(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
        labels = kwargs.get("labels")
        if not kwargs.get("fused_lm_head") or labels is None:
            return None
        start, n, c_len = rows["next"], labels.size(0), scored.size(1)
        if start + n > scored.size(0) or labels.size(1) < c_len:
            return None  # not the call this mask was made for: score every position, as TRL would
        rows["next"] = (start + n) % scored.size(0)
        keep = scored[start:start + n].to(device=labels.device, dtype=labels.dtype)
        labels = labels.clone()
        labels[:, -c_len:] = labels[:, -c_len:].masked_fill(keep == 0, -100)
        return args, {**kwargs, "labels": labels}

    handle = model.register_forward_pre_hook(mask_labels, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def scored_mask(inputs: dict[str, Any]) -> Any | None:
    """The loss's own mask of a micro-batch (completion mask times tool mask), or None without tool results."""
    tool_mask = inputs.get("tool_mask")
    completion_mask = inputs.get("completion_mask")
    if tool_mask is None or completion_mask is None:
        return None
    return completion_mask * tool_mask
