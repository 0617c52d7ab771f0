"""The tool-call parser over the shapes real small models write (see FACTS: bare JSON, parentheses, invented
arguments, a keyword repeated until the token limit, several calls in a row, Python-dict style)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inboxrl.models.toolcalls import parse_tool_calls
from inboxrl.trajectory import FormatErrorKind

TOOLS = {"search_inbox", "read_email", "return_final_answer"}

# (model output, expected [(name, arguments)], expected error or None)
OK_CASES = [
    # Qwen-0.5B's usual form: bare JSON, nothing else.
    ('{"name": "search_inbox", "arguments": {"keywords": ["gas", "price"]}}',
     [("search_inbox", {"keywords": ["gas", "price"]})]),
    # The template's own form, with tags.
    ('<tool_call>\n{"name": "read_email", "arguments": {"message_id": "<12.JavaMail.evans@thyme>"}}\n</tool_call>',
     [("read_email", {"message_id": "<12.JavaMail.evans@thyme>"})]),
    # A fenced block with "parameters" and trailing prose.
    ('```json\n{"name": "search_inbox", "parameters": {"keywords": ["Enron", "weather"]}}\n```\nLet me search.',
     [("search_inbox", {"keywords": ["Enron", "weather"]})]),
    # Wrapped in parentheses.
    ('({"name": "search_inbox", "arguments": {"keywords": ["model"]}})',
     [("search_inbox", {"keywords": ["model"]})]),
    # Several objects in a row.
    (('{"name": "search_inbox", "arguments": {"keywords": ["a"]}}\n{"name": "read_email", "arguments": '
     '{"message_id": "m1"}}'), [("search_inbox", {"keywords": ["a"]}), ("read_email", {"message_id": "m1"})]),
    # A JSON list of calls, one with arguments as a JSON string (OpenAI wire style).
    (('[{"name": "search_inbox", "arguments": {"keywords": ["a"]}}, '
     '{"name": "read_email", "arguments": "{\\"message_id\\": \\"m1\\"}"}]'),
     [("search_inbox", {"keywords": ["a"]}), ("read_email", {"message_id": "m1"})]),
    # Python-dict style, with an escaped apostrophe and True.
    ("{'name': 'search_inbox', 'arguments': {'keywords': ['Vince\\'s', 'memo'], 'exact': True}}",
     [("search_inbox", {"keywords": ["Vince's", "memo"], "exact": True})]),
    # An invented schema-like argument is passed through: the tool, not the parser, judges argument names.
    ('{"name": "search_inbox", "arguments": {"keywords": ["a"], "required": ["keywords"]}}',
     [("search_inbox", {"keywords": ["a"], "required": ["keywords"]})]),
    # OpenAI tool_calls entry.
    (('{"type": "function", "function": {"name": "return_final_answer", '
     '"arguments": "{\\"answer\\": \\"yes\\", \\"sources\\": []}"}}'),
     [("return_final_answer", {"answer": "yes", "sources": []})]),
    # Python call syntax for a known tool.
    ('search_inbox(keywords=["gas", "price"])', [("search_inbox", {"keywords": ["gas", "price"]})]),
    # Unquoted keys.
    ('{name: "search_inbox", arguments: {keywords: ["a"]}}', [("search_inbox", {"keywords": ["a"]})]),
    # The tool's name as the only key.
    ('{"search_inbox": {"keywords": ["a"]}}', [("search_inbox", {"keywords": ["a"]})]),
    # Brackets and quotes inside strings do not confuse the scanner.
    ('{"name": "return_final_answer", "arguments": {"answer": "3pm \\"sharp\\" (room {2}]", "sources": ["<a>"]}}',
     [("return_final_answer", {"answer": '3pm "sharp" (room {2}]', "sources": ["<a>"]})]),
    # "functions." prefix and arguments written beside the name.
    ('{"name": "functions.read_email", "message_id": "m9"}', [("read_email", {"message_id": "m9"})]),
    # Prose before and after a call.
    ('I should look for the memo first.\n{"name": "search_inbox", "arguments": {"keywords": ["memo"]}}\nThen read it.',
     [("search_inbox", {"keywords": ["memo"]})]),
]


@pytest.mark.parametrize("text,expected", OK_CASES)
def test_parses_real_output_shapes(text: str, expected: list) -> None:
    r = parse_tool_calls(text, TOOLS)
    assert r.error is None, r.error_detail
    assert [(c.name, c.arguments) for c in r.calls] == expected
    assert all(c.id.startswith("call_") for c in r.calls)
    assert len({c.id for c in r.calls}) == len(r.calls)


def test_keyword_repeated_until_token_limit_is_recovered_and_flagged() -> None:
    text = '{"name": "search_inbox", "arguments": {"keywords": [' + '"Kaminski", ' * 60 + '"Kamin'
    r = parse_tool_calls(text, TOOLS)
    assert r.truncated
    assert r.error is None
    (call,) = r.calls
    assert call.arguments["keywords"] == ["Kaminski"] * 60  # the half-written element is dropped


def test_truncated_answer_string_is_kept() -> None:
    r = parse_tool_calls('{"name": "return_final_answer", "arguments": {"answer": "The deal closed on Ma', TOOLS)
    assert r.truncated
    assert r.calls[0].arguments == {"answer": "The deal closed on Ma"}


def test_truncated_repair_can_be_disabled() -> None:
    r = parse_tool_calls('{"name": "search_inbox", "arguments": {"keywords": ["a", "b', TOOLS, repair_truncated=False)
    assert r.error == FormatErrorKind.UNPARSEABLE and not r.calls


@pytest.mark.parametrize("text,kind,fragment", [
    ("The answer is 42 according to John (the boss).", FormatErrorKind.UNPARSEABLE, "no tool call"),
    ("", FormatErrorKind.UNPARSEABLE, "no tool call"),
    ("<tool_call>\nsearch for gas prices\n</tool_call>", FormatErrorKind.UNPARSEABLE, "<tool_call>"),
    ('{"name": "search_email", "arguments": {"keywords": ["a"]}}', FormatErrorKind.UNKNOWN_TOOL, "search_email"),
    ('{"name": "search_inbox", "arguments": ["a", "b"]}', FormatErrorKind.BAD_ARGUMENTS, "list"),
    ('{"name": "read_email", "arguments": "not json at all"}', FormatErrorKind.BAD_ARGUMENTS, "read_email"),
    ('search_inbox("gas", "price")', FormatErrorKind.BAD_ARGUMENTS, "by name"),
    ('search_inbox(keywords=open("/etc/passwd"))', FormatErrorKind.BAD_ARGUMENTS, "literal"),
    # A contact card is data, not a call to a tool named "John Smith".
    ('{"name": "John Smith", "email": "john@enron.com"}', FormatErrorKind.UNPARSEABLE, "no tool call"),
])
def test_failures_are_classified(text: str, kind: FormatErrorKind, fragment: str) -> None:
    r = parse_tool_calls(text, TOOLS)
    assert r.error == kind
    assert fragment in (r.error_detail or "")
    assert "\n" not in (r.error_detail or "")


def test_valid_calls_are_kept_next_to_a_rejected_one() -> None:
    text = ('{"name": "search_inbox", "arguments": {"keywords": ["a"]}}\n'
            '{"name": "delete_everything", "arguments": {}}')
    r = parse_tool_calls(text, TOOLS)
    assert r.error == FormatErrorKind.UNKNOWN_TOOL
    assert [c.name for c in r.calls] == ["search_inbox"]


def test_prose_excludes_calls_and_wrappers() -> None:
    r = parse_tool_calls('Searching now.\n<tool_call>\n{"name": "search_inbox", "arguments": {"keywords": ["x"]}}'
                         '\n</tool_call>', TOOLS)
    assert r.prose == "Searching now."
    assert r.styles[0] == "tagged"


def test_python_literals_are_never_executed() -> None:
    r = parse_tool_calls("{'name': 'search_inbox', 'arguments': {'keywords': __import__('os').getcwd()}}", TOOLS)
    assert not r.calls  # a call expression is not a literal


def test_number_of_calls_is_capped() -> None:
    text = '{"name": "search_inbox", "arguments": {"keywords": ["a"]}}' * 100
    r = parse_tool_calls(text, TOOLS)
    assert len(r.calls) == 16


_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
_args = st.dictionaries(st.text(min_size=1, max_size=10), st.one_of(_json_scalars, st.lists(_json_scalars, max_size=4)),
                        max_size=4)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(sorted(TOOLS)), args=_args, prefix=st.text(max_size=30), wrap=st.sampled_from(
    ["{}", "<tool_call>\n{}\n</tool_call>", "```json\n{}\n```", "({})"]))
def test_any_wellformed_call_roundtrips(name: str, args: dict, prefix: str, wrap: str) -> None:
    import json

    # Prose without brackets before the call: whatever the model says first must not hide the call.
    prefix = "".join(c for c in prefix if c not in "{}[]()'\"`<>")
    text = prefix + "\n" + wrap.format(json.dumps({"name": name, "arguments": args}))
    r = parse_tool_calls(text, TOOLS)
    assert [(c.name, c.arguments) for c in r.calls] == [(name, args)]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(text: str) -> None:
    r = parse_tool_calls(text, TOOLS)
    assert r.error is not None or r.calls


def test_call_syntax_quoted_inside_an_answer_is_not_a_second_call() -> None:
    text = ('{"name": "return_final_answer", "arguments": {"answer": "I ran search_inbox(keywords=[1]) twice", '
            '"sources": []}}')
    r = parse_tool_calls(text, TOOLS)
    assert [c.name for c in r.calls] == ["return_final_answer"]


# Captured from the bundled Qwen2.5-Coder-0.5B (benchmarks/bench_generation.py --dump, greedy, max_tokens=32,
# 2026-11-24): bare JSON, invented ids, and calls cut off by the token limit.
REAL_QWEN = [
    ('{"name": "read_email", "arguments": {"message_id": "1234567890"}}',
     ("read_email", {"message_id": "1234567890"}), False),
    ('{"name": "search_inbox", "arguments": {"keywords": ["Avistar System", "Desk", "Installation", "Date", "200',
     ("search_inbox", {"keywords": ["Avistar System", "Desk", "Installation", "Date"]}), True),
    (('{"name": "search_inbox", "arguments": {"keywords": ["Azurix", "Knowledge Management", "Promotion", '
     '"Vice President"]'), ("search_inbox", {"keywords": ["Azurix", "Knowledge Management", "Promotion",
                                                        "Vice President"]}), True),
    ('{"name": "read_email", "arguments": {"message_id": "<1037.107584001.JavaMail.ev',
     ("read_email", {"message_id": "<1037.107584001.JavaMail.ev"}), True),
    (('{"name": "search_inbox", "arguments": {"keywords": ["chase securities", "credit evaluation model", '
     '"meeting", "2001'), ("search_inbox", {"keywords": ["chase securities", "credit evaluation model", "meeting"]}),
     True),
]


@pytest.mark.parametrize("text,expected,truncated", REAL_QWEN)
def test_real_qwen_outputs(text: str, expected: tuple, truncated: bool) -> None:
    r = parse_tool_calls(text, TOOLS)
    assert r.error is None
    assert [(c.name, c.arguments) for c in r.calls] == [expected]
    assert r.truncated is truncated
