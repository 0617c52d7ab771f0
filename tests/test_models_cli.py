"""`inboxrl models ...`: listing, preparing and checking models from the shell."""

from __future__ import annotations

import json
import socket

from typer.testing import CliRunner

from inboxrl.cli import app

runner = CliRunner()


def test_list_json_shows_both_bundled_models() -> None:
    r = runner.invoke(app, ["models", "list", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["spec"]: row for row in json.loads(r.stdout)}
    assert set(rows) == {"local/qwen2.5-coder-0.5b", "local/smollm2-135m"}
    assert rows["local/smollm2-135m"]["installed"] is True


def test_prepare_is_instant_once_converted_and_rejects_unknown_names() -> None:
    r = runner.invoke(app, ["models", "prepare", "smollm2-135m", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["spec"] == "local/smollm2-135m"
    bad = runner.invoke(app, ["models", "prepare", "gpt-17"])
    assert bad.exit_code == 2 and "not a bundled model: gpt-17" in bad.output


def test_check_a_dead_endpoint_fails_with_one_line() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = runner.invoke(app, ["models", "check", "--model", "some-model", "--base-url", f"http://127.0.0.1:{port}/v1"])
    assert r.exit_code == 1
    assert "cannot reach" in r.output and "connection refused" in r.output
    assert "Traceback" not in r.output


def test_check_a_bad_spec() -> None:
    r = runner.invoke(app, ["models", "check", "--model", "local/"])
    assert r.exit_code == 1 and "say which local model" in r.output
