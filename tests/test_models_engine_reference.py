"""The in-house engine checked against the library: greedy decoding through LocalBackend (batched, KV cache kept
across turns, tool results appended to the token stream) gives the same ids as transformers' `generate()` on the
same context, turn by turn, for real multi-turn agent episodes of the bundled Qwen on the real store, in float32."""

from __future__ import annotations

from pathlib import Path

import pytest

from train_helpers import SpyBackend, grounded

pytestmark = pytest.mark.slow


def test_greedy_engine_matches_transformers_generate(enron_store: Path, questions_path: Path) -> None:
    import torch

    from inboxrl.agent.config import AgentConfig
    from inboxrl.agent.runner import run_episodes
    from inboxrl.models.registry import load_backend

    backend = load_backend("local/qwen2.5-coder-0.5b", threads=1, dtype="float32")
    spy = SpyBackend(backend)
    questions = grounded(enron_store, questions_path, 2)
    cfg = AgentConfig(max_turns=3, max_tokens_per_turn=48, temperature=0.0, force_search_first=True)
    trajs = run_episodes(questions, spy, enron_store, cfg, batch_size=2)  # two episodes in lock-step batches
    model, stop = backend.model, sorted(backend.stop_ids)

    compared = 0
    for traj in trajs:
        context: list[int] = []
        for k, resp in enumerate(spy.responses[traj.meta["episode_id"]]):
            assert resp.error is None and resp.input_ids is not None and resp.output_ids
            context += resp.input_ids
            ref = model.generate(torch.tensor([context]), attention_mask=torch.ones(1, len(context), dtype=torch.long),
                                 max_new_tokens=len(resp.output_ids), do_sample=False, eos_token_id=stop,
                                 pad_token_id=stop[0])
            expected = ref[0, len(context):].tolist()
            assert resp.output_ids == expected, f"turn {k} of {traj.question_id} differs from generate()"
            context += resp.output_ids
            compared += len(expected)
        assert len(spy.responses[traj.meta["episode_id"]]) >= 2, "the episode must reach a turn after a tool result"
    assert compared >= 64
