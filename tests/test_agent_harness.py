"""Harness presets: named sets of the guided-harness keys, the model spec's default, and where they are recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inboxrl.agent.config import HARNESS_PRESETS, AgentConfig, load_agent_config
from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.models.spec import default_harness
from inboxrl.questions.schema import Question

REPO = Path(__file__).resolve().parent.parent
SEARCH = '{"name": "search_inbox", "arguments": {"keywords": ["Durasoft"]}}'
ANSWER = '{"name": "return_final_answer", "arguments": {"answer": "I don\'t know", "sources": []}}'


@pytest.mark.parametrize(("spec", "harness"), [
    ("local/qwen2.5-coder-0.5b", "guided"), ("local/smollm2-135m", "guided"), ("local/qwen", "guided"),
    ("local/qwen2.5-coder-0.5b+runs/x/final", "guided"), ("gpt-4o-mini", "free"), ("local/Owner/some-model", "free"),
    ("not a spec", "free"),
])
def test_model_spec_declares_its_default_harness(spec: str, harness: str) -> None:
    assert default_harness(spec) == harness
    cfg = AgentConfig().with_harness_default(spec)
    assert cfg.harness == harness and cfg.harness_name() == harness
    assert all(getattr(cfg, k) == v for k, v in HARNESS_PRESETS[harness].items())


def test_a_chosen_harness_wins_over_the_model_default() -> None:
    assert AgentConfig().with_harness("free").with_harness_default("local/qwen").harness_name() == "free"
    assert AgentConfig().with_harness("guided").with_harness_default("gpt-4o").harness_name() == "guided"
    with pytest.raises(ValueError, match="unknown harness 'loose'"):
        AgentConfig().with_harness("loose")


def test_config_files_name_their_harness() -> None:
    demo = load_agent_config(REPO / "configs" / "cpu-demo.yaml")
    assert demo.harness == "guided"  # its three force_* keys are the guided preset
    assert demo.with_harness_default("gpt-4o-mini").harness_name() == "guided"  # the file chose: no default
    preset = AgentConfig.model_validate({"harness": "guided", "max_turns": 5})
    assert preset.force_search_first and preset.force_read_after_search and preset.force_answer_after_read
    mixed = AgentConfig.model_validate({"harness": "guided", "force_answer_after_read": False})
    assert mixed.harness_name() == "custom"
    one_key = load_agent_config(None, ["force_search_first=true"])
    assert one_key.harness == "custom"
    assert one_key.with_harness_default("local/qwen").harness_name() == "custom"


def test_every_trajectory_and_metrics_json_record_the_harness(enron_store: Path, tmp_path: Path) -> None:
    from inboxrl.evaluation.run import evaluate
    from inboxrl.judge.registry import load_judge
    from inboxrl.trajectory import read_jsonl

    qs = [Question(id="h1", question="When is the Durasoft course?", answer="May", inbox_address=
                   "vince.kaminski@enron.com", query_date="2001-05-13")]
    backends = {"scripted-free": ScriptedBackend(default=[SEARCH, ANSWER], name="scripted-free"),
                "scripted-guided": ScriptedBackend(default=[SEARCH, ANSWER], name="scripted-guided")}
    res = evaluate(qs, ["scripted-free"], enron_store, load_judge("lexical"), AgentConfig(), tmp_path / "a",
                   backend_factory=backends.__getitem__)
    assert res.models["scripted-free"]["harness"] == "free"
    res = evaluate(qs, ["scripted-guided"], enron_store, load_judge("lexical"), AgentConfig().with_harness("guided"),
                   tmp_path / "b", backend_factory=backends.__getitem__)
    doc = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert doc["models"]["scripted-guided"]["harness"] == "guided"
    (t,) = list(read_jsonl(tmp_path / "b" / "trajectories.jsonl"))
    assert t.meta["harness"] == "guided"
    # the guided harness forced the first turn's search: the request carried the call's opening
    first = backends["scripted-guided"].requests[0]
    assert first.assistant_prefix and first.assistant_prefix.startswith('{"name": "search_inbox"')
    assert backends["scripted-free"].requests[0].assistant_prefix is None
