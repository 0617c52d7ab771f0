"""The episode state machine and the batched driver on a real store, with a SCRIPTED backend.

The scripted backend is used only for the deterministic format-error and driver cases (its name is in every test
name); real model episodes are in test_agent_smollm2.py.
"""

from __future__ import annotations

import json

import pytest

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.episode import Episode, call_key
from inboxrl.agent.prompt import LAST_TURN_NOTE
from inboxrl.agent.runner import run_episodes
from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.models.base import ChatResponse
from inboxrl.questions.schema import Question
from inboxrl.tools.base import Scope
from inboxrl.tools.inbox import InboxTools
from inboxrl.trajectory import FormatErrorKind, ToolCall, Trajectory, read_jsonl, write_jsonl

INBOX = "vince.kaminski@enron.com"
DATE = "2002-01-01"  # after all of the fixture's mail: every kaminski message is in scope


def cfg(**kw: object) -> AgentConfig:
    """The default harness, except that scripts may answer without searching (tested on its own below)."""
    return AgentConfig(require_search_before_answer=False, **kw)  # type: ignore[arg-type]


def call(name: str, **args: object) -> str:
    return json.dumps({"name": name, "arguments": args})


ANSWER_IDK = call("return_final_answer", answer="I don't know", sources=[])


def q(qid: str = "q1", question: str = "Who organises the energy conference?") -> Question:
    return Question(id=qid, question=question, answer="Somebody.", message_ids=[], inbox_address=INBOX,
                    query_date=DATE)


@pytest.fixture(scope="session")
def store(enron_store) -> str:
    """The session's real kaminski-v store (tests/conftest.py)."""
    return str(enron_store)


@pytest.fixture(scope="module")
def hit_ids(store) -> list[str]:
    """Real message ids from the store, found the way the agent would find them."""
    tools = InboxTools(store, Scope(INBOX, before=DATE))
    ids = tools.call("search_inbox", {"keywords": ["conference"]}).ids
    tools.close()
    assert len(ids) >= 2
    return ids


def run_one(store, script, config: AgentConfig | None = None, native: bool = False
            ) -> tuple[Trajectory, ScriptedBackend]:
    backend = ScriptedBackend({"q1": script}, native_tools=native)
    trajs = run_episodes([q()], backend, store, config or cfg(), batch_size=1)
    assert len(trajs) == 1
    return trajs[0], backend


def test_scripted_unparseable_gets_retry_then_answers(store):
    t, backend = run_one(store, ["Sure! The conference is on Monday.", ANSWER_IDK])
    assert t.stop_reason == "answered"
    assert [x.format_error for x in t.turns] == [FormatErrorKind.UNPARSEABLE, None]
    # The model was told what was wrong, in a user message after its own (unchanged) text.
    assert t.messages[2].role == "assistant" and t.messages[2].content == "Sure! The conference is on Monday."
    assert t.messages[3].role == "user" and "no tool call" in (t.messages[3].content or "")
    assert t.final_answer == "I don't know" and "said_dont_know" not in t.meta  # the scoring stage decides that
    assert t.cost_usd is None and t.meta["machine_time_s"] >= 0  # recorded, priced later by scoring
    assert len(backend.requests) == 2


def test_scripted_unparseable_ends_episode_in_end_mode(store):
    t, backend = run_one(store, ["no idea, sorry", ANSWER_IDK], cfg(on_format_error="end"))
    assert t.stop_reason == "format_error"
    assert len(t.turns) == 1 and t.turns[0].format_error == FormatErrorKind.UNPARSEABLE
    assert t.final_answer is None
    assert len(backend.requests) == 1


def test_scripted_unknown_tool_is_classified_and_explained(store):
    t, _ = run_one(store, [call("search_email", keywords=["budget"]), ANSWER_IDK])
    assert t.turns[0].format_error == FormatErrorKind.UNKNOWN_TOOL
    assert "search_email" in (t.turns[0].format_error_detail or "")
    err = t.messages[3]
    assert err.role == "user" and "search_inbox" in (err.content or "")  # the model learns the real names
    assert [e.turn for e in t.tool_events] == [1]  # nothing ran in turn 0; turn 1 is the answer


def test_scripted_bad_arguments_are_classified(store):
    t, _ = run_one(store, [call("search_inbox", query="budget"), ANSWER_IDK])
    assert t.turns[0].format_error == FormatErrorKind.BAD_ARGUMENTS
    tool_msg = t.messages[3]
    assert tool_msg.role == "tool" and tool_msg.name == "search_inbox" and tool_msg.tool_call_id
    assert "query" in (tool_msg.content or "")
    assert [e.turn for e in t.tool_events] == [1]


def test_scripted_repeated_call_is_refused(store):
    script = [call("search_inbox", keywords=["conference", "energy"]),
              call("search_inbox", keywords=["Energy", "conference"]),  # same search: case and order differ
              ANSWER_IDK]
    t, _ = run_one(store, script)
    assert [x.format_error for x in t.turns] == [None, FormatErrorKind.REPEATED_CALL, None]
    assert len([e for e in t.tool_events if e.name == "search_inbox"]) == 1
    refusal = t.messages[5]
    assert refusal.role == "tool" and (refusal.content or "").startswith("Refused: you already made this exact call")
    assert t.tool_events[0].result_ids[0] in refusal.content  # a concrete next step: an unread result
    assert t.stop_reason == "answered"  # a refusal is a nudge, never the end

    t2, _ = run_one(store, script, cfg(refuse_repeated_calls=False))
    assert len([e for e in t2.tool_events if e.name == "search_inbox"]) == 2
    assert all(x.format_error is None for x in t2.turns)


def test_scripted_answer_before_any_search_is_refused(store):
    """The default harness: a guess before any search is refused (a tool error, not a format error)."""
    script = [ANSWER_IDK, call("search_inbox", keywords=["conference"]), ANSWER_IDK]
    t, _ = run_one(store, script, AgentConfig())
    assert [e.name for e in t.tool_events] == ["return_final_answer", "search_inbox", "return_final_answer"]
    first = t.tool_events[0]
    assert not first.ok and first.error == "answer_before_search"
    assert all(x.format_error is None for x in t.turns)
    assert "search_inbox" in (t.messages[3].content or "") and t.stop_reason == "answered" and len(t.turns) == 3
    # The refusal carries a call to copy, built from the question's own words (never the inbox owner's).
    refusal = t.messages[3].content or ""
    assert '{"name": "search_inbox", "arguments": {"keywords": [' in refusal
    from inboxrl.agent.prompt import question_keywords

    kws = question_keywords(t.question, t.inbox_address)
    assert kws and all(k in refusal and k.lower() in t.question.lower() for k in kws)


def test_question_keywords_prefer_names_and_skip_the_owner_and_stopwords() -> None:
    from inboxrl.agent.prompt import answer_before_search_message, question_keywords

    assert question_keywords("What is the date and time of the ALP Project presentation at Enron?",
                             "vince.kaminski@enron.com") == ["ALP", "Project", "presentation"]
    assert question_keywords("What did Vince say about Martin's publication submission?",
                             "vince.kaminski@enron.com") == ["Martin", "publication", "submission"]
    assert question_keywords("what did i say?") == []
    assert answer_before_search_message("what did i say?").endswith("from the emails.")


def test_scripted_turn_after_a_problem_samples_hotter_and_refusal_names_unread_results(store, hit_ids):
    script = [call("search_inbox", keywords=["conference"]),
              call("read_email", message_id=hit_ids[0]),
              call("read_email", message_id=hit_ids[0]),  # refused: the next turn is sampled at 0.7
              ANSWER_IDK]
    t, backend = run_one(store, script)
    assert [r.temperature for r in backend.requests] == [0.0, 0.0, 0.0, 0.7]
    assert t.meta["retry_sampled_turns"] == [3]
    refusal = t.messages[7]
    assert refusal.role == "tool" and hit_ids[1] in (refusal.content or "") and hit_ids[0] not in refusal.content
    t2, backend2 = run_one(store, script, cfg(retry_temperature=0.0))
    assert all(r.temperature == 0.0 for r in backend2.requests) and "retry_sampled_turns" not in t2.meta


def test_call_key_ignores_case_order_and_empty_options():
    a = call_key("search_inbox", {"keywords": ["A", "b"], "from_addr": None})
    assert a == call_key("search_inbox", {"keywords": ["b", "a"]})
    assert a != call_key("search_inbox", {"keywords": ["a"]})
    assert call_key("read_email", {"message_id": "<X@y>"}) != call_key("read_email", {"message_id": "<Z@y>"})


def test_scripted_several_calls_in_one_turn_run_in_order_and_stop_at_answer(store, hit_ids):
    turn = "\n".join([
        call("search_inbox", keywords=["conference"]),
        call("read_email", message_id=hit_ids[0]),
        call("return_final_answer", answer="The energy desk.", sources=[hit_ids[0]]),
        call("search_inbox", keywords=["never", "run"]),
    ])
    t, backend = run_one(store, [turn])
    assert t.stop_reason == "answered" and len(t.turns) == 1
    assert [e.name for e in t.tool_events] == ["search_inbox", "read_email", "return_final_answer"]
    assert t.tool_events[0].result_ids[0] == hit_ids[0]
    assert t.tool_events[1].ok and t.tool_events[1].result_ids == [hit_ids[0]]
    assert t.final_answer == "The energy desk." and t.final_sources == [hit_ids[0]]
    assert len(t.turns[0].tool_calls) == 4
    assert backend.ended == [t.meta["episode_id"]]


def test_scripted_read_of_invented_id_is_a_tool_error_not_a_format_error(store):
    t, _ = run_one(store, [call("read_email", message_id="<123.456.JavaMail.evans@thyme>"), ANSWER_IDK])
    assert t.turns[0].format_error is None
    ev = t.tool_events[0]
    assert not ev.ok and ev.error == "not_found"


def test_scripted_out_of_turns_with_last_turn_warning(store):
    script = [call("search_inbox", keywords=[w]) for w in ("alpha", "budget", "meeting", "never")]
    t, backend = run_one(store, script, cfg(max_turns=3))
    assert t.stop_reason == "out_of_turns" and len(t.turns) == 3 and t.final_answer is None
    assert len(backend.requests) == 3
    # The request for the last turn told the model it was the last one; earlier ones did not.
    assert LAST_TURN_NOTE.strip() in backend.requests[2].messages[-1]["content"]
    assert LAST_TURN_NOTE.strip() not in backend.requests[1].messages[-1]["content"]


def test_scripted_backend_error_stops_the_episode(store):
    t, _ = run_one(store, [call("search_inbox", keywords=["budget"]),
                                 ChatResponse(error="connection refused: http://127.0.0.1:9/v1")])
    assert t.stop_reason == "backend_error"
    assert "connection refused" in (t.backend_error or "")
    assert len(t.turns) == 1  # the failed call is not a model turn


def test_scripted_native_tool_calls_are_answered_by_id(store):
    native = ChatResponse(text="", tool_calls=[ToolCall(id="abc", name="search_inbox",
                                                        arguments={"keywords": ["conference"]})])
    final = ChatResponse(tool_calls=[ToolCall(id="def", name="return_final_answer",
                                              arguments={"answer": "Monday", "sources": []})])
    t, backend = run_one(store, [native, final], native=True)
    assert backend.requests[0].tools and {s["function"]["name"] for s in backend.requests[0].tools} == {
        "search_inbox", "read_email", "return_final_answer"}
    assert '"name": "search_inbox"' not in backend.requests[0].messages[0]["content"]  # schemas go in `tools`
    assert "from_addr" in json.dumps(backend.requests[0].tools)  # native models see the optional filters
    msgs = [m.to_openai() for m in t.messages]
    assert msgs[2]["tool_calls"][0]["id"] == "abc" and msgs[3]["tool_call_id"] == "abc"
    assert t.stop_reason == "answered" and t.final_answer == "Monday"


def test_scripted_force_search_first_asks_only_the_first_turn(store):
    """JSON mode gets the call's opening as an assistant prefix, native mode gets tool_choice; later turns neither.
    The prefix plus what a model writes after it is a search call the parser reads."""
    from inboxrl.agent.episode import parse_text_calls

    t, backend = run_one(store, [call("search_inbox", keywords=["conference"]), ANSWER_IDK],
                         cfg(force_search_first=True))
    first, second = backend.requests
    assert first.assistant_prefix == '{"name": "search_inbox", "arguments": {"keywords": ['
    assert first.tool_choice is None and second.assistant_prefix is None and second.tool_choice is None
    assert t.meta["forced_calls"] == {"0": "search_inbox"}
    calls, issues = parse_text_calls(first.assistant_prefix + '"Sherri", "Portland"]}}', ["search_inbox"])
    assert [(c.name, c.arguments) for c in calls] == [("search_inbox", {"keywords": ["Sherri", "Portland"]})]
    assert not issues
    native = ChatResponse(tool_calls=[ToolCall(id="a", name="search_inbox", arguments={"keywords": ["gas"]})])
    _, backend = run_one(store, [native, ANSWER_IDK], cfg(force_search_first=True), native=True)
    assert backend.requests[0].tool_choice == "search_inbox" and backend.requests[0].assistant_prefix is None
    _, backend = run_one(store, [ANSWER_IDK])
    assert backend.requests[0].assistant_prefix is None and backend.requests[0].tool_choice is None


def test_scripted_guided_harness_forces_read_after_hits_and_answer_after_read(store, hit_ids):
    """search (forced) -> read (forced after a search with hits; the model still picks the id) -> answer (forced
    after a successful read). A search with no hits and a failed read force nothing."""
    from inboxrl.agent.episode import parse_text_calls

    guided = cfg(force_search_first=True, force_read_after_search=True, force_answer_after_read=True, max_turns=6)
    script = [call("search_inbox", keywords=["zzzqqxnotaword"]),  # no hits: the next turn is free
              call("search_inbox", keywords=["conference"]),
              call("read_email", message_id="<no-such-id@nowhere>"),  # a failed read: the next turn is free
              call("read_email", message_id=hit_ids[1]),
              call("return_final_answer", answer="Monday", sources=[hit_ids[1]])]
    t, backend = run_one(store, script, guided)
    prefixes = [r.assistant_prefix for r in backend.requests]
    assert prefixes == ['{"name": "search_inbox", "arguments": {"keywords": [', None,
                        '{"name": "read_email", "arguments": {"message_id": "', None,
                        '{"name": "return_final_answer", "arguments": {"answer": "']
    assert t.meta["forced_calls"] == {"0": "search_inbox", "2": "read_email", "4": "return_final_answer"}
    assert t.stop_reason == "answered" and t.final_answer == "Monday"
    # What a model writes after each prefix completes a call of that tool.
    calls, issues = parse_text_calls(prefixes[2] + hit_ids[0].strip("<>") + '"}}', ["read_email"])
    assert [c.name for c in calls] == ["read_email"] and not issues
    calls, issues = parse_text_calls(prefixes[4] + 'Monday", "sources": []}}', ["return_final_answer"])
    assert calls[0].arguments == {"answer": "Monday", "sources": []} and not issues
    # Native tools get the same forcing as tool_choice; the default harness forces nothing after the first turn.
    native = [ChatResponse(tool_calls=[ToolCall(id="a", name="search_inbox", arguments={"keywords": ["conference"]})]),
              ChatResponse(tool_calls=[ToolCall(id="b", name="read_email", arguments={"message_id": hit_ids[0]})]),
              ChatResponse(tool_calls=[ToolCall(id="c", name="return_final_answer",
                                                arguments={"answer": "x", "sources": []})])]
    _, backend = run_one(store, native, guided, native=True)
    assert [r.tool_choice for r in backend.requests] == ["search_inbox", "read_email", "return_final_answer"]
    _, backend = run_one(store, script[1:], cfg())
    assert all(r.assistant_prefix is None and r.tool_choice is None for r in backend.requests)


def test_json_mode_prompt_describes_tools_and_date(store):
    tools = InboxTools(store, Scope(INBOX, before=DATE))
    ep = Episode(q(), tools, cfg(max_turns=7), "m")
    req = ep.request()
    system = req.messages[0]["content"]
    assert req.tools is None
    assert INBOX in system and DATE in system and "7 turns" in system
    assert '{"name": "search_inbox", "arguments": {"keywords": ["<keyword>"]}}' in system
    assert '"return_final_answer", "arguments": {"answer": "<answer>", "sources": ["<message_id>"]}' in system
    assert "from_addr" not in system  # optional arguments are hidden from models without native tools
    assert req.messages[1] == {"role": "user", "content": q().question}
    tools.close()


def test_scripted_runner_refills_slots_and_keeps_order(store):
    # Scripts of different lengths: slots free up at different rounds and must be refilled at once.
    scripts = {f"r{i}": [call("search_inbox", keywords=[f"w{i}", f"x{j}"]) for j in range(i)] + [ANSWER_IDK]
               for i in range(5)}
    backend = ScriptedBackend(scripts)
    questions = [q(f"r{i}") for i in range(5)]
    done: list[str] = []
    trajs = run_episodes(questions, backend, store, cfg(), batch_size=2,
                         on_done=lambda t: done.append(t.question_id))
    assert [t.question_id for t in trajs] == [f"r{i}" for i in range(5)]
    assert [len(t.turns) for t in trajs] == [1, 2, 3, 4, 5]
    # Full rounds while the queue lasts (r4 enters in round 5 as soon as r2 ends), then only r4's own tail.
    assert backend.batch_sizes == [2, 2, 2, 2, 2, 2, 1, 1, 1]
    assert sorted(done) == sorted(t.question_id for t in trajs) and done[0] == "r0"
    assert len({t.meta["episode_id"] for t in trajs}) == 5
    assert sorted(backend.ended) == sorted(t.meta["episode_id"] for t in trajs)


def test_scripted_trajectory_is_complete_and_round_trips(store, hit_ids, tmp_path):
    t, _ = run_one(store, [call("search_inbox", keywords=["conference"]),
                                 call("read_email", message_id=hit_ids[1]),
                                 call("return_final_answer", answer="In Houston.", sources=[hit_ids[1]])])
    assert t.model == "scripted" and t.stop_reason == "answered"
    assert t.prompt_tokens > 0 and t.completion_tokens > 0 and t.wall_time_s > 0
    assert [m.role for m in t.messages] == ["system", "user", "assistant", "tool", "assistant", "tool",
                                            "assistant", "tool"]
    assert all(x.raw_output and x.latency_s > 0 for x in t.turns)
    assert t.meta["max_turns"] == 10 and t.meta["tool_mode"] == "json"
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [t])
    back = list(read_jsonl(path))
    assert back == [t]
