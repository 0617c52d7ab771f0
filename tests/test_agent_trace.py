"""The live trace `inboxrl ask` prints, from a SCRIPTED episode on the real store (deterministic content to check)."""

from __future__ import annotations

import json

from rich.console import Console

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.runner import run_episodes
from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.agent.trace import TraceRenderer
from inboxrl.questions.schema import Question
from inboxrl.tools.base import Scope
from inboxrl.tools.inbox import InboxTools

INBOX = "vince.kaminski@enron.com"


def call(name: str, **args: object) -> str:
    return json.dumps({"name": name, "arguments": args})


def test_scripted_trace_shows_searches_reads_errors_and_answer(enron_store):
    tools = InboxTools(enron_store, Scope(INBOX, before="2002-01-01"))
    hits = tools.call("search_inbox", {"keywords": ["conference"]}).data
    tools.close()
    first = hits[0]
    script = [call("search_inbox", keywords=["conference"]),
              "I think it is in May.",
              call("read_email", message_id=first["message_id"]),
              call("return_final_answer", answer="In May.",
                   sources=[first["message_id"], "<made.up@id>", first["message_id"].strip("<>")])]
    console = Console(record=True, width=160)
    r = TraceRenderer(console, max_turns=10)
    r.header("When is the conference?", INBOX, "2002-01-01", "scripted")
    q = Question(id="t1", question="When is the conference?", answer="", inbox_address=INBOX,
                 query_date="2002-01-01")
    [t] = run_episodes([q], ScriptedBackend({"t1": script}), enron_store, AgentConfig(), on_event=r)
    r.summary(t)
    text = console.export_text()
    assert "When is the conference?" in text and "today 2002-01-01" in text
    assert 'search "conference"' in text and f"→ {len(hits)} hits" in text
    assert first["subject"][:40] in text  # the hits are listed by date, sender and subject
    assert "format error (unparseable)" in text
    assert "read" in text and "answer" in text and "In May." in text
    assert f"source {first['message_id']}" in text
    assert "<made.up@id>  (not an email the agent saw)" in text
    # the same id without its angle brackets is the email the agent saw, not an unknown one
    bare = first["message_id"].strip("<>")
    assert f"source {bare}  {first['subject'][:20]}" in text and text.count("not an email the agent saw") == 1
    assert "answered · 4 turns" in text and "1 format error" in text


def test_scripted_trace_labels_dont_know_with_the_callers_rule(enron_store):
    """The agent records the answer; the caller (`inboxrl ask`) says how to tell an "I don't know"."""
    from inboxrl.agent.idk import is_dont_know

    q = Question(id="t2", question="Who won?", answer="", inbox_address=INBOX, query_date="2002-01-01")
    script = [call("search_inbox", keywords=["conference"]),
              call("return_final_answer", answer="I don't know", sources=[])]
    console = Console(record=True, width=160)
    r = TraceRenderer(console, max_turns=10, dont_know=is_dont_know)
    [t] = run_episodes([q], ScriptedBackend({"t2": script}), enron_store, AgentConfig(), on_event=r)
    r.summary(t)
    text = console.export_text()
    assert text.count("I don't know") == 2  # the label and the answer itself
    assert "no sources given" not in text  # an honest "I don't know" needs no sources
    assert "cost unknown" in text  # not scored: the trace says so rather than showing $0
