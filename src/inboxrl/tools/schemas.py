"""Tool schemas from Python signatures, and argument checking against the same signatures.

Both come from one source (the method's signature and its Google-style docstring) so the schema the model is shown
and the validation its calls go through can never disagree. Descriptions are kept to one short line each: every
token of the tool list is prompt the 0.5B model pays for on every turn.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin

from inboxrl.tools.base import BadArgumentsError


def _doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """(summary line, {arg: description}) from a Google-style docstring."""
    doc = inspect.getdoc(fn) or ""
    summary = doc.strip().split("\n\n", 1)[0].replace("\n", " ").strip()
    args: dict[str, str] = {}
    m = re.search(r"^Args:\s*\n(.*?)(?:^\S|\Z)", doc, re.DOTALL | re.MULTILINE)
    if m:
        current = None
        for line in m.group(1).splitlines():
            am = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", line)
            if am and (current is None or len(line) - len(line.lstrip()) <= 4):
                current = am.group(1)
                args[current] = am.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    return summary, args


def _is_optional(tp: Any) -> bool:
    return (get_origin(tp) in (Union, types.UnionType)) and type(None) in get_args(tp)


def _members(tp: Any) -> tuple[Any, ...]:
    if get_origin(tp) in (Union, types.UnionType):
        return tuple(a for a in get_args(tp) if a is not type(None))
    return (tp,)


def _expects_list(tp: Any) -> bool:
    return any(get_origin(a) is list for a in _members(tp))


def _json_type(tp: Any) -> dict[str, Any]:
    members = _members(tp)
    if _expects_list(tp):  # list[str] | str is shown as an array: one schema shape, the string is accepted anyway
        return {"type": "array", "items": {"type": "string"}}
    if members == (int,):
        return {"type": "integer"}
    if members == (float,):
        return {"type": "number"}
    if members == (bool,):
        return {"type": "boolean"}
    return {"type": "string"}


def _params(fn: Callable[..., Any]) -> list[tuple[inspect.Parameter, Any]]:
    return _params_of(getattr(fn, "__func__", fn))  # bound methods are new objects each time; their function is not


@functools.lru_cache(maxsize=64)
def _params_of(fn: Callable[..., Any]) -> list[tuple[inspect.Parameter, Any]]:
    hints = typing.get_type_hints(fn)
    sig = inspect.signature(fn)
    return [(p, hints.get(name, str)) for name, p in sig.parameters.items() if name != "self"]


def function_schema(fn: Callable[..., Any], name: str | None = None) -> dict[str, Any]:
    """The OpenAI `tools` entry for a bound method or function."""
    summary, arg_docs = _doc_parts(fn)
    props: dict[str, Any] = {}
    required: list[str] = []
    for p, tp in _params(fn):
        prop = _json_type(tp)
        if arg_docs.get(p.name):
            prop["description"] = arg_docs[p.name]
        props[p.name] = prop
        if p.default is inspect.Parameter.empty:
            required.append(p.name)
    return {
        "type": "function",
        "function": {
            "name": name or fn.__name__,
            "description": summary,
            "parameters": {"type": "object", "properties": props, "required": required},
        },
    }


def _coerce(tool: str, name: str, value: Any, tp: Any) -> Any:
    members = _members(tp)
    if value is None:
        if _is_optional(tp):
            return None
        raise BadArgumentsError(f"{tool}: '{name}' must not be null")
    if _expects_list(tp):
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)):
            out = []
            for v in value:
                if isinstance(v, str):
                    out.append(v)
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    out.append(str(v))
                else:
                    raise BadArgumentsError(f"{tool}: '{name}' must be a list of strings")
            return out
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [str(value)]
        raise BadArgumentsError(f"{tool}: '{name}' must be a list of strings")
    if members == (int,):
        if isinstance(value, bool):
            raise BadArgumentsError(f"{tool}: '{name}' must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,9}\s*", value):
            return int(value)
        raise BadArgumentsError(f"{tool}: '{name}' must be an integer")
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise BadArgumentsError(f"{tool}: '{name}' must be a string")


def coerce_arguments(tool: str, fn: Callable[..., Any], arguments: Any) -> dict[str, Any]:
    """Checks a model's arguments against `fn`'s signature; returns them coerced, or raises BadArgumentsError.

    Forgives what a small model commonly gets almost right (a string where a list is expected, "5" for 5, the
    arguments as a JSON string); refuses what it gets wrong (missing, invented or nonsensical arguments), so that
    the format-error count in the rubric means something.
    """
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise BadArgumentsError(f"{tool}: arguments must be a JSON object") from None
    if not isinstance(arguments, dict):
        raise BadArgumentsError(f"{tool}: arguments must be a JSON object")
    params = _params(fn)
    known = {p.name for p, _ in params}
    extra = [str(k) for k in arguments if k not in known]
    if extra:
        raise BadArgumentsError(
            f"{tool}: unknown argument(s) {', '.join(repr(e[:40]) for e in extra[:5])}; "
            f"allowed: {', '.join(sorted(known))}"
        )
    out: dict[str, Any] = {}
    for p, tp in params:
        if p.name in arguments and arguments[p.name] is None and p.default is not inspect.Parameter.empty:
            continue  # "max_results": null means "the default", not an error
        if p.name in arguments:
            out[p.name] = _coerce(tool, p.name, arguments[p.name], tp)
        elif p.default is inspect.Parameter.empty:
            raise BadArgumentsError(f"{tool}: missing required argument '{p.name}'")
    return out
