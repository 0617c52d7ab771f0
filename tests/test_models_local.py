"""LocalBackend with the real bundled SmolLM2 (converted once per machine into the real cache, then ~2 s loads):
batching, per-episode token streams, KV-cache reuse, log-probs, context limits, wrapping a model it does not own."""

from __future__ import annotations

import math
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from inboxrl.models import bundled
from inboxrl.models.base import ChatBackend, ChatRequest
from inboxrl.models.engine import Engine, KVCacheEngine
from inboxrl.models.local import LocalBackend
from inboxrl.models.registry import load_backend

pytestmark = pytest.mark.slow  # every test here loads the bundled SmolLM2

SYSTEM = {"role": "system", "content": "You are an email assistant. Answer briefly."}


def chat(question: str) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": question}]


@pytest.fixture(scope="module")
def smol() -> LocalBackend:
    b = load_backend("local/smollm2-135m", threads=1)
    assert isinstance(b, LocalBackend)
    return b


def test_bundled_smollm2_loads_from_the_converted_cache(smol: LocalBackend) -> None:
    assert bundled.is_converted("smollm2-135m")
    assert (bundled.converted_dir("smollm2-135m") / "model.safetensors").is_file()
    assert isinstance(smol, ChatBackend) and isinstance(smol.engine, Engine)
    assert smol.name == "local/smollm2-135m" and smol.native_tools is False
    assert smol.template_tools is False  # SmolLM2's template ignores tools: the agent describes them
    assert smol.eot_id in smol.stop_ids and smol.eot_text == "<|im_end|>"
    # Shared per process: asking again gives the same weights, not a second copy.
    assert load_backend("local/smollm2-135m", threads=1) is smol


def test_batched_generation_matches_one_by_one(smol: LocalBackend) -> None:
    reqs = [ChatRequest("b1", chat("What is the capital of France?"), max_tokens=8),
            ChatRequest("b2", chat("Write one word that rhymes with mail, then explain why it rhymes."),
                        max_tokens=8)]
    both = smol.generate(reqs)
    assert smol.last_stats["batches"] == 1 and smol.last_stats["requests"] == 2
    alone = [smol.generate([ChatRequest(f"s{i}", r.messages, max_tokens=8)])[0] for i, r in enumerate(reqs)]
    for b, a in zip(both, alone):
        assert b.error is None and b.output_ids
        assert b.output_ids == a.output_ids  # explicit masks and positions: batching does not change results
        assert all(abs(x - y) < 1e-3 for x, y in zip(b.output_logprobs or [], a.output_logprobs or []))
        assert b.finish_reason in ("stop", "length")
        assert b.prompt_tokens == len(b.input_ids or []) and b.completion_tokens == len(b.output_ids)
    for eid in ("b1", "b2", "s0", "s1"):
        smol.end_episode(eid)


def test_token_stream_over_a_two_turn_episode_with_a_tool_message(smol: LocalBackend) -> None:
    msgs = chat("Find the email about the Houston meeting.")
    r0 = smol.generate([ChatRequest("ep", msgs, max_tokens=16)])[0]
    assert r0.error is None
    # Turn 0: the whole rendered prompt is the input.
    assert smol.tokenizer.decode(r0.input_ids) == smol.renderer.render(msgs, None, True)
    msgs1 = msgs + [{"role": "assistant", "content": r0.text},
                    {"role": "tool", "tool_call_id": "call_1", "name": "search_inbox",
                     "content": '[{"message_id": "<1.JavaMail.evans@thyme>", "subject": "Houston meeting"}]'}]
    r1 = smol.generate([ChatRequest("ep", msgs1, max_tokens=16)])[0]
    assert r1.error is None and "stream_reset" not in r1.extra
    stream = smol.stream("ep")
    assert stream == r0.input_ids + r0.output_ids + r1.input_ids + r1.output_ids
    # Only the new tokens were computed: the tool message (plus the last sampled token, whose KV was pending).
    assert r1.extra["prefill_tokens"] == len(r1.input_ids) + 1
    assert r1.extra["cached_tokens"] == len(r0.input_ids) + len(r0.output_ids) - 1
    # The stream decodes to the rendered chat, with the model's sampled text as the assistant turns.
    final = msgs1 + [{"role": "assistant", "content": r1.text}]
    rendered = smol.renderer.render(final, None, False)
    decoded = smol.tokenizer.decode(stream)
    if r1.finish_reason == "stop":
        assert rendered == decoded + smol.renderer.info.after_turn
    else:
        assert rendered.startswith(decoded)
    if r0.finish_reason == "length":  # the cut turn was closed with the end-of-turn token before the tool message
        assert r1.input_ids[0] == smol.eot_id
    smol.end_episode("ep")
    assert smol.stream("ep") is None


def test_kv_cache_eviction_recomputes_from_the_stream_with_the_same_result(smol: LocalBackend) -> None:
    nocache = LocalBackend(smol.model, smol.tokenizer, "local/smollm2-135m", threads=1, kv_cache_mb=0)
    msgs = chat("Who sent the budget email?")
    outs = []
    for b, eid in ((smol, "kv-a"), (nocache, "kv-b")):
        r0 = b.generate([ChatRequest(eid, msgs, max_tokens=8)])[0]
        m1 = msgs + [{"role": "assistant", "content": r0.text}, {"role": "user", "content": "Say it again."}]
        r1 = b.generate([ChatRequest(eid, m1, max_tokens=8)])[0]
        outs.append((r0.output_ids, r1.input_ids, r1.output_ids, r1.extra["prefill_tokens"]))
        b.end_episode(eid)
    (a0, ain, a1, apre), (b0, bin_, b1, bpre) = outs
    assert (a0, ain, a1) == (b0, bin_, b1)
    assert apre == len(ain) + 1
    prompt_len = len(smol.tokenizer(smol.renderer.render(msgs, None, True), add_special_tokens=False)["input_ids"])
    assert bpre == len(ain) + len(a0) + prompt_len  # everything recomputed from the stream


def test_changed_history_resets_the_stream_clearly(smol: LocalBackend) -> None:
    msgs = chat("Hello")
    r0 = smol.generate([ChatRequest("rs", msgs, max_tokens=4)])[0]
    edited = chat("Hello, edited") + [{"role": "assistant", "content": r0.text}, {"role": "user", "content": "Hi"}]
    r1 = smol.generate([ChatRequest("rs", edited, max_tokens=4)])[0]
    assert r1.extra.get("stream_reset") is True
    assert smol.tokenizer.decode(r1.input_ids) == smol.renderer.render(edited, None, True)
    smol.end_episode("rs")


def test_logprobs_and_seeded_sampling(smol: LocalBackend) -> None:
    req = ChatRequest("lp", chat("Name a color."), max_tokens=6, temperature=1.0, seed=7)
    r = smol.generate([req])[0]
    smol.end_episode("lp")
    again = smol.generate([req])[0]
    smol.end_episode("lp")
    assert r.output_logprobs is not None and len(r.output_logprobs) == len(r.output_ids or []) > 0
    assert all(math.isfinite(x) and x <= 0 for x in r.output_logprobs)
    assert again.output_ids == r.output_ids  # same seed, same episode id: reproducible
    # Greedy log-probs are the model's own distribution at the argmax: never below log(1/vocab).
    g = smol.generate([ChatRequest("lpg", req.messages, max_tokens=4)])[0]
    smol.end_episode("lpg")
    assert all(x >= -math.log(len(smol.tokenizer)) for x in g.output_logprobs or [])


def test_prompt_longer_than_the_context_is_an_error_response(smol: LocalBackend) -> None:
    small = LocalBackend(smol.model, smol.tokenizer, "local/smollm2-135m", threads=1, max_context=48)
    long_q = chat("Please read this: " + "budget forecast " * 40)
    ok_q = chat("Hi")
    bad, ok = small.generate([ChatRequest("long", long_q, max_tokens=4), ChatRequest("ok", ok_q, max_tokens=200)])
    assert bad.error is not None and bad.error.startswith("context_full") and bad.finish_reason == "context_full"
    assert ok.error is None
    assert ok.prompt_tokens + ok.completion_tokens <= 48  # max_tokens is clipped to the room left


def test_from_model_restores_train_mode_and_leaves_weights_alone(smol: LocalBackend) -> None:
    import torch

    model = smol.model
    before = {n: p.detach().clone() for n, p in list(model.named_parameters())[:3]}
    model.train()
    try:
        b = LocalBackend.from_model(model, smol.tokenizer, name="local/policy", threads=1)
        r = b.generate([ChatRequest("fm", chat("Hi"), max_tokens=3)])[0]
        assert r.error is None and b.name == "local/policy"
        assert model.training and all(m.training for m in model.modules())
        for n, p in list(model.named_parameters())[:3]:
            assert torch.equal(p.detach(), before[n]) and p.grad is None
    finally:
        model.eval()


@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_reduced_precision_copy_for_fast_rollouts_leaves_the_policy_alone(smol: LocalBackend, dtype: str) -> None:
    import torch

    fast = LocalBackend.from_model(smol.model, smol.tokenizer, name="local/policy", dtype=dtype, threads=1)
    assert fast.model is not smol.model
    r = fast.generate([ChatRequest("lowp", chat("What is the capital of France?"), max_tokens=6)])[0]
    assert r.error is None and r.output_ids and len(r.output_logprobs or []) == len(r.output_ids)
    assert all(p.dtype == torch.float32 for p in smol.model.parameters())
    assert not any(type(m).__module__.startswith("torch.ao") for m in smol.model.modules())


@pytest.mark.parametrize("native", [True, False])
def test_auto_dtype_copies_to_bf16_only_where_bf16_is_native(smol: LocalBackend, monkeypatch: pytest.MonkeyPatch,
                                                              native: bool) -> None:
    import torch

    from inboxrl.models import hardware

    monkeypatch.setattr(hardware, "cpu_bf16_native", lambda: native)
    b = LocalBackend.from_model(smol.model, smol.tokenizer, name="local/policy", dtype="auto", threads=1)
    if native:
        assert b.model is not smol.model and next(b.model.parameters()).dtype == torch.bfloat16
    else:  # emulated bf16 would be ~3x slower: the policy itself samples, no copy
        assert b.model is smol.model and next(b.model.parameters()).dtype == torch.float32


def test_unknown_dtype_is_a_clear_error(smol: LocalBackend) -> None:
    from inboxrl.models.base import BackendError

    with pytest.raises(BackendError, match="unsupported dtype 'float8'"):
        LocalBackend.from_model(smol.model, smol.tokenizer, dtype="float8")
    # ... and from the environment, named as the user wrote it, before any model loads
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INBOXRL_DTYPE", "atuo")
        with pytest.raises(BackendError, match="unsupported dtype 'atuo'"):
            LocalBackend.from_pretrained("/nonexistent/model")


def test_shared_prompt_is_prefilled_once_with_identical_results(smol: LocalBackend) -> None:
    # A GRPO group: one question, several episodes. Greedy, so every episode must give the same answer, and the
    # same answer as without prefix sharing.
    msgs = chat("Summarise the email about the gas storage report in one sentence. The report was sent by the "
                "research group in Houston and lists the volumes in each storage field for the last quarter.")
    plain = LocalBackend(smol.model, smol.tokenizer, "local/smollm2-135m", threads=1, prefix_cache=0)
    (ref,) = plain.generate([ChatRequest("ref", msgs, max_tokens=8)])
    shared = LocalBackend(smol.model, smol.tokenizer, "local/smollm2-135m", threads=1)
    group = shared.generate([ChatRequest(f"g{i}", msgs, max_tokens=8) for i in range(3)])
    n = len(ref.input_ids or [])
    assert n - 1 >= KVCacheEngine.MIN_PREFIX
    assert shared.last_stats["prefill_tokens"] == (n - 1) + 3 * 1  # the prefix once, then one token per episode
    for r in group:
        assert r.output_ids == ref.output_ids and r.input_ids == ref.input_ids
    # A later episode with the same prompt starts from the cached prefix.
    (again,) = shared.generate([ChatRequest("g9", msgs, max_tokens=8)])
    assert again.extra["prefill_tokens"] == 1 and again.output_ids == ref.output_ids


def test_grouped_query_attention_switch_keeps_outputs(smol: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """SmolLM2 has 3 key/value heads for 9 query heads. Masked prefill over a cache runs with SDPA's `enable_gqa`
    on CPU (`kvcache.grouped_query_sdpa`); with transformers' copying path forced instead, two two-turn episodes of
    different lengths (left padding: a real mask) give the same greedy ids and log-probs."""
    from inboxrl.models.kvcache import GQA_SWITCH

    tool = {"role": "tool", "tool_call_id": "call_1", "name": "read_email",
            "content": "Subject: Houston meeting\n\nThe meeting moved to Thursday at 3 pm in room 32C. " * 6}

    def two_turns(prefix: str) -> list[list[tuple[list[int], list[float]]]]:
        chats = [chat("Find the email about the Houston meeting."), chat("Who wrote about the budget? Be brief.")]
        out = []
        for turn in range(2):
            rs = smol.generate([ChatRequest(f"{prefix}{i}", c, max_tokens=12) for i, c in enumerate(chats)])
            assert all(r.error is None for r in rs)
            out.append([(r.output_ids or [], r.output_logprobs or []) for r in rs])
            chats = [c + [{"role": "assistant", "content": r.text}, tool] for c, r in zip(chats, rs)]
        for i in range(2):
            smol.end_episode(f"{prefix}{i}")
        return out

    import torch

    calls: list[bool] = []  # per masked multi-token attention call: did it take the groups as they are?
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args: object, **kwargs: object) -> object:
        q = args[0]
        if kwargs.get("attn_mask") is not None and q.shape[-2] > 1:  # type: ignore[attr-defined]
            calls.append(bool(kwargs.get("enable_gqa")))
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    assert os.environ.get(GQA_SWITCH) is None
    grouped = two_turns("g")
    assert calls and all(calls)
    assert os.environ.get(GQA_SWITCH) is None  # set only for the engine's own calls
    monkeypatch.setenv(GQA_SWITCH, "0")  # transformers' default: copy the key/value heads
    calls.clear()
    copied = two_turns("c")
    assert calls and not any(calls)
    for turn_g, turn_c in zip(grouped, copied):
        for (ids_g, lp_g), (ids_c, lp_c) in zip(turn_g, turn_c):
            assert ids_g == ids_c and ids_g
            assert all(abs(x - y) < 1e-4 for x, y in zip(lp_g, lp_c))


def test_pin_transformers_reads_the_grouped_query_switch_at_each_call() -> None:
    import inspect

    from transformers.integrations import sdpa_attention

    from inboxrl.models.kvcache import GQA_SWITCH

    assert f'os.environ.get("{GQA_SWITCH}", "0") == "1"' in inspect.getsource(sdpa_attention.use_gqa_in_sdpa)
    assert 'sdpa_kwargs["enable_gqa"] = True' in inspect.getsource(sdpa_attention.sdpa_attention_forward)
