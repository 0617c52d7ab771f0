"""Each micro-batch is cut to its own length before the loss (`training.padding.trim_padding`).

TRL pads a whole step's rollouts to the longest one before it splits them into micro-batches; the cut must drop
only columns that are padding in every row, keep every per-token tensor aligned, and leave the log-probs of the
real tokens as they were (a real tiny model, left padding with its attention mask vs none)."""

from __future__ import annotations

import torch

from inboxrl.training.padding import trim_padding
from train_helpers import tiny_model


def _batch(prompts: list[list[int]], completions: list[list[int]], p_len: int, c_len: int, pad: int = 0) -> dict:
    """TRL's layout: prompts left-padded to p_len, completions right-padded to c_len."""
    def left(rows: list[list[int]], n: int, v: int) -> torch.Tensor:
        return torch.tensor([[v] * (n - len(r)) + r for r in rows])

    def right(rows: list[list[int]], n: int, v: int) -> torch.Tensor:
        return torch.tensor([r + [v] * (n - len(r)) for r in rows])

    return {
        "prompt_ids": left(prompts, p_len, pad),
        "prompt_mask": left([[1] * len(p) for p in prompts], p_len, 0),
        "completion_ids": right(completions, c_len, pad),
        "completion_mask": right([[1] * len(c) for c in completions], c_len, 0),
        "tool_mask": right([[1, 0] * (len(c) // 2) + [1] * (len(c) % 2) for c in completions], c_len, 1),
        "old_per_token_logps": right([[-0.5] * len(c) for c in completions], c_len, 0),
        "advantages": torch.tensor([0.7] * len(prompts)),
        "num_items_in_batch": torch.tensor(99),
    }


def test_trim_padding_drops_only_all_padding_columns_and_keeps_tensors_aligned() -> None:
    b = _batch([[5, 6, 7], [8, 9]], [[1, 2, 3, 4], [3]], p_len=6, c_len=9)
    t = trim_padding(b)
    assert t["prompt_ids"].tolist() == [[5, 6, 7], [0, 8, 9]]  # the longer prompt sets the start
    assert t["completion_ids"].shape == (2, 4) and t["completion_mask"].shape == (2, 4)
    assert t["tool_mask"].shape == (2, 4) and t["old_per_token_logps"].shape == (2, 4)
    for key in ("completion_mask", "prompt_mask"):
        assert int(t[key].sum()) == int(b[key].sum())  # no real token lost
    loss_mask = lambda x: (x["completion_mask"] * x["tool_mask"]).sum()
    assert int(loss_mask(t)) == int(loss_mask(b))
    assert t["advantages"] is b["advantages"] and t["num_items_in_batch"] is b["num_items_in_batch"]
    # a micro-batch without padding comes back as it was
    assert trim_padding(t) is t


def test_trim_padding_keeps_a_real_models_log_probs() -> None:
    model, _ = tiny_model()
    model.eval()
    g = torch.Generator().manual_seed(0)
    prompt = torch.randint(10, 1000, (7,), generator=g).tolist()
    completion = torch.randint(10, 1000, (5,), generator=g).tolist()
    padded = _batch([prompt], [completion], p_len=12, c_len=11)  # 5 columns of padding on each side
    trimmed = trim_padding(padded)
    assert trimmed["prompt_ids"].shape[1] == 7 and trimmed["completion_ids"].shape[1] == 5

    def logps(b: dict) -> torch.Tensor:
        ids = torch.cat([b["prompt_ids"], b["completion_ids"]], dim=1)
        mask = torch.cat([b["prompt_mask"], b["completion_mask"]], dim=1)
        pos = (mask.cumsum(1) - 1).clamp(min=0)  # what TRL's default arange gives, minus the padding offset
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, :-1]
        lp = torch.log_softmax(logits.float(), -1).gather(-1, ids[:, 1:, None])[..., 0]
        n_p = b["prompt_ids"].shape[1]
        return lp[0, n_p - 1:n_p - 1 + len(completion)]

    assert torch.allclose(logps(padded), logps(trimmed), atol=1e-4)
    with torch.no_grad():  # and without explicit positions (TRL passes none): RoPE sees only distances
        ids_p = torch.cat([padded["prompt_ids"], padded["completion_ids"]], 1)
        m_p = torch.cat([padded["prompt_mask"], padded["completion_mask"]], 1)
        ids_t = torch.cat([trimmed["prompt_ids"], trimmed["completion_ids"]], 1)
        a = model(input_ids=ids_p, attention_mask=m_p).logits[0, 5:5 + 12]
        b = model(input_ids=ids_t).logits[0, :12]
    assert torch.allclose(a, b, atol=1e-3)
