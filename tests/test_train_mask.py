"""THE MASK TEST: real multi-turn episodes, spliced for the trainer, checked token by token.

Only ids the model sampled may count in the loss (mask 1); the prompt is separate and every id the environment
wrote (tool results, error messages, chat-template tokens) has mask 0. The completion ids must be the very ids the
model sampled, not a re-tokenisation of its decoded text, and prompt + completion must be exactly the token stream
the model saw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inboxrl.agent.config import AgentConfig
from inboxrl.scoring.reward import RewardConfig
from train_helpers import SpyBackend, grounded, tiny_model


def _rollout(questions: list, db: Path, model: Any, tok: Any, cfg: AgentConfig, group: int,
             skip_equal_groups: bool = False) -> tuple[Any, SpyBackend, list, dict]:
    from inboxrl.judge.lexical import LexicalJudge
    from inboxrl.models.local import LocalBackend
    from inboxrl.training.rollout import EpisodeRollout

    spies: list[SpyBackend] = []

    def make(m: Any, t: Any) -> SpyBackend:
        spies.append(SpyBackend(LocalBackend.from_model(m, t, name="local/test-policy")))
        return spies[-1]

    repeated = [q for q in questions for _ in range(group)]  # as TRL hands them over: each question N times
    ro = EpisodeRollout(repeated, str(db), cfg, LexicalJudge(), RewardConfig(), tok, num_generations=group,
                        max_completion_tokens=100_000, skip_equal_groups=skip_equal_groups, make_backend=make)
    trajs = ro.run(model, repeated)
    batch = ro.to_trainer_batch(trajs, None, step=1, gen_seconds=1.0)
    assert len(spies) == 1
    return ro, spies[0], trajs, batch


def _check_token_by_token(traj: Any, prompt: list[int], completion: list[int], mask: list[int], spy: SpyBackend,
                          tok: Any) -> int:
    """Walks the episode's responses in order; returns the number of environment segments checked."""
    eid = traj.meta["episode_id"]
    responses = spy.responses[eid]
    assert len(responses) == len(traj.turns) >= 2, "the episode must be multi-turn"
    # prompt + completion is exactly the stream the model saw and sampled (nothing re-tokenised, nothing missing)
    assert prompt + completion == spy.streams[eid]
    assert prompt == responses[0].input_ids
    pos = 0
    env_segments = 0
    assistant_at = [i for i, m in enumerate(traj.messages) if m.role == "assistant"]
    for k, r in enumerate(responses):
        if k > 0:
            seg = completion[pos:pos + len(r.input_ids)]
            assert seg == r.input_ids
            assert mask[pos:pos + len(seg)] == [0] * len(seg), f"environment ids of turn {k} must have mask 0"
            text = tok.decode(seg)
            # every message the environment added after the model's turn k-1 is inside this masked segment
            added = traj.messages[assistant_at[k - 1] + 1:assistant_at[k]]
            assert added and all(m.role in ("tool", "user") for m in added)
            for m in added:
                assert (m.content or "") in text, f"turn {k}: {m.role} message missing from the masked segment"
            env_segments += 1
            pos += len(seg)
        out = completion[pos:pos + len(r.output_ids)]
        assert out == r.output_ids, f"turn {k}: completion ids differ from the sampled ids"
        assert mask[pos:pos + len(out)] == [1] * len(out), f"sampled ids of turn {k} must have mask 1"
        assert traj.turns[k].output_ids == r.output_ids
        pos += len(out)
    assert pos == len(completion) == len(mask)
    # the ids with mask 1 are exactly the concatenation of what was sampled, in order
    assert [c for c, m in zip(completion, mask) if m == 1] == [i for r in responses for i in r.output_ids]
    return env_segments


def test_train_mask_tiny_model_multi_turn_token_by_token(enron_store: Path, questions_path: Path) -> None:
    model, tok = tiny_model()
    qs = grounded(enron_store, questions_path, 2)
    cfg = AgentConfig(max_turns=3, max_tokens_per_turn=12, temperature=1.0, on_format_error="retry")
    _, spy, trajs, batch = _rollout(qs, enron_store, model, tok, cfg, group=2)
    assert len(batch["prompt_ids"]) == len(trajs) == 4
    assert batch["logprobs"] is None  # no vLLM: the trainer recomputes log-probs itself
    checked = 0
    for i, t in enumerate(trajs):
        checked += _check_token_by_token(t, batch["prompt_ids"][i], batch["completion_ids"][i],
                                         batch["env_mask"][i], spy, tok)
        assert batch["inboxrl_reward"][i] == t.reward
    assert checked >= 4
    # Why splice the sampled ids: the random model's samples do not survive decode -> encode.
    sampled = [r.output_ids for rs in spy.responses.values() for r in rs]
    retok = [tok(tok.decode(ids), add_special_tokens=False)["input_ids"] for ids in sampled]
    assert any(a != b for a, b in zip(sampled, retok))


def test_train_mask_equal_reward_groups_are_masked_out_and_counted(enron_store: Path, questions_path: Path) -> None:
    model, tok = tiny_model()
    qs = grounded(enron_store, questions_path, 2)
    cfg = AgentConfig(max_turns=2, max_tokens_per_turn=8, temperature=1.0)
    ro, _, _trajs, batch = _rollout(qs, enron_store, model, tok, cfg, group=2, skip_equal_groups=True)
    rewards = batch["inboxrl_reward"]
    for g in range(2):
        grp = rewards[2 * g:2 * g + 2]
        equal = max(grp) - min(grp) < 1e-6
        for i in (2 * g, 2 * g + 1):
            assert batch["inboxrl_group_skipped"][i] == equal
            if equal:
                assert set(batch["env_mask"][i]) == {0}
            else:
                assert 1 in batch["env_mask"][i]
    step = ro.log.steps[-1]
    assert step["groups/total"] == 2
    assert step["groups/skipped"] == sum(batch["inboxrl_group_skipped"]) / 2


def test_train_mask_forced_first_search_prefix_is_environment_tokens(enron_store: Path, questions_path: Path) -> None:
    """`force_search_first`: the reply opens with the harness's call prefix. Those ids belong to the prompt (mask
    0, never trained on); the recorded assistant text still holds the whole call; later turns are not forced."""
    model, tok = tiny_model()
    qs = grounded(enron_store, questions_path, 1)
    cfg = AgentConfig(max_turns=3, max_tokens_per_turn=10, temperature=1.0, force_search_first=True)
    _, spy, trajs, batch = _rollout(qs, enron_store, model, tok, cfg, group=2)
    prefix = '{"name": "search_inbox", "arguments": {"keywords": ['
    prefix_ids = tok(prefix, add_special_tokens=False)["input_ids"]
    for i, t in enumerate(trajs):
        assert t.meta["forced_calls"]["0"] == "search_inbox"
        assert t.turns[0].raw_output.startswith(prefix)
        assert batch["prompt_ids"][i][-len(prefix_ids):] == prefix_ids
        assert t.turns[0].output_ids[:len(prefix_ids)] != prefix_ids
        _check_token_by_token(t, batch["prompt_ids"][i], batch["completion_ids"][i], batch["env_mask"][i], spy, tok)
        responses = spy.responses[t.meta["episode_id"]]
        assert len(responses) >= 2 and all(r.input_ids[-len(prefix_ids):] != prefix_ids for r in responses[1:])


@pytest.mark.slow
def test_train_mask_qwen_tool_results_are_masked(enron_store: Path, questions_path: Path) -> None:
    """The bundled Qwen makes real tool calls, so the masked segments hold real tool results from the store."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inboxrl.models.bundled import ensure_converted

    d = ensure_converted("qwen2.5-coder-0.5b")
    model, tok = AutoModelForCausalLM.from_pretrained(d), AutoTokenizer.from_pretrained(d)
    qs = grounded(enron_store, questions_path, 1)
    cfg = AgentConfig(max_turns=2, max_tokens_per_turn=40, temperature=0.0, force_search_first=True)
    _, spy, trajs, batch = _rollout(qs, enron_store, model, tok, cfg, group=1)
    t = trajs[0]
    assert t.tool_events and t.tool_events[0].name == "search_inbox"  # the forced opening became a real search
    _check_token_by_token(t, batch["prompt_ids"][0], batch["completion_ids"][0], batch["env_mask"][0], spy, tok)
    tool_msgs = [m for m in t.messages if m.role == "tool"]
    assert tool_msgs, f"Qwen made no tool call: {t.turns[0].raw_output!r}"
    env = [c for c, m in zip(batch["completion_ids"][0], batch["env_mask"][0]) if m == 0]
    assert (tool_msgs[0].content or "")[:80] in tok.decode(env)


@pytest.mark.slow
def test_train_mask_qwen_guided_harness_prefixes_are_masked(enron_store: Path, questions_path: Path) -> None:
    """The guided harness (the CPU demo's): search, then a forced read, then a forced answer. Every forced opening
    is environment text (mask 0) at the end of its turn's input ids, and what Qwen wrote after it is a real call."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inboxrl.models.bundled import ensure_converted

    d = ensure_converted("qwen2.5-coder-0.5b")
    model, tok = AutoModelForCausalLM.from_pretrained(d), AutoTokenizer.from_pretrained(d)
    qs = grounded(enron_store, questions_path, 1)
    cfg = AgentConfig(max_turns=3, max_tokens_per_turn=60, temperature=0.0, force_search_first=True,
                      force_read_after_search=True, force_answer_after_read=True)
    _, spy, trajs, batch = _rollout(qs, enron_store, model, tok, cfg, group=1)
    t = trajs[0]
    assert t.tool_events and t.tool_events[0].name == "search_inbox" and t.tool_events[0].result_ids, \
        "the grounded question's search must find mail for this test"
    _check_token_by_token(t, batch["prompt_ids"][0], batch["completion_ids"][0], batch["env_mask"][0], spy, tok)
    assert t.meta["forced_calls"]["1"] == "read_email"
    assert t.turns[1].tool_calls and t.turns[1].tool_calls[0].name == "read_email"
    responses = spy.responses[t.meta["episode_id"]]
    read_prefix = tok('{"name": "read_email", "arguments": {"message_id": "', add_special_tokens=False)["input_ids"]
    assert responses[1].input_ids[-len(read_prefix):] == read_prefix
    if t.tool_events[1].ok:  # a real read: the third turn is forced to answer, and its opening is masked too
        answer_prefix = tok('{"name": "return_final_answer", "arguments": {"answer": "',
                            add_special_tokens=False)["input_ids"]
        assert responses[2].input_ids[-len(answer_prefix):] == answer_prefix
        assert t.turns[2].raw_output.startswith('{"name": "return_final_answer"')
    # Where the completion holds a forced opening, the mask is 0 over all of its ids.
    comp, mask = batch["completion_ids"][0], batch["env_mask"][0]
    at = next(i for i in range(len(comp)) if comp[i:i + len(read_prefix)] == read_prefix)
    assert set(mask[at:at + len(read_prefix)]) == {0}
