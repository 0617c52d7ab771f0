"""Reading question lists out of small-model output: every shape we have seen, and no crash on anything."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inboxrl.questions.parse import parse_output
from inboxrl.questions.support import parse_support

ITEM = '{"question": "When is my talk at Rice?", "answer": "May 3", "source_ids": [2], "how_realistic": 0.8}'


def _questions(text: str) -> list[str]:
    return [i["question"] for i in parse_output(text).items if isinstance(i, dict)]


def test_plain_object_with_list() -> None:
    text = '{"questions": [' + ITEM + "]}"
    assert parse_output(text).mode == "json"
    assert _questions(text) == ["When is my talk at Rice?"]


def test_code_fence_prose_and_trailing_comma() -> None:
    text = "Sure! Here they are:\n```json\n[" + ITEM + ",]\n```\nLet me know if you need more."
    assert _questions(text) == ["When is my talk at Rice?"]


def test_one_object_per_line_keeps_all() -> None:
    text = ITEM + "\n" + ITEM.replace("Rice", "UT")
    assert _questions(text) == ["When is my talk at Rice?", "When is my talk at UT?"]


def test_truncated_list_salvages_complete_items_only() -> None:
    text = '{"questions": [' + ITEM + ", " + ITEM.replace("Rice", "Baylor") + ', {"question": "Who is com'
    r = parse_output(text)
    assert r.mode == "salvaged"
    assert _questions(text) == ["When is my talk at Rice?", "When is my talk at Baylor?"]


def test_python_literal_quotes() -> None:
    text = "[{'question': 'Who called me?', 'answer': 'Jeff', 'source_ids': [1], 'how_realistic': 0.7}]"
    assert _questions(text) == ["Who called me?"]


def test_raw_newline_inside_string() -> None:
    text = '{"questions": [{"question": "What is\nmy budget?", "answer": "$5k", "source_ids": [1]}]}'
    assert _questions(text) == ["What is\nmy budget?"]


def test_think_block_is_ignored() -> None:
    text = '<think>maybe {"question": "wrong"}</think>' + ITEM
    assert _questions(text) == ["When is my talk at Rice?"]


def test_prose_only_is_unparseable() -> None:
    r = parse_output("I am sorry, these emails do not contain any questions.")
    assert r.mode == "none" and not r.ok and r.items == []


def test_empty_list_is_parsed_not_unparseable() -> None:
    r = parse_output('{"questions": []}')
    assert r.ok and r.items == []


def test_list_of_strings_is_parsed_into_bad_items() -> None:
    """Validation, not parsing, must count these: they are items, just not question objects."""
    r = parse_output('["When is it?", "Who?"]')
    assert r.ok and r.items == ["When is it?", "Who?"]


def test_stray_source_list_in_broken_output_is_not_an_item() -> None:
    r = parse_output('here: "source_ids": [3] and nothing else {')
    assert not r.ok


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300) | st.from_regex(r"[\[\]{}\",:' a-z0-9]{0,80}"))
def test_never_raises(text: str) -> None:
    r = parse_output(text)
    assert r.mode in ("json", "salvaged", "none")
    assert isinstance(r.items, list)


def test_support_verdicts() -> None:
    assert parse_support('{"supported": true, "reason": "email 1 says so"}').supported is True
    assert parse_support('```json\n{"supported": "no", "reason": "x"}\n```').supported is False
    assert parse_support("Yes, the first email states it.").supported is True
    assert parse_support("No. It is not mentioned.").supported is False
    assert parse_support("The weather is nice").supported is None
