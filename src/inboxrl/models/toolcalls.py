"""Reading tool calls out of free text, for models without native tool calling (JSON-in-text mode).

Small local models write bare JSON, `<tool_call>` tags, code fences, parentheses, several calls in a row,
Python-dict style, or repeat a keyword until the token limit cuts it off. A strict parser would make most of those
turns format errors, and the reward would teach formatting instead of research; so this parser recovers every call
that can be read *unambiguously*, and classifies the rest (unparseable, unknown tool, bad arguments) for the rubric.

The parser is pure: text in, `ParseResult` out. It never executes anything. Broken JSON (single quotes, unquoted
keys, a value cut off by the token limit) is mended by `json-repair`; what a value means as a call is decided here.
Python-call style arguments go through a small evaluator that accepts only literals (no names other than
true/false/null, no calls, no attribute access).
"""

from __future__ import annotations

import ast
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import json_repair

from inboxrl.trajectory import FormatErrorKind, ToolCall

# Keys a model may use for the tool's name and for its arguments. The first ones are the OpenAI / Qwen spelling;
# the others are what small models and other agent frameworks write.
_NAME_KEYS = ("name", "tool", "tool_name", "function", "action", "function_name")
_ARG_KEYS = ("arguments", "parameters", "args", "input", "action_input", "tool_input", "params", "kwargs")
_WRAPPER_KEYS = ("tool_call", "tool_calls", "function_call", "call", "calls")
MAX_CALLS = 16  # more than this in one turn is degenerate output, not a plan


@dataclass
class ParseIssue:
    """A call-shaped piece of text that could not become a valid call."""

    kind: FormatErrorKind
    detail: str  # one line, fit to be shown to the model in an error message
    raw: str = ""


@dataclass
class ParseResult:
    calls: list[ToolCall] = field(default_factory=list)  # every valid call, in the order written
    issues: list[ParseIssue] = field(default_factory=list)  # every call-shaped thing that was rejected
    prose: str = ""  # the text outside the calls (tags and fences removed), e.g. an answer written in prose
    truncated: bool = False  # a call was cut off (token limit) and had to be closed to be read
    styles: list[str] = field(default_factory=list)  # how calls were written: json, tagged, fenced, python, ...

    @property
    def error(self) -> FormatErrorKind | None:
        """The turn's format error: the first rejected call, or `unparseable` when no call was found at all (a turn
        with valid calls and a rejected one still reports it; the agent decides whether to run `calls`)."""
        if self.issues:
            return self.issues[0].kind
        if not self.calls:
            return FormatErrorKind.UNPARSEABLE
        return None

    @property
    def error_detail(self) -> str | None:
        if self.issues:
            return self.issues[0].detail
        if not self.calls:
            return "no tool call found: write one JSON object {\"name\": ..., \"arguments\": {...}}"
        return None


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def parse_tool_calls(
    text: str,
    known_tools: set[str] | frozenset[str],
    *,
    id_factory: Callable[[], str] = new_call_id,
    repair_truncated: bool = True,
) -> ParseResult:
    """Finds every tool call in `text`. See the module docstring for what is accepted and why."""
    text = text or ""
    res = ParseResult()
    spans: list[tuple[int, int]] = []
    found: list[tuple[int, list[_Candidate]]] = []

    # 1. JSON (or Python-literal) objects and lists anywhere in the text.
    for start, end, cands in _json_values(text, known_tools, repair_truncated):
        spans.append((start, end))
        found.append((start, cands))
    # 2. Python-call style `search_inbox(keywords=["x"])` outside those, only for known tool names: a bare `word(`
    #    is too common in prose to be read as a call otherwise.
    for start, end, cands in _python_calls(text, known_tools):
        if not _inside(start, spans):
            spans.append((start, end))
            found.append((start, cands))

    found.sort(key=lambda x: x[0])
    for _, cands in found:
        for c in cands:
            if len(res.calls) + len(res.issues) >= MAX_CALLS:
                break
            res.truncated |= c.repaired
            if c.style not in res.styles:
                res.styles.append(c.style)
            if c.issue is not None:
                res.issues.append(c.issue)
            else:
                res.calls.append(ToolCall(id=id_factory(), name=c.name, arguments=c.arguments))

    res.prose = _prose(text, spans)
    tagged = "<tool_call>" in text
    fenced = "```" in text
    if res.calls or res.issues:
        wrapper = "tagged" if tagged else "fenced" if fenced else None
        if wrapper and wrapper not in res.styles:
            res.styles.insert(0, wrapper)
    elif tagged:
        # Tags with nothing readable inside: the model meant a call; say so rather than "no call found".
        res.issues.append(ParseIssue(FormatErrorKind.UNPARSEABLE, "the <tool_call> block holds no readable JSON call",
                                     _inner_tag(text)))
    return res


# ---------------------------------------------------------------------------------------------------------------
# Candidates: a parsed value interpreted as zero or more calls.


@dataclass
class _Candidate:
    name: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)
    issue: ParseIssue | None = None
    repaired: bool = False
    style: str = "json"


def _normalise_name(name: str) -> str:
    name = name.strip().strip("`'\"")
    for prefix in ("functions.", "function.", "tools.", "tool."):
        name = name.removeprefix(prefix)
    return name


def _rejected(kind: FormatErrorKind, detail: str, raw: str, style: str, name: str = "") -> _Candidate:
    return _Candidate(name=name, style=style, issue=ParseIssue(kind, detail, raw[:200]))


def _make(name: Any, args: Any, known: set[str] | frozenset[str], raw: str, style: str) -> _Candidate:
    if not isinstance(name, str) or not name.strip():
        return _rejected(FormatErrorKind.UNPARSEABLE, "a call without a tool name", raw, style)
    name = _normalise_name(name)
    if name not in known:
        return _rejected(FormatErrorKind.UNKNOWN_TOOL, f"unknown tool {name!r}; the tools are: "
                         f"{', '.join(sorted(known)) or '(none)'}", raw, style, name)
    if isinstance(args, str):  # OpenAI's wire format: arguments as a JSON string
        args = _loads_lenient(args) if args.strip() else {}
        if args is _FAIL:
            return _rejected(FormatErrorKind.BAD_ARGUMENTS, f"arguments of {name} are not a JSON object", raw, style,
                             name)
    args = {} if args is None else args
    if not isinstance(args, dict):
        return _rejected(FormatErrorKind.BAD_ARGUMENTS, f"arguments of {name} must be a JSON object, got "
                         f"{type(args).__name__}", raw, style, name)
    if not all(isinstance(k, str) for k in args):
        return _rejected(FormatErrorKind.BAD_ARGUMENTS, f"argument names of {name} must be strings", raw, style, name)
    return _Candidate(name=name, arguments=args, style=style)


def _interpret(value: Any, known: set[str] | frozenset[str], raw: str, style: str, depth: int = 0) -> list[_Candidate]:
    """The calls a parsed JSON value stands for; [] when it is not call-shaped at all (e.g. a JSON answer)."""
    if isinstance(value, list) and depth <= 3:
        return [c for v in value for c in _interpret(v, known, raw, style, depth + 1)]
    if not isinstance(value, dict) or depth > 3:
        return []
    # OpenAI tool_calls entry: {"type": "function", "function": {"name": ..., "arguments": "..."}}
    fn = value.get("function")
    if isinstance(fn, dict) and "name" in fn:
        return [_make(fn.get("name"), _first(fn, _ARG_KEYS), known, raw, style)]
    for k in _WRAPPER_KEYS:
        if k in value and isinstance(value[k], (dict, list)):
            return _interpret(value[k], known, raw, style, depth + 1)
    for k in _NAME_KEYS:
        v = value.get(k)
        # A "name" that is not an identifier ("John Smith") is data, not a call.
        if isinstance(v, str) and (_normalise_name(v) in known or _IDENT.match(v.strip())):
            args = _first(value, _ARG_KEYS)
            if args is None:  # {"name": "search_inbox", "keywords": [...]}: arguments written next to the name
                args = {kk: vv for kk, vv in value.items() if kk not in _NAME_KEYS and kk not in ("type", "id")}
            return [_make(value[k], args, known, raw, style)]
    # {"search_inbox": {"keywords": [...]}}: the tool's name as the only key.
    if len(value) == 1:
        (k, v), = value.items()
        if _normalise_name(k) in known and isinstance(v, dict):
            return [_make(k, v, known, raw, style)]
    return []


_IDENT = re.compile(r"^[A-Za-z_][\w.\-]*$")


def _first(d: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((d[k] for k in keys if k in d), None)


# ---------------------------------------------------------------------------------------------------------------
# Scanning for JSON values.

_FAIL = object()


def _json_values(text: str, known: set[str] | frozenset[str], repair: bool) -> list[tuple[int, int, list[_Candidate]]]:
    out: list[tuple[int, int, list[_Candidate]]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch not in "{[":
            i += 1
            continue
        end, closed = _match(text, i)
        raw = text[i:end]
        value, repaired = _FAIL, False
        if closed:
            value = _loads_lenient(raw)
        elif repair:
            value = _repair(raw)
            repaired = value is not _FAIL
        if value is _FAIL:
            i += 1
            continue
        cands = _interpret(value, known, raw, _style_at(text, i))
        if not cands:
            # Not a call. Look inside it only when it mentions a tool, since a call may sit in a wrapper we do
            # not know; otherwise skip it whole (scanning every bracket of a big data blob is quadratic).
            i = i + 1 if any(k in raw for k in known) else end
            continue
        for c in cands:
            c.repaired = repaired
        out.append((i, end, cands))
        i = end
    return out


def _inside(i: int, spans: list[tuple[int, int]]) -> bool:
    return any(a <= i < b for a, b in spans)


def _style_at(text: str, i: int) -> str:
    before = text[:i].rstrip()
    if before.endswith("("):
        return "parenthesised"
    if before.endswith("<tool_call>"):
        return "tagged"
    if re.search(r"```[a-zA-Z]*$", before):
        return "fenced"
    return "json"


# What the scanner yields: (position, character, closers still expected, open quote).
_ScanEvent = tuple[int, str, list[str], str | None]


def _scan(text: str, start: int = 0) -> Iterator[_ScanEvent]:
    """Walks `text` as a JSON or Python-literal reader would (both quote styles, backslash escapes), so brackets and
    commas inside strings do not count. Yields `(i, ch, stack, None)` for each bracket and comma outside strings,
    then `(len(text), "", stack, quote)` at the end, `quote` being the string still open there. `stack` holds the
    closers expected, innermost last; at a closer it is still as before it (so a mismatch shows), and it is popped
    afterwards only on a match. The stack is the scanner's own list."""
    stack: list[str] = []
    quote: str | None = None
    i = start
    n = len(text)
    while i < n:
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            # An apostrophe inside prose-like JSON content is only a quote when it opens a value or key.
            if ch == "'" and not _opens_single_quote(text, i):
                i += 1
                continue
            quote = ch
        elif ch in "{[(":
            stack.append({"{": "}", "[": "]", "(": ")"}[ch])
            yield i, ch, stack, None
        elif ch in "}])":
            yield i, ch, stack, None
            if stack and stack[-1] == ch:
                stack.pop()
        elif ch == ",":
            yield i, ch, stack, None
        i += 1
    yield n, "", stack, quote


def _match(text: str, start: int) -> tuple[int, bool]:
    """End (exclusive) of the bracketed value starting at `start`, and whether it closed before the text ended (a
    mismatched closer ends the value there; it will fail to parse and be skipped)."""
    for i, ch, stack, _ in _scan(text, start):
        if ch and ch in "}])" and (not stack or stack[-1] != ch or len(stack) == 1):
            return i + 1, True  # a mismatch, or the closer of the outermost bracket
    return len(text), False


def _opens_single_quote(text: str, i: int) -> bool:
    j = i - 1
    while j >= 0 and text[j] in " \t\r\n":
        j -= 1
    return j < 0 or text[j] in "{[,:("


def _loads_lenient(raw: str, cut_off: bool = False) -> Any:
    """JSON, then Python literals, then json-repair in strict mode (unquoted keys, trailing commas). A value with a
    parenthesis outside its strings holds a call expression, which json-repair would read as a bare string; an
    unclosed value is mended only where the token limit cut it off (`cut_off`), never a broken one from elsewhere."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        pass
    v = _literal(raw)
    events = list(_scan(raw))
    _, _, stack, quote = events[-1]
    if v is not _FAIL or any(ch == "(" for _, ch, _, _ in events) or ((stack or quote) and not cut_off):
        return v
    try:
        return json_repair.loads(raw, strict=True, skip_json_loads=True)
    except (ValueError, RecursionError, IndexError, TypeError):
        return _FAIL


_LITERAL_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def _literal(raw: str) -> Any:
    """A safe evaluator for Python/JSON literals: dicts, lists, tuples, strings, numbers, true/false/null."""
    try:
        node = ast.parse(raw.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _FAIL
    try:
        return _eval_node(node)
    except (ValueError, TypeError, RecursionError):
        return _FAIL


def _eval_node(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name) and node.id in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id]
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise ValueError("dict unpacking")
        return {_eval_node(k): _eval_node(v) for k, v in zip(node.keys, node.values)}  # type: ignore[arg-type]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_eval_node(e) for e in node.elts]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_node(node.operand)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return -v if isinstance(node.op, ast.USub) else v
    raise ValueError(f"not a literal: {type(node).__name__}")


def _repair(raw: str) -> Any:
    """Closes a value the token limit cut off (json-repair closes the open string and brackets). A half-written
    list element is dropped first (`["a", "a", "a", "a` -> `["a", "a", "a"]`): a keyword repeated to the limit is
    noise; a half-written answer string (inside an object) is kept."""
    last_comma = None
    for i, ch, stack, quote in _scan(raw):
        if ch == ",":
            last_comma = i
        elif not ch and quote and stack and stack[-1] == "]" and last_comma is not None:
            raw = raw[:last_comma]
    return _loads_lenient(raw, cut_off=True)


# ---------------------------------------------------------------------------------------------------------------
# Python-call style.


def _python_calls(text: str, known: set[str] | frozenset[str]) -> list[tuple[int, int, list[_Candidate]]]:
    if not known:
        return []
    names = "|".join(re.escape(k) for k in sorted(known, key=len, reverse=True))
    out: list[tuple[int, int, list[_Candidate]]] = []
    for m in re.finditer(rf"(?<![\w\"'.])(?:functions\.)?({names})\s*\(", text):
        if out and m.start() < out[-1][1]:
            continue
        open_paren = m.end() - 1
        end, closed = _match(text, open_paren)
        if not closed:
            continue
        raw = text[m.start():end]
        try:
            node = ast.parse(raw.replace("functions.", "", 1), mode="eval").body
        except (SyntaxError, ValueError, RecursionError):
            continue
        if not isinstance(node, ast.Call):
            continue
        name = m.group(1)
        try:
            if node.args and not node.keywords and len(node.args) == 1:
                args = _eval_node(node.args[0])  # search_inbox({"keywords": [...]})
            elif node.args:
                out.append((m.start(), end, [_rejected(FormatErrorKind.BAD_ARGUMENTS,
                                                       f"pass the arguments of {name} by name", raw, "python", name)]))
                continue
            else:
                args = {kw.arg: _eval_node(kw.value) for kw in node.keywords if kw.arg is not None}
        except (ValueError, TypeError, RecursionError):
            out.append((m.start(), end, [_rejected(FormatErrorKind.BAD_ARGUMENTS,
                                                   f"arguments of {name} must be literal values", raw, "python", name)]))
            continue
        out.append((m.start(), end, [_make(name, args, known, raw, "python")]))
    return out


# ---------------------------------------------------------------------------------------------------------------
# What is left: prose.

_TAG_RE = re.compile(r"</?tool_call>|```[a-zA-Z]*")


def _prose(text: str, spans: list[tuple[int, int]]) -> str:
    keep: list[str] = []
    pos = 0
    for a, b in sorted(spans):
        if a < pos:
            continue
        keep.append(text[pos:a])
        pos = b
    keep.append(text[pos:])
    out = _TAG_RE.sub(" ", "".join(keep))
    # Parentheses that wrapped a call are left empty.
    out = re.sub(r"\(\s*\)", " ", out)
    return re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n", out)).strip()


def _inner_tag(text: str) -> str:
    m = re.search(r"<tool_call>(.*?)(</tool_call>|$)", text, re.DOTALL)
    return (m.group(1).strip() if m else "")[:200]
