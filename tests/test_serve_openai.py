"""`inboxrl serve` with a bundled model, driven by the official `openai` SDK over a real uvicorn server on
127.0.0.1; and `inboxrl eval --base-url` against it, which must match the in-process eval of the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from inboxrl.agent.config import AgentConfig
from serve_helpers import call, running_server

MODEL = "local/smollm2-135m"
INBOX = "vince.kaminski@enron.com"


@pytest.fixture(scope="module")
def smollm2():  # type: ignore[no-untyped-def]
    from inboxrl.models.base import BackendError
    from inboxrl.models.registry import load_backend

    try:
        return load_backend(MODEL)
    except BackendError as e:
        pytest.skip(f"bundled SmolLM2 not available: {e}")


@pytest.fixture(scope="module")
def served(enron_store: Path, smollm2, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("served")
    cfg = AgentConfig(max_turns=2, max_tokens_per_turn=32)
    with running_server(enron_store, {MODEL: smollm2}, out, cfg=cfg) as (url, state):
        yield url, state, out


def _tools() -> list[dict]:
    from inboxrl.tools.inbox import tool_schemas

    return tool_schemas()


@pytest.mark.slow
def test_openai_sdk_lists_models_and_gets_tool_calls(served) -> None:  # type: ignore[no-untyped-def]
    from openai import OpenAI

    url, _, _ = served
    client = OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=600)
    assert MODEL in [m.id for m in client.models.list()]

    messages = [{"role": "system", "content": f"You search the inbox {INBOX} with tools."},
                {"role": "user", "content": "When is the Durasoft COM course?"}]
    r = client.chat.completions.create(model=MODEL, messages=messages, tools=_tools(), max_tokens=32,
                                       temperature=0, tool_choice={"type": "function",
                                                                   "function": {"name": "search_inbox"}})
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (tc,) = choice.message.tool_calls  # forced: always a call, as OpenAI's (arguments may be broken JSON)
    assert tc.function.name == "search_inbox" and tc.id
    args = tc.function.arguments
    assert "durasoft" in args.lower() or "com" in args.lower(), args
    assert r.usage is not None and r.usage.completion_tokens > 0 and r.usage.prompt_tokens > 20

    # The same request streamed: chunks reassemble to the same call (greedy decoding).
    stream = client.chat.completions.create(model=MODEL, messages=messages, tools=_tools(), max_tokens=32,
                                            temperature=0, stream=True,
                                            tool_choice={"type": "function", "function": {"name": "search_inbox"}})
    content, names, arguments, finish = "", [], "", None
    for chunk in stream:
        d = chunk.choices[0].delta
        content += d.content or ""
        for c in d.tool_calls or []:
            if c.function and c.function.name:
                names.append(c.function.name)
            arguments += (c.function.arguments or "") if c.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert names == ["search_inbox"] and arguments == args and finish == "tool_calls"
    assert content == (choice.message.content or "")

    # Without tools it is a plain chat completion.
    plain = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hello."}],
                                           max_tokens=8, temperature=0)
    assert plain.choices[0].message.tool_calls is None and plain.choices[0].message.content


@pytest.mark.slow
def test_ask_over_http_runs_the_agent(served) -> None:  # type: ignore[no-untyped-def]
    url, _, out = served
    status, _, body = call(url + "/v1/ask", {"inbox": INBOX, "question": "When is the Durasoft COM course?",
                                             "date": "2001-05-13"})
    assert status == 200, body
    r = json.loads(body)
    assert r["harness"] == "guided" and 1 <= r["turns"] <= 2  # the bundled model's default harness
    assert r["stop_reason"] in ("answered", "out_of_turns", "format_error")
    from inboxrl.trajectory import read_jsonl

    (t,) = [t for t in read_jsonl(out / "trajectories.jsonl") if t.meta["episode_id"] == r["trajectory_id"]]
    # guided: the first reply was forced to open as a search call (what SmolLM2 writes after it is its own)
    assert t.meta["forced_calls"]["0"] == "search_inbox"
    assert t.turns[0].raw_output.startswith('{"name": "search_inbox"')


@pytest.mark.slow
def test_eval_through_the_server_matches_in_process_eval(served, enron_store: Path, questions_path: Path,
                                                         tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from inboxrl.cli import app
    from inboxrl.trajectory import read_jsonl

    url, _, _ = served
    # Greedy and no retry sampling; native tools on both sides, so both send the same chat to the same weights.
    base = ["eval", "--db", str(enron_store), "--questions", str(questions_path), "--model", MODEL, "--judge",
            "lexical", "--grounded-only", "--limit", "2", "--max-turns", "2", "--concurrency", "1", "--harness",
            "free", "--set", "tool_mode=native", "--set", "retry_temperature=0", "--set", "max_tokens_per_turn=32"]
    runner = CliRunner(env={"COLUMNS": "200"})
    local = runner.invoke(app, [*base, "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    remote = runner.invoke(app, [*base, "--out", str(tmp_path / "remote"), "--base-url", url + "/v1"])
    assert remote.exit_code == 0, remote.output
    assert "harness: free" in remote.output

    def shape(run: str) -> dict[str, object]:
        return {t.question_id: ([x.raw_output for x in t.turns], [(e.name, e.arguments) for e in t.tool_events],
                                t.final_answer, t.stop_reason)
                for t in read_jsonl(tmp_path / run / "trajectories.jsonl")}

    a, b = shape("local"), shape("remote")
    assert len(a) == 2 and a == b
    ma = json.loads((tmp_path / "local" / "metrics.json").read_text())["models"][MODEL]
    mb = json.loads((tmp_path / "remote" / "metrics.json").read_text())["models"][MODEL]
    assert ma["accuracy"] == mb["accuracy"] and ma["harness"] == mb["harness"] == "free"
