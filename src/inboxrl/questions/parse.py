"""Reading question lists out of whatever a model wrote.

Small models wrap JSON in code fences, add prose before and after, use single quotes or trailing commas, emit one
object per line instead of a list, or run out of tokens mid-list. We recover every complete question object we can;
what cannot be read is reported as unparseable, never guessed at.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|$)", re.DOTALL)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_DECODER = json.JSONDecoder(strict=False)  # tolerate raw newlines inside strings
_FAIL = object()

# Keys a model uses for a list of questions, and for a question itself.
_LIST_KEYS = ("questions", "items", "data", "results", "qa", "qas", "question_list")
QUESTION_KEYS = ("question", "q", "query")


@dataclass
class ParseResult:
    items: list[Any] = field(default_factory=list)
    mode: Literal["json", "salvaged", "none"] = "none"

    @property
    def ok(self) -> bool:
        return self.mode != "none"


def parse_output(text: str) -> ParseResult:
    """`json`: the output (or a fenced block) was JSON, possibly one object per line; `salvaged`: complete
    question objects were picked out of broken or truncated output."""
    text = _THINK.sub("", text or "").strip()
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)]
    candidates.append(text)
    for cand in candidates:
        loaded = first_json_value(cand)
        if loaded is None:
            continue
        value, rest = loaded
        # A value with prose before it may be a fragment (a cited "[3]"), so then only question objects count.
        items = _unwrap(value, strict=cand.lstrip()[:1] not in ("[", "{"))
        if items is not None:
            return ParseResult(items + _scan(rest), "json")  # more objects after the first: JSON lines
    for fixed in (text, _TRAILING_COMMA.sub(r"\1", text)):
        salvaged = _scan(fixed)
        if salvaged:
            return ParseResult(salvaged, "salvaged")
    return ParseResult([], "none")


def first_json_value(s: str) -> tuple[Any, str] | None:
    """The first JSON value in `s` (prose before it is skipped) and the text after it."""
    start = min((i for i in (s.find("{"), s.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    s = s[start:]
    for attempt in (s, _TRAILING_COMMA.sub(r"\1", s)):
        try:
            value, end = _DECODER.raw_decode(attempt)
            return value, attempt[end:]
        except ValueError:
            pass
    try:  # Python literal style: single quotes, True/None
        return ast.literal_eval(s.strip()), ""
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None


def _is_question_obj(v: Any) -> bool:
    return isinstance(v, dict) and any(str(k).strip().lower() in QUESTION_KEYS for k in v)


def _unwrap(value: Any, strict: bool) -> list[Any] | None:
    """The question items inside a parsed value; None when the value holds no question list at all.

    In `strict` mode (scanning fragments of a broken output) only question-like objects count, so that stray
    fragments such as a `[3]` source list are not mistaken for items.
    """
    if isinstance(value, list):
        if strict:
            found = [v for v in value if _is_question_obj(v)]
            return found or None
        out: list[Any] = []
        for v in value:
            inner = _unwrap(v, strict=True) if isinstance(v, dict) and not _is_question_obj(v) else None
            out.extend(inner if inner is not None else [v])
        return out
    if isinstance(value, dict):
        if _is_question_obj(value):
            return [value]
        lowered = {str(k).strip().lower(): v for k, v in value.items()}
        for key in _LIST_KEYS:
            if isinstance(lowered.get(key), list):
                return _unwrap(lowered[key], strict=False)
        for v in value.values():  # {"anything": [ {question...}, ... ]}
            if isinstance(v, list) and any(_is_question_obj(x) for x in v):
                return _unwrap(v, strict=False)
        if not strict and any(isinstance(v, list) and not v for v in lowered.values()):
            return []  # {"questions": []}-like under another name: the model chose to write none
        return None
    return None


def _scan(text: str) -> list[Any]:
    """Picks every complete question object (or list of them) out of a broken or truncated output."""
    out: list[Any] = []
    i = 0
    n = len(text)
    while i < n:
        j = min((k for k in (text.find("{", i), text.find("[", i)) if k >= 0), default=-1)
        if j < 0:
            break
        value: Any = _FAIL
        end = j + 1
        try:
            value, length = _DECODER.raw_decode(text[j:])
            end = j + length
        except ValueError:
            pass
        if value is _FAIL:
            single = _single_object_literal(text, j)
            if single is not None:
                value, end = single
        items = _unwrap(value, strict=True) if value is not _FAIL else None
        if items:
            out.extend(items)
            i = end
        else:
            i = j + 1
    return out


def _single_object_literal(text: str, start: int) -> tuple[Any, int] | None:
    """A Python-literal dict (single quotes) starting at `start`, up to its first closing brace."""
    if text[start] != "{":
        return None
    close = text.find("}", start)
    if close < 0:
        return None
    try:
        value = ast.literal_eval(text[start : close + 1])
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None
    return (value, close + 1) if isinstance(value, dict) else None
