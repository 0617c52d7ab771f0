"""What the detectors read off a trajectory: whether it answered, and everything it was shown."""

from __future__ import annotations

import json
from typing import Any

from inboxrl.agent.idk import is_dont_know
from inboxrl.tools.base import FINAL_TOOL
from inboxrl.trajectory import Trajectory


def answered(t: Trajectory) -> bool:
    return t.stop_reason in (None, "answered") and t.final_answer is not None


def attempted(t: Trajectory) -> bool:
    """A real answer, not an "I don't know" (the rubric's reading when the episode was scored)."""
    if t.rubric is not None:
        return t.rubric.attempted_answer
    return answered(t) and not is_dont_know(t.final_answer)


def said_dont_know(t: Trajectory) -> bool:
    if t.rubric is not None:
        return t.rubric.said_dont_know
    return answered(t) and is_dont_know(t.final_answer)


def correct(t: Trajectory) -> bool:
    return t.rubric is not None and t.rubric.attempted_answer and t.rubric.answer_correct


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def message_text(content: str) -> str:
    """A tool result as the text it carries: JSON results are decoded, so that a body's escaped line breaks
    ("Martin \\nLin") do not glue words together."""
    try:
        return "\n".join(_strings(json.loads(content)))
    except ValueError:
        return content


def shown_text(t: Trajectory) -> str:
    """Everything the agent was shown: the system prompt, the question, every tool result (search hits with their
    snippets, the emails read) and every harness message. Its own turns are not evidence, and neither is the final
    answer tool's echo of its answer."""
    parts = [t.question]
    parts += [message_text(m.content or "") for m in t.messages
              if m.role != "assistant" and not (m.role == "tool" and m.name == FINAL_TOOL)]
    return "\n".join(parts)
