"""Tool schemas are valid JSON schema built from the signatures, and `call()` validates against the same thing."""

from __future__ import annotations

import json

import jsonschema
import pytest

from inboxrl.tools.base import BadArgumentsError, Scope, UnknownToolError
from inboxrl.tools.inbox import TOOL_NAMES, InboxTools, tool_schemas

pytest_plugins = ["tools_store"]  # the tools_db / tools_raw fixtures

INBOX = "vince.kaminski@enron.com"


@pytest.fixture(scope="module")
def tools(tools_db):
    t = InboxTools(tools_db, Scope(inbox=INBOX, before="2001-06-01"))
    yield t
    t.close()


def test_schemas_are_valid_openai_tool_schemas(tools):
    schemas = tools.schemas()
    assert schemas == tool_schemas()
    assert [s["function"]["name"] for s in schemas] == list(TOOL_NAMES)
    for s in schemas:
        assert s["type"] == "function" and s["function"]["description"]
        params = s["function"]["parameters"]
        jsonschema.Draft202012Validator.check_schema(params)
        assert set(params["required"]) <= set(params["properties"])
        for prop in params["properties"].values():
            assert prop.get("description") and len(prop["description"]) <= 80  # short: prompt tokens cost
    by_name = {s["function"]["name"]: s["function"]["parameters"] for s in schemas}
    assert by_name["search_inbox"]["required"] == ["keywords"]
    assert by_name["search_inbox"]["properties"]["keywords"]["type"] == "array"
    assert by_name["search_inbox"]["properties"]["max_results"]["type"] == "integer"
    assert by_name["read_email"]["required"] == ["message_id"]
    assert by_name["return_final_answer"]["required"] == ["answer", "sources"]
    assert len(json.dumps(schemas)) < 2000


def test_calls_that_validate_against_the_schema_are_accepted(tools):
    validators = {s["function"]["name"]: jsonschema.Draft202012Validator(s["function"]["parameters"])
                  for s in tools.schemas()}
    calls = [
        ("search_inbox", {"keywords": ["research", "group"], "from_addr": "shirley", "max_results": 3}),
        ("search_inbox", {"keywords": ["model"], "sent_after": "2000-01-01", "sent_before": "2001-01-01"}),
        ("read_email", {"message_id": "<nope@x>"}),
        ("return_final_answer", {"answer": "I don't know", "sources": []}),
    ]
    for name, args in calls:
        validators[name].validate(args)
        result = tools.call(name, args)
        assert result.ok or result.error == "not_found"


@pytest.mark.parametrize("name,args,coerced_ok", [
    ("search_inbox", {"keywords": "research group"}, True),  # a string where a list is expected
    ("search_inbox", {"keywords": ["research", 2001]}, True),  # numbers in the list become words
    ("search_inbox", {"keywords": ["research"], "max_results": "5"}, True),  # numeric string for an int
    ("search_inbox", {"keywords": ["research"], "max_results": 5.0}, True),
    ("search_inbox", {"keywords": ["research"], "max_results": None, "from_addr": None}, True),  # null = default
    ("search_inbox", '{"keywords": ["research"]}', True),  # arguments as a JSON string
    ("return_final_answer", {"answer": "42", "sources": "<a@b>"}, True),
])
def test_forgivable_mistakes_are_coerced(tools, name, args, coerced_ok):
    result = tools.call(name, args)
    assert result.ok is coerced_ok
    if name == "search_inbox":
        assert result.ids and all(i.startswith("<") for i in result.ids)


@pytest.mark.parametrize("name,args", [
    ("search_inbox", {}),  # missing required
    ("search_inbox", {"keywords": ["a"], "required": ["keywords"]}),  # invented argument (Qwen does this)
    ("search_inbox", {"keywords": [["nested"]]}),
    ("search_inbox", {"keywords": {"a": 1}}),
    ("search_inbox", {"keywords": ["a"], "max_results": "ten"}),
    ("search_inbox", {"keywords": ["a"], "max_results": True}),
    ("search_inbox", {"keywords": ["a"], "max_results": -3}),
    ("search_inbox", "not json"),
    ("search_inbox", ["keywords"]),
    ("read_email", {"id": "<a@b>"}),
    ("read_email", {"message_id": None}),
    ("read_email", {"message_id": "<a@b>", "offset": -1}),
    ("return_final_answer", {"answer": "x"}),
    ("return_final_answer", {"answer": {"text": "x"}, "sources": []}),
])
def test_malformed_calls_raise_bad_arguments(tools, name, args):
    with pytest.raises(BadArgumentsError) as e:
        tools.call(name, args)
    assert name in str(e.value)


@pytest.mark.parametrize("name", ["search", "search_emails", "", None, "SEARCH_INBOX", "x" * 10_000])
def test_unknown_tools_raise_and_name_the_real_ones(tools, name):
    with pytest.raises(UnknownToolError) as e:
        tools.call(name, {"keywords": ["a"]})
    assert "search_inbox" in str(e.value) and len(str(e.value)) < 200
