"""The vLLM rollout path's bookkeeping, with a scripted sampler standing in for vLLM (no GPU and no vLLM here).

The sampler is scripted (named as such): it "samples" a real search call, then a final answer, as token ids. The
episode, the tools on the real store, the token streams and the splice are the real code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.scoring.reward import RewardConfig
from train_helpers import SpyBackend, grounded, tiny_model


def test_train_vllm_backend_splices_sampled_ids_scripted_sampler(enron_store: Path, questions_path: Path) -> None:
    from inboxrl.judge.lexical import LexicalJudge
    from inboxrl.training.rollout import EpisodeRollout
    from inboxrl.training.vllm_backend import vllm_backend

    model, tok = tiny_model()
    q = grounded(enron_store, questions_path, 1)[0]
    end = tok.convert_tokens_to_ids("<|im_end|>")
    script = [json.dumps({"name": "search_inbox", "arguments": {"keywords": q.question.split()[:2]}}),
              json.dumps({"name": "return_final_answer", "arguments": {"answer": q.answer, "sources": []}})]
    prompts_seen: list[list[int]] = []

    def scripted_sampler(prompts: list[list[int]], max_new: list[int], temps: list[float],
                         stops: list[int]) -> list[tuple[list[int], list[float]]]:
        out = []
        for p in prompts:
            prompts_seen.append(p)
            turn = sum(1 for x in p if x == end) - 1  # replies closed so far (the system prompt has one too)
            ids = tok(script[min(turn - 1, 1)], add_special_tokens=False)["input_ids"]
            # like vLLM with a special stop token: the stop id is left out of the output
            out.append((ids, [-0.5] * len(ids)))
        return out

    spies: list[SpyBackend] = []

    def make(m: Any, t: Any) -> SpyBackend:
        spies.append(SpyBackend(vllm_backend(m, t, "local/policy", scripted_sampler)))
        return spies[-1]

    cfg = AgentConfig(max_turns=3, max_tokens_per_turn=200, temperature=1.0)
    ro = EpisodeRollout([q, q], str(enron_store), cfg, LexicalJudge(), RewardConfig(), tok, num_generations=2,
                        max_completion_tokens=100_000, skip_equal_groups=False, return_logprobs=True,
                        make_backend=make)
    trajs = ro.run(model, [q, q])
    batch = ro.to_trainer_batch(trajs, None, step=1, gen_seconds=1.0)
    t = trajs[0]
    assert [e.name for e in t.tool_events] == ["search_inbox", "return_final_answer"]
    assert t.stop_reason == "answered" and t.rubric is not None and t.rubric.answer_correct
    spy = spies[0]
    eid = t.meta["episode_id"]
    prompt, completion, mask = batch["prompt_ids"][0], batch["completion_ids"][0], batch["env_mask"][0]
    assert prompt + completion == spy.streams[eid]
    sampled = [i for r in spy.responses[eid] for i in r.output_ids]
    assert [c for c, m in zip(completion, mask) if m] == sampled
    # each turn's output ends with the end-of-turn id the backend restored, and has a log-prob
    for r in spy.responses[eid]:
        assert r.output_ids[-1] == end and len(r.output_logprobs) == len(r.output_ids)
    assert completion[-1] == end  # TRL sees a finished, not truncated, completion
    assert [lp for lp, m in zip(batch["logprobs"][0], mask) if m][:3] == [-0.5, -0.5, -0.5]
    # vLLM received the whole stream each turn: the second prompt extends the first
    assert prompts_seen[2][: len(prompts_seen[0])] == prompts_seen[0]
