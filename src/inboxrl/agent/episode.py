"""One episode as a state machine: `request()` gives the next model call, `step(response)` consumes its answer.

Why a state machine and not a loop that calls the model: a driver can then hold many episodes at once and send all
their requests to a backend as ONE batch (the only way local CPU generation is affordable), and the very same code
serves `inboxrl ask`, evaluation and GRPO rollouts, which differ only in the backend and the driver.

What `step` guarantees:
- the assistant message is recorded as the model wrote it (in JSON-in-text mode, its raw text; in native mode, its
  text plus the structured calls), and every tool result is a role "tool" message with `tool_call_id` and `name`;
- every failure is classified (`FormatErrorKind`) and recorded on its turn; it never raises on model output;
- the trajectory is complete when `done` is True: messages, turns (timings, tokens, raw output, token ids and
  logprobs), tool events with result ids, final answer and sources, stop reason, tokens and machine time.
  What the episode is worth (rubric, reward, cost) is decided later, by `inboxrl.scoring`, from this record.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from inboxrl.agent import prompt as P
from inboxrl.agent.config import AgentConfig
from inboxrl.agent.events import Event
from inboxrl.models.base import ChatRequest, ChatResponse
from inboxrl.questions.schema import Question
from inboxrl.tools.base import (
    FINAL_TOOL,
    READ_TOOL,
    SEARCH_TOOL,
    BadArgumentsError,
    ToolResult,
    UnknownToolError,
)
from inboxrl.trajectory import (
    ANSWER_BEFORE_SEARCH,
    FormatErrorKind,
    Message,
    ToolCall,
    ToolEvent,
    Trajectory,
    TurnRecord,
)


def _norm(v: Any) -> Any:
    """Normal form of call arguments for the repeated-call check: case, spacing and keyword order do not make a
    search different (the store's full-text search ignores them)."""
    if isinstance(v, str):
        return " ".join(v.lower().split())
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in sorted(v.items()) if x not in (None, "", [])}
    if isinstance(v, (list, tuple)):
        items = [_norm(x) for x in v]
        if all(isinstance(x, str) for x in items):
            return sorted(set(items))
        return items
    return v


def call_key(name: str, arguments: dict[str, Any]) -> str:
    return json.dumps([name, _norm(arguments)], sort_keys=True, default=str)


def parse_text_calls(text: str, known_tools: list[str]) -> tuple[list[ToolCall], list[tuple[FormatErrorKind, str]]]:
    """Tool calls written in the text (bare JSON, `<tool_call>` tags, code fences, several in a row), and the
    call-shaped pieces that could not become valid calls, classified."""
    from inboxrl.models.toolcalls import parse_tool_calls

    res = parse_tool_calls(text, frozenset(known_tools))
    return list(res.calls), [(i.kind, i.detail) for i in res.issues]


class Episode:
    def __init__(self, question: Question, tools: Any, cfg: AgentConfig, model_name: str,
                 native_tools: bool = False, template_tools: bool = False, episode_id: str | None = None):
        self.question = question
        self.tools = tools
        self.cfg = cfg
        self.id = episode_id or f"{question.id}-{uuid.uuid4().hex[:12]}"
        # native: the backend takes OpenAI `tools` and returns structured calls; json: calls are text we parse.
        self.native = cfg.tool_mode == "native" or (cfg.tool_mode == "auto" and native_tools)
        self.json_mode = not self.native
        all_schemas: list[dict[str, Any]] = list(tools.schemas())
        self.known_tools = [s.get("function", s)["name"] for s in all_schemas]
        hide = cfg.optional_tool_args == "hide" or (cfg.optional_tool_args == "auto" and not self.native)
        self.schemas = P.required_only(all_schemas) if hide else all_schemas
        # The request carries the schemas when the backend or its chat template will show them to the model;
        # otherwise the system prompt describes them.
        self.send_tools = self.native or (template_tools and cfg.template_tools)
        system = P.system_prompt(question.inbox_address, question.query_date, cfg.max_turns,
                                 None if self.send_tools else self.schemas)
        self.trajectory = Trajectory(
            question_id=question.id, question=question.question, golden_answer=question.answer or None,
            golden_message_ids=list(question.message_ids), inbox_address=question.inbox_address,
            query_date=question.query_date, model=model_name,
            messages=[Message(role="system", content=system), Message(role="user", content=question.question)],
            meta={"episode_id": self.id, "tool_mode": "native" if self.native else "json",
                  "template_tools": bool(self.send_tools and not self.native), "max_turns": cfg.max_turns,
                  "on_format_error": cfg.on_format_error, "harness": cfg.harness_name()},
        )
        self._seen_calls: set[str] = set()
        self._call_counter = 0
        self._machine_s = 0.0
        self._went_wrong = False  # the last turn had a format error or a refused call
        self._native_calls_seen = False  # the endpoint has returned structured tool calls in this episode
        self.done = False

    # --- driver interface -----------------------------------------------------------------------------------

    def request(self) -> ChatRequest | None:
        """The next model call, or None when the episode is over."""
        if self.done:
            return None
        if not self.trajectory.started_at:
            self.trajectory.started_at = time.time()
        temperature = self.cfg.temperature
        if self._went_wrong:
            temperature = max(temperature, self.cfg.retry_temperature)
            if temperature != self.cfg.temperature:
                self.trajectory.meta.setdefault("retry_sampled_turns", []).append(len(self.trajectory.turns))
        forced = self._forced_tool()
        tool_choice = prefix = None
        if forced:
            if self.native:
                tool_choice = forced
            else:
                prefix = P.call_prefix(next(s for s in self.schemas if s.get("function", s)["name"] == forced))
            self.trajectory.meta.setdefault("forced_calls", {})[str(len(self.trajectory.turns))] = forced
        return ChatRequest(
            episode_id=self.id,
            messages=[m.to_openai() for m in self.trajectory.messages],
            tools=self.schemas if self.send_tools else None,
            max_tokens=self.cfg.max_tokens_per_turn,
            temperature=temperature,
            seed=self.cfg.seed,
            tool_choice=tool_choice,
            assistant_prefix=prefix,
        )

    def _forced_tool(self) -> str | None:
        """The tool the next reply must call, if the harness forces one: a search first, a read after a search that
        found mail, an answer after a read. Only what the last turn did counts, so a failed call forces nothing."""
        t = self.trajectory
        if self.cfg.force_search_first and not t.turns and SEARCH_TOOL in self.known_tools:
            return SEARCH_TOOL
        if not t.turns:
            return None
        last = [e for e in t.tool_events if e.turn == t.turns[-1].index and e.ok]
        if self.cfg.force_answer_after_read and FINAL_TOOL in self.known_tools and any(
                e.name == READ_TOOL for e in last):
            return FINAL_TOOL
        if self.cfg.force_read_after_search and READ_TOOL in self.known_tools and any(
                e.name == SEARCH_TOOL and e.result_ids for e in last):
            return READ_TOOL
        return None

    def step(self, response: ChatResponse) -> list[Event]:
        """Consumes one model response: parse, run the tools, record. Never raises on bad model output."""
        if self.done:
            raise RuntimeError(f"episode {self.id} is already finished")
        t = self.trajectory
        index = len(t.turns)
        t.prompt_tokens += response.prompt_tokens
        t.completion_tokens += response.completion_tokens
        # A batched local call reports this episode's share of the batch's wall time: its machine time.
        self._machine_s += float(response.extra.get("wall_share_s", response.latency_s) or 0.0)
        if response.error or response.finish_reason == "context_full":
            context_full = response.finish_reason == "context_full" or "context" in (response.error or "").lower()
            kind = "context_full" if context_full else "backend_error"
            t.backend_error = response.error
            self._finish(kind)
            return [self._event(kind, index, error=response.error or "context window full")]

        self._went_wrong = False
        keep = self.cfg.keep_token_ids
        turn = TurnRecord(
            index=index, latency_s=response.latency_s, prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens, raw_output=response.text or "",
            input_ids=response.input_ids if keep else None, output_ids=response.output_ids if keep else None,
            output_logprobs=response.output_logprobs if keep else None,
        )
        t.turns.append(turn)
        events = [self._event("model", index, text=response.text or "", latency_s=response.latency_s,
                              completion_tokens=response.completion_tokens)]

        issues: list[tuple[FormatErrorKind, str]] = []
        if response.tool_calls:
            calls = list(response.tool_calls)
        else:
            calls, issues = parse_text_calls(response.text or "", self.known_tools)
        for c in calls:
            if not c.id:
                c.id = self._new_call_id()
        turn.tool_calls = calls

        # The assistant message as written. Native mode also carries the structured calls, which endpoints need
        # in order to accept the tool results that follow; JSON mode keeps only the text the model produced.
        t.messages.append(Message(role="assistant", content=response.text or "",
                                  tool_calls=calls if self.native else []))

        if not calls and not issues and self.native and _plain_dont_know(response.text or ""):
            # "I don't know." in plain text from a native-tools endpoint is that answer, not a malformed turn (an
            # endpoint that ignored `tools` otherwise turns every such reply into a format error until the turns
            # run out). Not in JSON mode: local rollouts must not earn the abstention tier without a call.
            t.final_answer, t.final_sources = (response.text or "").strip(), []
            t.meta["plain_text_answer"] = True
            self._finish("answered")
            events.append(self._event("answer", index, answer=t.final_answer, sources=[], dont_know=True))
            return events
        if not calls and self.native and self.send_tools and response.tool_calls is None \
                and not self._native_calls_seen:
            issues = [(FormatErrorKind.UNPARSEABLE, self._fall_back_to_json())]
        if response.tool_calls:
            self._native_calls_seen = True
        if not calls and not issues:
            detail = "no tool call in the output"
            if response.finish_reason == "length":
                detail += " (hit the token limit)"
            issues = [(FormatErrorKind.UNPARSEABLE, detail)]
        # Call-shaped text that is not a valid call (unknown tool, bad arguments, a broken <tool_call> block).
        for kind, detail in issues:
            self._format_error(turn, kind, detail, events)
        if issues and self._end_on_error():
            return events
        if calls:
            events += self._run_calls(turn, calls)
        if issues and not self.done:
            t.messages.append(Message(role="user", content=self._issues_message(issues, bool(calls))))

        if not self.done and len(t.turns) >= self.cfg.max_turns:
            self._finish("out_of_turns")
            events.append(self._event("out_of_turns", index))
        elif not self.done and self.cfg.last_turn_warning and len(t.turns) == self.cfg.max_turns - 1:
            last = t.messages[-1]
            last.content = (last.content or "") + P.LAST_TURN_NOTE
        return events

    # --- internals --------------------------------------------------------------------------------------------

    def _fall_back_to_json(self) -> str:
        """The endpoint returned no tool call although tools were sent (llama.cpp's server with a plain chat format
        ignores `tools`): from the next turn on, the tools are described in the system prompt and called as JSON
        in the text, which any chat endpoint can do. Returns the turn's error detail, which says so."""
        self.native, self.json_mode, self.send_tools = False, True, False
        hide = self.cfg.optional_tool_args in ("auto", "hide")
        self.schemas = P.required_only(self.schemas) if hide else self.schemas
        q = self.question
        self.trajectory.messages[0].content = P.system_prompt(q.inbox_address, q.query_date, self.cfg.max_turns,
                                                              self.schemas)
        note = ("the endpoint returned no tool call although tools were sent; switched to JSON-in-text tools "
                "(set tool_mode: json to start that way)")
        self.trajectory.meta.update(tool_mode="json", tool_mode_fallback=note)
        return note

    def _run_calls(self, turn: TurnRecord, calls: list[ToolCall]) -> list[Event]:
        events: list[Event] = []
        for i, call in enumerate(calls):
            if i >= self.cfg.max_calls_per_turn:
                self._tool_message(call, f"Skipped: at most {self.cfg.max_calls_per_turn} calls per turn.")
                continue
            if self.done:  # a final answer earlier in this turn ended the episode; answer the rest for the API
                self._tool_message(call, "Skipped: the episode ended with return_final_answer.")
                continue
            if call.name not in self.known_tools:
                self._format_error(turn, FormatErrorKind.UNKNOWN_TOOL, f"unknown tool {call.name!r}", events)
                self._tool_message(call, P.unknown_tool_message(call.name, self.known_tools))
                if self._end_on_error():
                    return events
                continue
            key = call_key(call.name, call.arguments)
            if self.cfg.refuse_repeated_calls and call.name != FINAL_TOOL and key in self._seen_calls:
                # A nudge, not a malformed call: it is counted, but never ends the episode even in "end" mode.
                self._format_error(turn, FormatErrorKind.REPEATED_CALL, f"repeated {call.name} call", events)
                self._tool_message(call, P.repeated_call_message(self._unread_ids()))
                continue
            if (call.name == FINAL_TOOL and self.cfg.require_search_before_answer
                    and not any(e.name == SEARCH_TOOL for e in self.trajectory.tool_events)):
                # Not a format error (the call is well formed): a refused call, like a read of an unknown id.
                self.trajectory.tool_events.append(ToolEvent(turn=turn.index, name=call.name, arguments=call.arguments,
                                                             ok=False, error=ANSWER_BEFORE_SEARCH))
                q = self.question
                self._tool_message(call, P.answer_before_search_message(q.question, q.inbox_address))
                self._went_wrong = True
                events.append(self._event("tool_error", turn.index, name=call.name, arguments=call.arguments,
                                          error=ANSWER_BEFORE_SEARCH))
                continue
            started = time.perf_counter()
            try:
                result: ToolResult = self.tools.call(call.name, call.arguments)
            except UnknownToolError as e:
                self._format_error(turn, FormatErrorKind.UNKNOWN_TOOL, str(e), events)
                self._tool_message(call, P.unknown_tool_message(call.name, self.known_tools))
                if self._end_on_error():
                    return events
                continue
            except BadArgumentsError as e:
                self._format_error(turn, FormatErrorKind.BAD_ARGUMENTS, str(e), events)
                self._tool_message(call, P.bad_arguments_message(call.name, str(e)))
                if self._end_on_error():
                    return events
                continue
            except Exception as e:  # noqa: BLE001 - a tool crash must not lose the episode; it is recorded
                latency = time.perf_counter() - started
                err = f"{type(e).__name__}: {e}"
                self.trajectory.tool_events.append(ToolEvent(turn=turn.index, name=call.name, arguments=call.arguments,
                                                             ok=False, error=err, latency_s=latency))
                self._tool_message(call, "Error: the tool failed. Try a different call.")
                events.append(self._event("tool_error", turn.index, name=call.name, arguments=call.arguments,
                                          error=err))
                self._seen_calls.add(key)
                continue
            latency = time.perf_counter() - started
            self._seen_calls.add(key)
            self.trajectory.tool_events.append(ToolEvent(
                turn=turn.index, name=call.name, arguments=call.arguments, ok=result.ok, result_ids=list(result.ids),
                error=result.error, latency_s=latency))
            self._tool_message(call, result.content)
            events.append(self._tool_event(turn.index, call, result))
            if not result.ok:
                self._went_wrong = True
            if result.final:
                self.trajectory.final_answer = result.answer if result.answer is not None else ""
                self.trajectory.final_sources = list(result.sources)
                self._finish("answered")
        return events

    def _tool_event(self, turn: int, call: ToolCall, result: ToolResult) -> Event:
        if result.final:
            return self._event("answer", turn, answer=result.answer, sources=list(result.sources))
        if not result.ok:
            return self._event("tool_error", turn, name=call.name, arguments=call.arguments, error=result.error,
                               content=result.content)
        kind = "search" if call.name == SEARCH_TOOL else "read" if call.name == READ_TOOL else "tool"
        return self._event(kind, turn, name=call.name, arguments=call.arguments, ids=list(result.ids),
                           result=result.data)

    def _issues_message(self, issues: list[tuple[FormatErrorKind, str]], had_calls: bool) -> str:
        if not had_calls and issues[0][0] == FormatErrorKind.UNPARSEABLE:
            return P.unparseable_message(self.json_mode)
        return "Error: " + "; ".join(d for _, d in issues[:3])

    def _end_on_error(self) -> bool:
        if self.cfg.on_format_error == "end":
            self._finish("format_error")
            return True
        return False

    def _unread_ids(self) -> list[str]:
        """Ids that earlier searches returned and no read has opened yet, best-ranked first."""
        read = {i for e in self.trajectory.tool_events if e.name == READ_TOOL and e.ok for i in e.result_ids}
        out: list[str] = []
        for e in self.trajectory.tool_events:
            if e.name == SEARCH_TOOL and e.ok:
                out += [i for i in e.result_ids if i not in read and i not in out]
        return out

    def _format_error(self, turn: TurnRecord, kind: FormatErrorKind, detail: str, events: list[Event]) -> None:
        # A turn has one recorded kind (the first); further problems in the same turn are appended to the detail.
        self._went_wrong = True
        if turn.format_error is None:
            turn.format_error = kind
            turn.format_error_detail = detail
        else:
            turn.format_error_detail = f"{turn.format_error_detail}; {kind.value}: {detail}"
        events.append(self._event("format_error", turn.index, error_kind=kind.value, detail=detail))

    def _tool_message(self, call: ToolCall, content: str) -> None:
        self.trajectory.messages.append(Message(role="tool", content=content, tool_call_id=call.id, name=call.name))

    def _new_call_id(self) -> str:
        self._call_counter += 1
        return f"call_{len(self.trajectory.turns) - 1}_{self._call_counter}"

    def _event(self, kind: str, turn: int, **data: Any) -> Event:
        return Event(kind=kind, episode_id=self.id, question_id=self.question.id, turn=turn, data=data)  # type: ignore[arg-type]

    def _finish(self, reason: str) -> None:
        t = self.trajectory
        t.stop_reason = reason  # type: ignore[assignment]
        if t.started_at:
            t.wall_time_s = time.time() - t.started_at
        t.meta["machine_time_s"] = round(self._machine_s, 3)  # the scoring stage prices it
        self.done = True


def _plain_dont_know(text: str) -> bool:
    """A short reply that only says it does not know (no call, no JSON)."""
    from inboxrl.agent.idk import is_dont_know

    t = text.strip()
    return 0 < len(t) <= 120 and any(c.isalpha() for c in t) and "{" not in t and is_dont_know(t)
