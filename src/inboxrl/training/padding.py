"""Cutting a micro-batch down to its own length before the trainer's forward and backward pass.

TRL pads all rollouts of a step together (prompts on the left, completions on the right, to the longest of the
whole step) and only then splits them into micro-batches. With one episode per micro-batch, as on CPU, every
forward and backward pass would then run over the longest episode's length: in the CPU demonstration episodes range
from a few hundred to about two thousand tokens, so most of the trainer's time went to padding. Columns that are
padding in every row of the micro-batch are dropped here. Nothing else changes: the mask sums (and with them
TRL's loss normalisation, which counts tokens over the whole step) stay the same, and the model's rotary position
encoding depends only on distances between tokens, which dropping left padding does not alter.
"""

from __future__ import annotations

from typing import Any

PROMPT_KEYS = ("prompt_ids", "prompt_mask")


def trim_padding(inputs: dict[str, Any]) -> dict[str, Any]:
    """The micro-batch without its all-padding columns: leading ones of the prompt, trailing ones of the completion.

    Every other tensor whose second dimension is the completion length (masks, old/reference/sampling log-probs,
    importance ratios) is cut like the completion; everything else passes through untouched."""
    prompt_mask = inputs.get("prompt_mask")
    completion_mask = inputs.get("completion_mask")
    if prompt_mask is None or completion_mask is None or prompt_mask.dim() != 2 or completion_mask.dim() != 2:
        return inputs
    p_len, c_len = prompt_mask.size(1), completion_mask.size(1)
    used_p = prompt_mask.any(dim=0).nonzero()
    used_c = completion_mask.any(dim=0).nonzero()
    start = int(used_p[0]) if len(used_p) else 0
    end = int(used_c[-1]) + 1 if len(used_c) else 1  # keep one column: shapes stay valid
    if start == 0 and end == c_len:
        return inputs
    out = dict(inputs)
    for key in PROMPT_KEYS:
        v = inputs.get(key)
        if v is not None and hasattr(v, "dim") and v.dim() >= 2 and v.size(1) == p_len:
            out[key] = v[:, start:]
    for key, v in inputs.items():
        if key in PROMPT_KEYS or not hasattr(v, "dim") or v.dim() < 2 or v.size(1) != c_len:
            continue
        out[key] = v[:, :end]
    return out
