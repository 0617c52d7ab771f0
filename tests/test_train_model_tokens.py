"""The trainer's LM head scores only the model's own tokens (`training.model_tokens`).

TRL's real `_get_per_token_logps_and_entropies` runs on the tiny Qwen2 with TRL's fused head and a LoRA, once as
TRL ships it and once inside `model_tokens_only`. The log-probs the loss counts, the loss's gradient and the
entropy under the loss mask must be the same, while the head projects only the counted positions. It fails when
the TRL pin changes how the loss calls the model (labels with `fused_lm_head=True`)."""

from __future__ import annotations

import contextlib
import inspect
from types import SimpleNamespace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")
peft = pytest.importorskip("peft")

from inboxrl.training.model_tokens import model_tokens_only, scored_mask
from inboxrl.training.trainer import _score_completion_tokens_only
from train_helpers import tiny_model


def _policy() -> Any:
    from trl.trainer.utils import add_fused_lm_head

    model, _ = tiny_model()
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))  # as GRPOTrainer does, before PEFT
    torch.manual_seed(0)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return peft.get_peft_model(model, cfg)


def _inputs() -> dict[str, Any]:
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(10, 1000, (2, 6), generator=g)
    completion = torch.randint(10, 1000, (2, 12), generator=g)
    # each row: a model turn, a tool result (0), then the model's next turn; the second row ends in padding
    tool = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1],
                         [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]])
    completion_mask = torch.tensor([[1] * 12, [1] * 10 + [0] * 2])
    return {"prompt_ids": prompt, "prompt_mask": torch.ones_like(prompt), "completion_ids": completion,
            "completion_mask": completion_mask, "tool_mask": tool}


def _scores(model: Any, inputs: dict[str, Any], batch_size: int | None, masked: bool,
            head_rows: list[int]) -> tuple[Any, Any, dict[str, Any]]:
    """TRL's own loss forward; returns log-probs, entropies and the LoRA gradient of the masked loss."""
    from trl import GRPOTrainer

    trainer = SimpleNamespace(accelerator=SimpleNamespace(autocast=contextlib.nullcontext, is_main_process=True))
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    attention = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], 1)
    mask = scored_mask(inputs)
    model.zero_grad()
    hook = model_tokens_only(model, mask) if masked else contextlib.nullcontext()
    with _score_completion_tokens_only(), hook, _count_head_rows(head_rows):
        logps, entropies, _ = GRPOTrainer._get_per_token_logps_and_entropies(
            trainer, model, ids, attention, inputs["completion_ids"].size(1), batch_size=batch_size,
            compute_entropy=True)
    (-(logps * mask).sum()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    return logps.detach(), entropies.detach(), grads


@contextlib.contextmanager
def _count_head_rows(rows: list[int]) -> Any:
    """Records how many positions each call projects through the LM head."""
    import trl.trainer.utils as tu

    original = tu._ChunkedLogProbFunction.apply

    def counting(hidden: Any, *args: Any) -> Any:
        rows.append(int(hidden.size(0)))
        return original(hidden, *args)

    tu._ChunkedLogProbFunction.apply = counting
    try:
        yield
    finally:
        tu._ChunkedLogProbFunction.apply = original


@pytest.mark.parametrize("batch_size", [None, 1])  # TRL may chunk a micro-batch by rows: the hook follows
def test_head_scores_only_the_models_tokens_and_the_loss_is_unchanged(batch_size: int | None) -> None:
    model = _policy()
    inputs = _inputs()
    mask = scored_mask(inputs).bool()
    full_rows: list[int] = []
    ours_rows: list[int] = []
    lp_full, ent_full, g_full = _scores(model, inputs, batch_size, masked=False, head_rows=full_rows)
    lp_ours, ent_ours, g_ours = _scores(model, inputs, batch_size, masked=True, head_rows=ours_rows)

    assert sum(full_rows) == int(inputs["completion_mask"].sum())  # TRL alone: every completion position
    assert sum(ours_rows) == int(mask.sum()) < sum(full_rows)  # ours: only the tokens the loss counts
    assert torch.allclose(lp_ours[mask], lp_full[mask], atol=1e-5)
    assert (lp_ours[~mask] == 0).all()
    assert torch.allclose(ent_ours[mask], ent_full[mask], atol=1e-5)
    assert g_full and all(torch.allclose(g_ours[n], g_full[n], atol=1e-6) for n in g_full)
    assert any(g.abs().sum() > 0 for g in g_full.values())  # the comparison is not between two zeros


def test_hook_is_removed_and_leaves_other_calls_alone() -> None:
    model = _policy()
    inputs = _inputs()
    ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], 1)
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        with model_tokens_only(model, scored_mask(inputs)):
            inside = model(input_ids=ids).logits  # a generation-style call: no labels, no fused head
        assert torch.equal(plain, inside)
    assert not model._forward_pre_hooks


def test_pin_trl_loss_calls_the_model_with_labels_and_the_fused_head() -> None:
    """The hook edits exactly this call's labels; a TRL that builds them otherwise must fail here."""
    from trl import GRPOTrainer

    src = inspect.getsource(GRPOTrainer._get_per_token_logps_and_entropies)
    assert "labels[:, :-logits_to_keep] = -100" in src
    assert "model(**model_inputs, labels=labels, fused_lm_head=True)" in src
    assert "completion_mask * inputs[\"tool_mask\"]" in inspect.getsource(GRPOTrainer._compute_loss)
