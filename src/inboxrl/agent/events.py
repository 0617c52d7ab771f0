"""What an episode reports while it runs, for live traces (`inboxrl ask`) and progress displays.

Events are a view for humans; the trajectory is the record. Nothing downstream should be computed from events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal[
    "model",          # the model wrote something (text, latency, tokens)
    "search",         # search_inbox ran: keywords, hits
    "read",           # read_email ran: the email (or not_found)
    "tool",           # any other tool ran
    "answer",         # return_final_answer: answer, sources
    "format_error",   # a malformed turn: kind, detail
    "tool_error",     # a well-formed call that failed (not_found, empty query, a tool crash)
    "backend_error",  # the backend could not answer; the episode stops
    "out_of_turns",   # the turn budget ran out
    "context_full",   # the model's context window ran out
]


@dataclass
class Event:
    kind: EventKind
    episode_id: str
    question_id: str
    turn: int
    data: dict[str, Any] = field(default_factory=dict)
