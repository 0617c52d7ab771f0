"""The supervised warm start: golden demonstrations played through the real episode code on the real store, turned
into training data by the GRPO splice and mask, and a LoRA adapter that learns them before GRPO starts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from inboxrl.agent.config import AgentConfig
from inboxrl.models.base import ChatRequest
from inboxrl.scoring.reward import RewardConfig, tier
from inboxrl.tools.base import normalise_id
from train_helpers import grounded, tiny_model, train_config

GUIDED = dict(max_turns=5, max_tokens_per_turn=128, force_search_first=True, force_read_after_search=True,
              force_answer_after_read=True, keep_token_ids=True)
PREFIXES = ['{"name": "search_inbox", "arguments": {"keywords": [',
            '{"name": "read_email", "arguments": {"message_id": "',
            '{"name": "return_final_answer", "arguments": {"answer": "']


def _demos(db: Path, questions_path: Path, n: int, tok_model: tuple[Any, Any], fraction: float = 0.5,
           negatives: str = "other_search") -> Any:
    from inboxrl.judge.lexical import LexicalJudge
    from inboxrl.models.local import LocalBackend
    from inboxrl.training.demonstrations import build_demonstrations

    model, tok = tok_model
    return build_demonstrations(grounded(db, questions_path, n), str(db), AgentConfig(**GUIDED), LexicalJudge(),
                                RewardConfig(), LocalBackend.from_model(model, tok, name="demo"),
                                dont_know_fraction=fraction, seed=0, negatives=negatives)


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    return tiny_model()  # a random 2-layer Qwen2 with the bundled Qwen tokenizer: demonstrations never sample


def test_demonstrations_are_real_episodes_whose_replies_are_the_only_trained_ids(
        enron_store: Path, questions_path: Path, tiny: tuple[Any, Any]) -> None:
    from inboxrl.training.rollout import trajectory_sample

    trajs, report = _demos(enron_store, questions_path, 8, tiny)
    _, tok = tiny
    assert report.kept["correct"] >= 4 and report.kept["dont_know"] >= 1, report
    assert report.kept["correct"] + sum(v for k, v in report.skipped.items() if k.startswith("correct")) \
        + report.skipped.get("source_not_found", 0) == 8  # every question is kept or counted as a skip
    for t in trajs:
        kind = t.meta["demonstration"]
        assert tier(t.rubric) == ("correct" if kind == "correct" else "no_answer")
        # The real tools ran: the search found mail, the read opened it, and the read mail is (not) a source.
        names = [e.name for e in t.tool_events]
        assert names == ["search_inbox", "read_email", "return_final_answer"] and all(e.ok for e in t.tool_events)
        read_id = normalise_id(t.tool_events[1].arguments["message_id"])
        sources = {normalise_id(m) for m in t.golden_message_ids}
        assert t.rubric.read_source == (kind == "correct")
        if kind == "dont_know":
            assert t.tool_events[2].arguments["answer"] == "I don't know" and t.rubric.said_dont_know
        assert (read_id in sources) == (kind == "correct")
        # Token by token: the mask-1 ids are each turn's reply after the harness's forced opening, then <|im_end|>;
        # the openings themselves are environment ids (mask 0), like in a rollout.
        s = trajectory_sample(t, 100_000)
        segments, cur = [], []
        for c, m in zip(s.completion_ids, s.env_mask):
            if m:
                cur.append(c)
            elif cur:
                segments.append(cur)
                cur = []
        segments += [cur] if cur else []
        assert len(segments) == 3
        for k, (seg, prefix) in enumerate(zip(segments, PREFIXES)):
            reply = t.turns[k].raw_output
            assert reply.startswith(prefix)
            assert seg == tok(reply[len(prefix):], add_special_tokens=False)["input_ids"] + [
                tok.convert_tokens_to_ids("<|im_end|>")]
            inputs = t.turns[k].input_ids
            assert inputs[-len(tok(prefix, add_special_tokens=False)["input_ids"]):] == \
                tok(prefix, add_special_tokens=False)["input_ids"]
        assert all(lp == 0.0 for lp in s.logprobs)  # nothing was sampled


def test_same_search_negatives_differ_from_the_correct_demonstration_only_in_the_mail_read(
        enron_store: Path, questions_path: Path, tiny: tuple[Any, Any]) -> None:
    from inboxrl.agent.runner import make_tools, open_store
    from inboxrl.training.demonstrations import DemoReport, plan_question

    def arg(reply: str, key: str) -> Any:
        return json.loads(reply)["arguments"][key]

    conn = open_store(str(enron_store))
    same, other = 0, 0
    try:
        for q in grounded(enron_store, questions_path, 8):
            tools = make_tools(conn, q, AgentConfig(**GUIDED))
            sources = {normalise_id(m) for m in q.message_ids}
            ok, neg = plan_question(q, tools, DemoReport(), "same_search")
            ok_other, neg_other = plan_question(q, tools, DemoReport(), "other_search")
            if ok is None or neg is None or ok_other is None:
                continue
            read = normalise_id(arg(neg.replies[1], "message_id"))
            assert read not in sources and neg.kind == "dont_know"
            assert normalise_id(arg(ok.replies[1], "message_id")) in sources
            assert json.loads(neg.replies[2])["arguments"] == {"answer": "I don't know", "sources": []}
            if neg.partner is not None:
                same += 1  # its correct twin: one search for both, the source and the mail read instead among its hits
                twin = neg.partner
                assert twin.kind == "correct" and twin.replies[0] == neg.replies[0]
                assert arg(twin.replies[2], "answer") == q.answer
                hits = [normalise_id(str(h["message_id"]))
                        for h in tools.search_inbox(keywords=arg(neg.replies[0], "keywords"))]
                assert read in hits and normalise_id(arg(twin.replies[1], "message_id")) in set(hits) & sources
            assert ok.replies == ok_other.replies  # the question's own correct plan keeps its most specific search
            other += neg_other is not None and neg_other.replies[0] != ok_other.replies[0]
    finally:
        conn.close()
    # The two kinds really differ: "other_search" negatives search with other words than their positive.
    assert same >= 4 and other >= 1, (same, other)

    # Played as episodes, a drawn negative's question is demonstrated correctly from that same search (unless it
    # had no search with both a source and other mail), which "other_search" almost never does.
    def twins(negatives: str) -> int:
        trajs, report = _demos(enron_store, questions_path, 8, tiny, fraction=0.5, negatives=negatives)
        assert (report.twins > 0) == (negatives == "same_search"), report  # the run's record says which it got
        searched = {(t.question_id.split("#")[0], t.meta["demonstration"]): t.tool_events[0].arguments
                    for t in trajs}
        return sum(searched[(q, "correct")] == args for (q, kind), args in searched.items()
                   if kind == "dont_know" and (q, "correct") in searched)

    assert twins("same_search") >= max(2, twins("other_search") + 1)


def test_demonstration_longer_than_the_turn_budget_is_cut_like_a_sample(tiny: tuple[Any, Any]) -> None:
    from inboxrl.models.local import LocalBackend

    model, tok = tiny
    b = LocalBackend.from_model(model, tok, name="demo")
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    text = '"budget", "meeting"]}}'
    ids = tok(text, add_special_tokens=False)["input_ids"]
    short, cut = b.generate([ChatRequest("a-1", msgs, max_tokens=64, demonstration=text),
                             ChatRequest("b-1", msgs, max_tokens=3, demonstration=text)])
    assert short.finish_reason == "stop" and short.text == text
    assert short.output_ids == ids + [b.eot_id] and short.output_logprobs == [0.0] * (len(ids) + 1)
    assert cut.finish_reason == "length" and cut.output_ids == ids[:3]


@pytest.mark.slow
def test_warm_start_lowers_the_loss_on_the_model_written_ids_only(enron_store: Path, questions_path: Path,
                                                                  tiny: tuple[Any, Any]) -> None:
    from peft import LoraConfig, get_peft_model

    from inboxrl.training.rollout import trajectory_sample
    from inboxrl.training.warm_start import target_positions, warm_start

    trajs, _ = _demos(enron_store, questions_path, 4, tiny, fraction=0.0)
    samples = [trajectory_sample(t, 100_000) for t in trajs][:2]
    for s in samples:  # every target is a mask-1 id, predicted from the position before it
        pos, tgt = target_positions(s)
        full = s.prompt_ids + s.completion_ids
        assert tgt == [c for c, m in zip(s.completion_ids, s.env_mask) if m]
        assert [full[p + 1] for p in pos] == tgt
    model, _ = tiny_model()
    policy = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                              task_type="CAUSAL_LM"))
    res = warm_start(policy, samples, epochs=6, learning_rate=1e-2, accumulation=2, seed=0)
    assert res.optimizer_steps == 6 and res.examples == 12 and res.epochs_done == 6
    # A random 2-layer model starts near ln(vocab) = 11.9; six small steps must still bring it down, step by step.
    assert res.losses[-1] < res.losses[0] - 0.05 and res.losses == sorted(res.losses, reverse=True), res.losses


@pytest.mark.slow
def test_train_with_warm_start_then_grpo_and_no_second_warm_start_on_resume(
        tmp_path: Path, enron_store: Path, questions_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from inboxrl.training import runlog
    from inboxrl.training.trainer import train
    from inboxrl.training.warm_start import WARM_START_DIR, prepare_policy

    cfg = train_config(tmp_path, enron_store, questions_path, max_steps=1, max_turns=3, max_tokens_per_turn=128,
                       agent=dict(force_search_first=True, force_read_after_search=True,
                                  force_answer_after_read=True),
                       data={"train_limit": 6}, warm_start={"enabled": True, "epochs": 0.5, "accumulation": 2})
    events: list[tuple[str, dict]] = []
    result = train(cfg, on_event=lambda k, d: events.append((k, d)))
    assert result.steps == 1
    kinds = [r["kind"] for r in runlog.read(result.run_dir)]
    assert kinds[0] == "warm_start" and "train" in kinds
    ws = next(iter(runlog.read(result.run_dir, "warm_start")))
    assert ws["demonstrations"] >= 2 and ws["optimizer_steps"] >= 1 and ws["examples"] >= 1
    assert [k for k, _ in events].count("warm_start_step") == ws["optimizer_steps"]
    saved = result.run_dir / WARM_START_DIR
    lines = (saved / "demonstrations.jsonl").read_text().splitlines()
    assert len(lines) == ws["demonstrations"]
    assert json.loads(lines[0])["meta"]["demonstration"] in ("correct", "dont_know")
    # The warm start moved the adapter (LoRA B starts at zero), and GRPO started from it.
    weights = load_file(str(saved / "adapter_model.safetensors"))
    assert any(float(v.abs().sum()) > 0 for k, v in weights.items() if "lora_B" in k)

    # A resume that finds no GRPO checkpoint reuses the saved adapter instead of training it again.
    model, tok = tiny_model()
    seen: list[tuple[str, dict]] = []
    policy, peft_cfg = prepare_policy(cfg, model, tok, [], None, None, result.run_dir, resuming_checkpoint=False,
                                      emit=lambda k, d: seen.append((k, d)))
    assert peft_cfg is None and [k for k, _ in seen] == ["warning"] and "reusing" in seen[0][1]["message"]
    b_name = next(k for k in weights if "lora_B" in k)
    loaded = dict(policy.named_parameters())
    match = [n for n in loaded if n.endswith(b_name.replace("base_model.model.", "").replace(".weight", ".default.weight"))]
    assert match and torch.equal(loaded[match[0]].detach(), weights[b_name])
    assert sum(1 for r in runlog.read(result.run_dir, "warm_start")) == 1


@pytest.mark.slow
def test_warm_start_killed_midway_resumes_from_its_snapshot_with_no_lost_or_repeated_step(
        tmp_path: Path, enron_store: Path, questions_path: Path, tiny: tuple[Any, Any]) -> None:
    import torch
    from peft import LoraConfig, get_peft_model

    from inboxrl.training.rollout import trajectory_sample
    from inboxrl.training.warm_start import warm_start

    trajs, _ = _demos(enron_store, questions_path, 4, tiny, fraction=0.5)
    samples = [trajectory_sample(t, 100_000) for t in trajs][:3]

    def policy() -> Any:
        model, _ = tiny_model()
        torch.manual_seed(0)  # the same LoRA initialisation for every run below
        return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                task_type="CAUSAL_LM"))

    def lora(p: Any) -> dict[str, Any]:
        return {n: t.detach().clone() for n, t in p.named_parameters() if t.requires_grad}

    # The linear decay too: its rate is a function of the step, so the resumed steps 5 and 6 get theirs.
    kw: dict[str, Any] = dict(epochs=4, learning_rate=1e-2, accumulation=2, seed=0, lr_scheduler="linear")
    whole = policy()
    ref = warm_start(whole, samples, **kw)
    assert ref.optimizer_steps == 6

    class Killed(Exception):
        pass

    def kill_after_step_5(step: int, total: int, loss: float) -> None:
        if step == 5:
            raise Killed

    snap = tmp_path / "partial.pt"
    with pytest.raises(Killed):
        warm_start(policy(), samples, **kw, snapshot=snap, save_every=2, on_step=kill_after_step_5)
    assert snap.is_file()  # the last snapshot is the one after step 4; step 5 was lost with the kill

    seen: list[int] = []
    heard: list[int | None] = []
    resumed_policy = policy()
    res = warm_start(resumed_policy, samples, **kw, snapshot=snap, save_every=2,
                     on_step=lambda step, total, loss: seen.append(step), on_resume=heard.append)
    assert res.resumed_at == 4 and seen == [5, 6]  # no step lost, none repeated
    assert heard == [4]  # the console says where it resumed
    assert res.optimizer_steps == 6 and res.examples == ref.examples
    assert res.losses == pytest.approx(ref.losses, rel=1e-4)  # the same demonstrations in the same order
    got, want = lora(resumed_policy), lora(whole)
    assert all(torch.allclose(got[n], want[n], atol=1e-5) for n in want)

    # A snapshot of another set of demonstrations is not applied: the warm start begins again.
    fresh = warm_start(policy(), samples[:2], **kw, snapshot=snap, on_resume=heard.append)
    assert fresh.resumed_at == 0 and fresh.optimizer_steps == 4
    assert heard == [4, None]  # ... and that it began again, not that it resumed


def test_warm_start_learning_rate_decays_linearly_to_its_last_step() -> None:
    from inboxrl.training.warm_start import step_learning_rate

    assert [step_learning_rate(2e-4, k, 4, "linear") for k in range(4)] == pytest.approx([2e-4, 1.5e-4, 1e-4, 5e-5])
    assert {step_learning_rate(2e-4, k, 4, "constant") for k in range(4)} == {2e-4}
    with pytest.raises(ValueError, match="cosine"):
        step_learning_rate(2e-4, 0, 4, "cosine")


def test_warm_start_checkpointing_follows_its_own_setting_else_the_runs() -> None:
    from inboxrl.training.config import TrainConfig, TrainConfigError
    from inboxrl.training.warm_start import warm_start_checkpointing

    demo = TrainConfig.load(Path(__file__).parents[1] / "configs" / "cpu-demo.yaml")
    assert demo.warm_start.gradient_checkpointing is None and warm_start_checkpointing(demo) is True  # the run's
    own_off = demo.model_copy(update={"warm_start": demo.warm_start.model_copy(
        update={"gradient_checkpointing": False})})
    assert warm_start_checkpointing(own_off) is False  # its own setting wins
    on = demo
    off = on.model_copy(update={"gradient_checkpointing": False})
    assert warm_start_checkpointing(off) is False
    with pytest.raises((TrainConfigError, ValueError)):
        TrainConfig.load(Path(__file__).parents[1] / "configs" / "cpu-demo.yaml",
                         {"warm_start.gradient_checkpoint": False})  # a typo is an error, not ignored
