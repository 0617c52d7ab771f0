"""The agent against endpoints: one that ignores `tools` (scripted backend, named as such: the deterministic edge
case of a server that never returns tool calls), and episodes run as independent tasks through a real HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.runner import run_episodes
from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.models.base import ChatResponse
from inboxrl.questions.schema import Question

INBOX = "vince.kaminski@enron.com"


def _q(i: int = 0) -> Question:
    return Question(id=f"q{i}", question="When is the Durasoft COM course?", answer="May",
                    inbox_address=INBOX, query_date="2001-05-13")


def test_plain_text_i_dont_know_is_that_answer_not_ten_format_errors(enron_store: Path) -> None:
    backend = ScriptedBackend(default=[ChatResponse(text="I don't know.", finish_reason="stop")],
                              name="scripted-tools-ignored", native_tools=True)
    (t,) = run_episodes([_q()], backend, enron_store, AgentConfig(max_turns=10))
    assert t.stop_reason == "answered" and t.final_answer == "I don't know." and len(t.turns) == 1
    assert t.meta["plain_text_answer"] is True and not any(x.format_error for x in t.turns)


def test_an_endpoint_that_returns_no_tool_calls_falls_back_to_json_tools(enron_store: Path) -> None:
    search = '{"name": "search_inbox", "arguments": {"keywords": ["Durasoft"]}}'
    answer = '{"name": "return_final_answer", "arguments": {"answer": "In May.", "sources": []}}'
    backend = ScriptedBackend(default=[ChatResponse(text="Let me look that up.", finish_reason="stop"), search,
                                       answer], name="scripted-tools-ignored", native_tools=True)
    (t,) = run_episodes([_q()], backend, enron_store, AgentConfig(max_turns=5))
    first, second = backend.requests[0], backend.requests[1]
    assert first.tools and second.tools is None  # tools sent, then described in the prompt instead
    assert "return_final_answer" in second.messages[0]["content"] and "JSON" in second.messages[0]["content"]
    assert t.meta["tool_mode"] == "json" and "tool_mode: json" in t.meta["tool_mode_fallback"]
    assert "tool_mode: json" in (t.turns[0].format_error_detail or "")
    assert t.stop_reason == "answered" and t.final_answer == "In May." and t.tool_events[0].name == "search_inbox"


def test_endpoint_episodes_run_as_independent_tasks_each_delivered_as_it_ends(enron_store: Path,
                                                                              tmp_path: Path) -> None:
    from inboxrl.models.registry import load_backend
    from serve_helpers import running_server

    slow_first = [lambda r: ChatResponse(text="I don't know.", finish_reason="stop")]
    scripted = ScriptedBackend(default=slow_first, name="scripted")
    with running_server(enron_store, {"scripted": scripted}, tmp_path / "out") as (url, _):
        client = load_backend("scripted", base_url=url + "/v1", concurrency=3)
        done: list[str] = []
        trajs = run_episodes([_q(i) for i in range(5)], client, enron_store, AgentConfig(max_turns=3),
                             on_done=lambda t: done.append(t.question_id), batch_size=3)
    assert [t.question_id for t in trajs] == [f"q{i}" for i in range(5)] and sorted(done) == sorted(
        t.question_id for t in trajs)
    assert all(t.stop_reason == "answered" and t.final_answer == "I don't know." for t in trajs)
    assert json.dumps(trajs[0].meta)  # records are plain data
