"""One episode as steps a reader follows: each turn's raw output, the calls it became (or its format error), what
each call returned, and the ending. Built from the trajectory alone, for the web page and for `inboxrl show`.

The hits and emails the agent saw are in the tool messages (the JSON the tools returned); the trajectory's tool
events say which call succeeded. A tool message that is not JSON (a harness error text) is shown as text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from inboxrl.agent.events import Event
from inboxrl.agent.idk import is_dont_know
from inboxrl.tools.base import FINAL_TOOL, READ_TOOL, SEARCH_TOOL
from inboxrl.trajectory import ToolEvent, Trajectory


@dataclass
class CallView:
    name: str
    arguments: dict[str, Any]
    ok: bool = True
    error: str | None = None
    content: str = ""  # the tool message the model saw
    keywords: list[str] = field(default_factory=list)
    hits: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None
    email: dict[str, Any] | None = None
    answer: str | None = None
    sources: list[str] = field(default_factory=list)


@dataclass
class StepView:
    turn: int
    raw_output: str
    latency_s: float
    completion_tokens: int
    format_error: str | None = None
    format_error_detail: str | None = None
    calls: list[CallView] = field(default_factory=list)


def _json_prefix(text: str | None) -> Any:
    """The JSON a tool returned, even when the harness appended a note after it; None when there is none."""
    if not text:
        return None
    try:
        return json.JSONDecoder().raw_decode(text.lstrip())[0]
    except ValueError:
        return None


def _keywords(args: dict[str, Any]) -> list[str]:
    kw = args.get("keywords")
    if isinstance(kw, str):
        return [kw]
    return [str(k) for k in kw] if isinstance(kw, list) else []


def _event_for(events: list[ToolEvent], used: set[int], turn: int, name: str) -> ToolEvent | None:
    for i, e in enumerate(events):
        if i not in used and e.turn == turn and e.name == name:
            used.add(i)
            return e
    return None


def steps(t: Trajectory) -> list[StepView]:
    """Every turn of the episode, in order, with its calls and what they returned."""
    replies = {m.tool_call_id: m.content or "" for m in t.messages if m.role == "tool" and m.tool_call_id}
    used: set[int] = set()
    out: list[StepView] = []
    for turn in t.turns:
        s = StepView(turn=turn.index, raw_output=turn.raw_output, latency_s=turn.latency_s,
                     completion_tokens=turn.completion_tokens,
                     format_error=turn.format_error.value if turn.format_error is not None else None,
                     format_error_detail=turn.format_error_detail)
        for call in turn.tool_calls:
            ev = _event_for(t.tool_events, used, turn.index, call.name)
            c = CallView(name=call.name, arguments=dict(call.arguments), content=replies.get(call.id, ""))
            if ev is None:  # refused before it ran (unknown tool, bad arguments, a repeated call)
                c.ok = False
                c.error = "not run"
            else:
                c.ok, c.error = ev.ok, ev.error
            data = _json_prefix(c.content)
            if call.name == SEARCH_TOOL:
                c.keywords = _keywords(c.arguments)
                if isinstance(data, dict) and isinstance(data.get("results"), list):
                    c.hits = [h for h in data["results"] if isinstance(h, dict)]
                    c.note = str(data["note"]) if data.get("note") else None
            elif call.name == READ_TOOL and c.ok and isinstance(data, dict) and "message_id" in data:
                c.email = data
            elif call.name == FINAL_TOOL:
                c.answer = str(c.arguments.get("answer", "")) if c.arguments.get("answer") is not None else None
                src = c.arguments.get("sources")
                c.sources = [str(x) for x in src] if isinstance(src, list) else []
            s.calls.append(c)
        out.append(s)
    return out


def events(t: Trajectory) -> list[Event]:
    """The episode replayed as the live events `inboxrl ask` prints, so the terminal trace is the same renderer."""
    out: list[Event] = []

    def ev(kind: str, turn: int, **data: Any) -> None:
        out.append(Event(kind=kind, episode_id=t.question_id, question_id=t.question_id, turn=turn,  # type: ignore[arg-type]
                         data=data))

    for s in steps(t):
        ev("model", s.turn, text=s.raw_output, latency_s=s.latency_s, completion_tokens=s.completion_tokens)
        if s.format_error:
            ev("format_error", s.turn, error_kind=s.format_error, detail=s.format_error_detail)
        for c in s.calls:
            if c.error == "not run":
                continue
            if not c.ok:
                ev("tool_error", s.turn, name=c.name, arguments=c.arguments, error=c.error)
            elif c.name == SEARCH_TOOL:
                ev("search", s.turn, name=c.name, arguments=c.arguments, result=c.hits)
            elif c.name == READ_TOOL:
                ev("read", s.turn, name=c.name, arguments=c.arguments, result=c.email or {})
            elif c.name == FINAL_TOOL:
                ev("answer", s.turn, answer=c.answer, sources=c.sources, dont_know=is_dont_know(c.answer or ""))
            else:
                ev("tool", s.turn, name=c.name, arguments=c.arguments)
    last = t.turns[-1].index if t.turns else 0
    if t.stop_reason == "out_of_turns":
        ev("out_of_turns", last)
    elif t.stop_reason in ("backend_error", "context_full"):
        ev(t.stop_reason, last, error=t.backend_error)
    return out
