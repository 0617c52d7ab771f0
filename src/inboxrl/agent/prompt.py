"""The system prompt and the short messages the harness sends back to the model.

The prompt is paid on every turn of every rollout of a 0.5B model on CPU, so it is short. Harness messages avoid
concrete example words: small models copy them into their next search.
"""

from __future__ import annotations

import json
import re
from typing import Any

SYSTEM_TEMPLATE = (
    "You are an email research agent. You answer the user's question by searching their inbox, {inbox}. "
    "Today is {date}.\n"
    "You have {max_turns} turns. Search with 1-3 single words (names, rare terms), not phrases; if a search "
    "finds nothing, try fewer or other words. Read the most promising email, then call return_final_answer with a short answer and the message "
    "ids you used as sources. If you cannot find the answer, answer \"I don't know\"."
)

JSON_MODE_TEMPLATE = (
    "\n\nEach turn, reply with exactly one of these tool calls as JSON, filled in, and nothing else:\n{tools}"
)


_PY_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "object": "dict"}


def _type_name(spec: dict[str, Any]) -> str:
    t = spec.get("type") or "any"
    if isinstance(t, list):  # ["string", "null"]
        t = next((x for x in t if x != "null"), "any")
    if t == "array":
        item = (spec.get("items") or {}).get("type", "any")
        return f"list[{_PY_TYPES.get(item, item)}]"
    return _PY_TYPES.get(t, t)


def required_only(schemas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The schemas with their optional arguments removed. The tools still accept them; the model just is not
    shown them, because a small model fills in every argument it sees, with made-up values, and finds nothing."""
    out = []
    for s in schemas:
        s = json.loads(json.dumps(s))
        fn = s.get("function", s)
        params = fn.get("parameters") or {}
        req = set(params.get("required", []))
        params["properties"] = {k: v for k, v in (params.get("properties") or {}).items() if k in req}
        out.append(s)
    return out


def _placeholder(name: str, spec: dict[str, Any]) -> Any:
    t = _type_name(spec)
    if t.startswith("list["):
        item = "message_id" if name in ("sources", "message_ids") else name.rstrip("s") or "item"
        return [f"<{item}>"]
    if t == "int":
        return 0
    return f"<{name}>"


def call_templates(schemas: list[dict[str, Any]]) -> str:
    """One line per tool: the exact JSON call with placeholders, then what it does. Tiny models copy a concrete
    shape far more reliably than they follow a signature plus a generic format line (our pilot: Qwen-0.5B put a
    person's name in "name" when shown `{"name": "<tool>", ...}`). Placeholders are in angle brackets so that
    a copied one is an obvious non-word, not a plausible search term."""
    lines = []
    for s in schemas:
        fn = s.get("function", s)
        props = (fn.get("parameters") or {}).get("properties") or {}
        args = {k: _placeholder(k, v) for k, v in props.items()}
        desc = (fn.get("description") or "").strip().split("\n")[0].split(". ")[0].rstrip(".")
        call = json.dumps({"name": fn["name"], "arguments": args})
        # The description comes first: a model that copies a line then ends its output with the JSON.
        lines.append(f"- {desc}: {call}" if desc else f"- {call}")
    return "\n".join(lines)


def call_prefix(schema: dict[str, Any]) -> str:
    """The opening of a JSON call of this tool, up to where the model writes its first required argument's value,
    in exactly the shape `call_templates` shows: `{"name": "search_inbox", "arguments": {"keywords": [`, or
    `..."answer": "` for a string. A local model handed this as the start of its reply can only complete a call of
    that tool."""
    fn = schema.get("function", schema)
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    first = next((k for k in params.get("required", []) if k in props), None)
    head = json.dumps({"name": fn["name"], "arguments": {}})[:-2]  # '{"name": "x", "arguments": {'
    if first is None:
        return head
    kind = _type_name(props[first])
    opening = "[" if kind.startswith("list[") else '"' if kind == "str" else ""
    return f"{head}{json.dumps(first)}: {opening}"


def system_prompt(inbox: str, query_date: str, max_turns: int, tool_schemas: list[dict[str, Any]] | None) -> str:
    """`tool_schemas` is given only in JSON-in-text mode without template tools: then the prompt must describe
    the tools and the exact call format itself."""
    text = SYSTEM_TEMPLATE.format(inbox=inbox, date=query_date, max_turns=max_turns)
    if tool_schemas:
        text += JSON_MODE_TEMPLATE.format(tools=call_templates(tool_schemas))
    return text


# --- harness messages -------------------------------------------------------------------------------------------

def unparseable_message(json_mode: bool) -> str:
    if json_mode:
        return ('Error: no tool call found. Reply with only one JSON tool call, '
                '{"name": "<tool>", "arguments": {...}}, or call return_final_answer.')
    return "Error: no tool call found. Call one of the tools, or call return_final_answer."


def unknown_tool_message(name: str, known: list[str]) -> str:
    return f"Error: there is no tool named {json.dumps(name)}. The tools are: {', '.join(known)}."


def bad_arguments_message(name: str, detail: str) -> str:
    return f"Error: bad arguments for {name}: {detail}"


REPEATED_CALL_MESSAGE = ("Refused: you already made this exact call. Use different keywords, read a different "
                         "email, or call return_final_answer.")


def repeated_call_message(unread_ids: list[str]) -> str:
    """The refusal, with concrete next steps when there are any: ids from earlier results not read yet."""
    if unread_ids:
        return (f"Refused: you already made this exact call. Read another result ({', '.join(unread_ids[:2])}), "
                "search with different keywords, or call return_final_answer.")
    return REPEATED_CALL_MESSAGE


ANSWER_BEFORE_SEARCH_MESSAGE = ("Refused: search the inbox with search_inbox before answering; the answer must come "
                                "from the emails.")

# Words that never make a useful search on their own: question words, pronouns, the inbox owner's own words.
_STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be been before being below between both but by can
could did do does doing down during each few for from further had has have having he her here hers him his how i if
in into is it its itself just me more most my myself no nor not now of off on once only or other our ours out over
own same she should so some such than that the their them then there these they this those through to too under
until up very was we were what when where which while who whom why will with would you your yours please tell told
say said know get got make made go going want wanted need needed ask asked time date day last next new
""".split())


def question_keywords(question: str, inbox: str = "", limit: int = 3) -> list[str]:
    """Two or three search words taken from the question: names and other capitalised words first, then the
    longest other words. Small models copy the example in a message far more reliably than they follow an
    instruction, so the refusal shows a call built from the user's own words rather than a placeholder."""
    own = {w for w in re.split(r"[^a-z0-9]+", inbox.lower()) if w}
    words: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for i, m in enumerate(re.finditer(r"[A-Za-z][A-Za-z0-9'&.-]*[A-Za-z0-9]|[0-9][0-9,./-]*[0-9]", question)):
        w = m.group(0).rstrip(".").removesuffix("'s")
        low = w.lower()
        if len(w) < 3 or low in _STOPWORDS or low in own or low in seen:
            continue
        seen.add(low)
        named = w[0].isupper() or w[0].isdigit()
        words.append((0 if named else 1, -len(w) if not named else i, w))
    return [w for _, _, w in sorted(words)[:limit]]


def answer_before_search_message(question: str = "", inbox: str = "") -> str:
    """The refusal of an answer given before any search, with a search call to copy when the question has words
    worth searching for."""
    kws = question_keywords(question, inbox)
    if not kws:
        return ANSWER_BEFORE_SEARCH_MESSAGE
    example = json.dumps({"name": "search_inbox", "arguments": {"keywords": kws}})
    return f"{ANSWER_BEFORE_SEARCH_MESSAGE} For example: {example}"


LAST_TURN_NOTE = "\n[Your next turn is the last one: call return_final_answer now.]"
