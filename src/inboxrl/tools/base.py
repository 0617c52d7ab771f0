"""What a tool call returns, and the two ways a call can be malformed.

The agent loop needs to tell a *malformed* call (unknown tool, bad arguments: a format error that the reward
punishes hardest) from a *well-formed call that found nothing* (an ordinary result the model must react to).
Hence two exception types for the former and `ToolResult(ok=False)` for the latter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inboxrl.store import access as store_access

# The tools' names: the agent loop, the rubric and the schemas all refer to these.
SEARCH_TOOL = "search_inbox"
READ_TOOL = "read_email"
FINAL_TOOL = "return_final_answer"
TOOL_NAMES = (SEARCH_TOOL, READ_TOOL, FINAL_TOOL)


# Models cite ids with or without the brackets: the store's one normaliser makes them the same id.
normalise_id = store_access.normalise_id


class UnknownToolError(ValueError):
    """The call named a tool that does not exist."""


class BadArgumentsError(ValueError):
    """The call's arguments are missing, extra, or of the wrong type. The message says which, for the model."""


class ToolQueryError(ValueError):
    """A well-formed call that cannot be answered (empty query, bad date): becomes `ToolResult(ok=False)`.

    `code` is the `ToolResult.error` value; the message is written for the model, to tell it what to do instead.
    """

    code = "bad_query"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class ToolNotFound(ToolQueryError):
    """No such message in this inbox and date scope. Deliberately the same for "exists elsewhere" and "unknown"."""

    code = "not_found"


@dataclass
class ToolResult:
    ok: bool
    content: str  # what the model sees (JSON text)
    ids: list[str] = field(default_factory=list)  # message ids returned (search hits, or the email read)
    error: str | None = None  # "not_found", "empty_query", ... when ok is False
    final: bool = False  # return_final_answer: the episode ends
    answer: str | None = None
    sources: list[str] = field(default_factory=list)
    data: Any = None  # the structured result, for the CLI's --json and the live trace


@dataclass(frozen=True)
class Scope:
    """What one episode may see: one inbox address, and mail sent strictly before `before` (YYYY-MM-DD)."""

    inbox: str
    before: str | None = None
    after: str | None = None
