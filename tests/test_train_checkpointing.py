"""Activation checkpointing by episode length (`training.checkpointing`), on the tiny Qwen2 with a LoRA.

A checkpointed pass runs each decoder layer's forward twice (again in the backward); a short episode under the
threshold must run it once, give the same gradient, and leave the model checkpointing afterwards."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from inboxrl.training.checkpointing import checkpointed_layers, checkpointing_for
from train_helpers import tiny_model


def _policy() -> Any:
    model, _ = tiny_model()
    torch.manual_seed(0)
    cfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    policy = peft.get_peft_model(model, cfg)
    policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy.train()
    return policy


def _pass(policy: Any, ids: Any, min_tokens: int | None) -> tuple[int, dict[str, Any]]:
    """(forward calls of the first decoder layer's MLP, LoRA gradient) of one forward and backward. transformers
    checkpoints a layer's `forward`, not its `__call__`, so the count is taken inside it, as it starts (the
    recompute stops early, once it has what the backward needs)."""
    layer = checkpointed_layers(policy)[0] if checkpointed_layers(policy) else None
    assert layer is not None
    calls = []
    hook = layer.mlp.register_forward_pre_hook(lambda *a: calls.append(1))
    policy.zero_grad()
    with checkpointing_for(policy, ids.size(1), min_tokens):
        loss = policy(input_ids=ids).logits.float().logsumexp(-1).mean()
    loss.backward()  # after the block, as TRL's training step does
    hook.remove()
    return len(calls), {n: p.grad.clone() for n, p in policy.named_parameters() if p.requires_grad}


def test_short_episodes_keep_their_activations_and_the_gradient_is_the_same() -> None:
    policy = _policy()
    n_layers = len(checkpointed_layers(policy))
    ids = torch.randint(10, 1000, (1, 24), generator=torch.Generator().manual_seed(0))
    calls_ckpt, g_ckpt = _pass(policy, ids, min_tokens=None)
    calls_long, _ = _pass(policy, ids, min_tokens=23)  # 24 tokens > 23: checkpointed
    calls_short, g_short = _pass(policy, ids, min_tokens=24)  # 24 tokens <= 24: not
    assert calls_ckpt == calls_long == 2  # forward, then the recompute in the backward
    assert calls_short == 1
    assert all(torch.allclose(g_short[n], g_ckpt[n], atol=1e-6) for n in g_ckpt)
    assert any(g.abs().sum() > 0 for g in g_ckpt.values())
    assert len(checkpointed_layers(policy)) == n_layers > 0  # restored after the short pass


def test_pin_transformers_layers_read_their_checkpointing_flag_at_each_call() -> None:
    """The switch flips `GradientCheckpointingLayer.gradient_checkpointing`, which the pinned transformers reads
    at every forward; a version that reads it elsewhere must fail here."""
    from transformers.modeling_layers import GradientCheckpointingLayer

    assert GradientCheckpointingLayer.gradient_checkpointing is False
    assert "self.gradient_checkpointing and self.training" in inspect.getsource(GradientCheckpointingLayer)
