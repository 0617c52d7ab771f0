"""The one record of an episode, shared by evaluation, training and the viewer.

Everything a later stage needs is in here, so that no stage has to re-run or re-derive another's work:
evaluation reads the rubric and timings, training reads the sampled token ids, the viewer reads the messages.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field


class FormatErrorKind(str, Enum):
    """Why a model turn could not be turned into a valid tool call."""

    UNPARSEABLE = "unparseable"  # no tool call could be read from the output
    UNKNOWN_TOOL = "unknown_tool"  # a call named a tool that does not exist
    BAD_ARGUMENTS = "bad_arguments"  # right tool, arguments missing, extra or of the wrong type
    REPEATED_CALL = "repeated_call"  # identical to an earlier call; refused so the model must change course


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    """An OpenAI-style chat message; `to_openai()` gives the dict the SDK and chat templates take."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content or ""}
        if self.tool_calls:
            d["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            d["name"] = self.name
        return d


class TurnRecord(BaseModel):
    """One model call. Token ids are kept only for local backends, because training needs the sampled ids."""

    index: int
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    raw_output: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    format_error: FormatErrorKind | None = None
    format_error_detail: str | None = None
    # Token ids appended to the context before this turn's generation (system+question on turn 0, then the
    # rendered tool results), and the ids the model actually sampled. Training splices these, never re-tokenises.
    input_ids: list[int] | None = None
    output_ids: list[int] | None = None
    output_logprobs: list[float] | None = None


# `ToolEvent.error` of a return_final_answer the harness refused because nothing had been searched yet: written by
# the agent loop, counted by the rubric.
ANSWER_BEFORE_SEARCH = "answer_before_search"


class ToolEvent(BaseModel):
    """A tool call as executed, with what the agent saw; the rubric is computed from these."""

    turn: int
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    ok: bool = True
    result_ids: list[str] = Field(default_factory=list)  # message ids returned by search / read
    error: str | None = None
    latency_s: float = 0.0


class Rubric(BaseModel):
    """What happened in an episode, as facts. The reward is a pure function of this."""

    answer_correct: bool = False
    attempted_answer: bool = False  # returned a real answer (not "I don't know")
    said_dont_know: bool = False
    sources_correct: bool = False  # every cited source is a golden source, and at least one was cited
    num_turns: int = 0
    max_turns: int = 10
    found_source_in_search: bool = False
    read_source: bool = False
    invalid_read_attempts: int = 0
    refused_answers: int = 0  # return_final_answer calls refused because nothing had been searched yet
    format_errors: dict[str, int] = Field(default_factory=dict)  # FormatErrorKind value -> count
    ended_by_format_error: bool = False
    ran_out_of_turns: bool = False
    judge_reason: str | None = None

    @property
    def total_format_errors(self) -> int:
        return sum(self.format_errors.values())


class Trajectory(BaseModel):
    """One episode: question, every message and tool call, timings, tokens, cost, answer, rubric and reward."""

    question_id: str
    question: str
    golden_answer: str | None = None
    golden_message_ids: list[str] = Field(default_factory=list)
    inbox_address: str
    query_date: str
    model: str
    messages: list[Message] = Field(default_factory=list)
    turns: list[TurnRecord] = Field(default_factory=list)
    tool_events: list[ToolEvent] = Field(default_factory=list)
    final_answer: str | None = None
    final_sources: list[str] = Field(default_factory=list)
    stop_reason: Literal["answered", "out_of_turns", "format_error", "backend_error", "context_full"] | None = None
    backend_error: str | None = None
    started_at: float = 0.0
    wall_time_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None: not scored yet, or the model's price is unknown
    rubric: Rubric | None = None
    reward: float | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    def without_token_ids(self) -> Trajectory:
        """A copy without per-turn token ids: evaluation files stay small and readable."""
        t = self.model_copy(deep=True)
        for turn in t.turns:
            turn.input_ids = turn.output_ids = turn.output_logprobs = None
        return t


def write_jsonl(path: str | Path, trajectories: Iterable[Trajectory], append: bool = True) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("a" if append else "w", encoding="utf-8") as f:
        for t in trajectories:
            f.write(t.model_dump_json() + "\n")
            n += 1
        f.flush()
    return n


def open_binary(path: str | Path) -> io.BufferedIOBase:
    """A trajectories file for reading, as bytes; a `.gz` one (an exported run, benchmarks/export_run.py) is
    decompressed on the fly."""
    p = Path(path)
    return gzip.open(p, "rb") if p.suffix == ".gz" else p.open("rb")


def jsonl_or_gz(path: str | Path) -> Path:
    """`path`, or `path.gz` when only the compressed file exists (an exported run keeps its trajectories gzipped)."""
    p = Path(path)
    gz = p.with_name(p.name + ".gz")
    return gz if not p.is_file() and gz.is_file() else p


EVAL_TRAJECTORIES = "trajectories.jsonl"  # an eval run directory's episodes (`inboxrl eval --out`, `serve --out`)


def eval_trajectories(directory: str | Path) -> Path:
    """An eval run directory's trajectories file, gzipped in an exported run; it may not exist."""
    return jsonl_or_gz(Path(directory) / EVAL_TRAJECTORIES)


_STEP_FILE = re.compile(r"^step-(\d+)\.jsonl(\.gz)?$")


def step_files(directory: str | Path) -> list[tuple[int, Path]]:
    """A run's `step-N.jsonl` (or exported `step-N.jsonl.gz`) files in `directory`, by step; a plain file wins over
    a compressed one of the same step."""
    d = Path(directory)
    found: dict[int, Path] = {}
    for f in sorted(d.glob("step-*.jsonl*")) if d.is_dir() else []:
        m = _STEP_FILE.match(f.name)
        if m and (int(m.group(1)) not in found or not m.group(2)):
            found[int(m.group(1))] = f
    return sorted(found.items())


def read_jsonl(path: str | Path) -> Iterator[Trajectory]:
    """Reads trajectories (plain or `.gz`); a torn last line (a run killed mid-write) is skipped, not fatal."""
    with open_binary(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield Trajectory.model_validate_json(line)
            except ValueError:
                continue
