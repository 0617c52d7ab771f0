"""Hostile config input (issue 23): misspelt keys anywhere an agent setting is read, files that are not UTF-8,
duplicate YAML keys, a NaN learning rate. Each is one line at load, before any model loads, from the real
`inboxrl` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inboxrl.agent.config import AgentConfig, load_agent_config
from inboxrl.configfile import ConfigFileError, read_config_file
from inboxrl.tools.inbox import ToolsConfig
from inboxrl.training.config import TrainConfig, TrainConfigError

CLI = "from inboxrl.cli import app; app()"
REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CLI, *args], check=False, capture_output=True, text=True,
                          timeout=120)


def _one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    err = " ".join(r.stderr.split())
    for w in words:
        assert w in err, err


def test_set_with_a_misspelt_key_is_refused_before_anything_runs(enron_store, questions_path, tmp_path):
    """`--set max_turn=3` used to run 10 turns and exit 0."""
    r = _cli("eval", "--db", str(enron_store), "--questions", str(questions_path), "--model", "m",
             "--base-url", "http://127.0.0.1:9/v1", "--judge", "lexical", "--out", str(tmp_path / "o"),
             "--set", "max_turn=3")
    _one_line_error(r, "max_turn", "unknown setting")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigFileError, match="max_turn: unknown setting"):
        load_agent_config(None, ["max_turn=3"])


@pytest.mark.parametrize("text,bad", [
    ("max_turns: 3\nrefuse_repeated_call: false\n", "refuse_repeated_call"),
    ("agent:\n  max_turns: 3\n  temprature: 0.5\n", "temprature"),
    ("tools:\n  body_char_limt: 900\n", "tools.body_char_limt"),
])
def test_an_agent_config_file_with_a_misspelt_key_is_refused(tmp_path, text, bad):
    p = tmp_path / "agent.yaml"
    p.write_text(text)
    with pytest.raises(ConfigFileError, match=f"{bad}: unknown setting"):
        load_agent_config(p)


def test_agent_tools_is_typed_as_the_tools_config():
    cfg = AgentConfig.model_validate({"tools": {"body_char_limit": 900}})
    assert isinstance(cfg.tools, ToolsConfig) and cfg.tools.body_char_limit == 900


def _train_yaml(tmp_path: Path, agent: str) -> Path:
    base = (REPO / "configs" / "smoke.yaml").read_text()
    p = tmp_path / "train.yaml"
    p.write_text(base + agent)
    return p


@pytest.mark.parametrize("agent,bad", [
    ("agent:\n  max_turn: 3\n", "agent.max_turn"),
    ("agent:\n  tools:\n    snipet_tokens: 5\n", "agent.tools.snipet_tokens"),
])
def test_a_training_config_with_a_misspelt_agent_key_fails_at_load(tmp_path, agent, bad):
    """A typo under agent.tools used to pass validation and fail with a traceback at the first rollout."""
    p = _train_yaml(tmp_path, agent)
    with pytest.raises(TrainConfigError, match=f"{bad}: unknown setting"):
        TrainConfig.load(p)
    with pytest.raises(TrainConfigError, match="agent.max_turn: unknown setting"):
        TrainConfig.load(_train_yaml(tmp_path, ""), {"agent.max_turn": 3})


def test_a_nan_learning_rate_is_called_what_it_is(tmp_path):
    with pytest.raises(TrainConfigError, match="learning_rate: Input should be a finite number"):
        TrainConfig.load(_train_yaml(tmp_path, ""), {"learning_rate": float("nan")})


def test_duplicate_yaml_keys_are_refused(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("max_turns: 3\ntemperature: 0.5\nmax_turns: 7\n")
    with pytest.raises(ConfigFileError, match="duplicate key 'max_turns' .line 3"):
        read_config_file(p)
    p.write_text("tools:\n  snippet_tokens: 5\n  snippet_tokens: 6\n")
    with pytest.raises(ConfigFileError, match="duplicate key 'snippet_tokens'"):
        read_config_file(p)
    p.write_text("a: {x: 1}\nb: {x: 2}\n")  # the same key in two mappings is fine
    assert read_config_file(p) == {"a": {"x": 1}, "b": {"x": 2}}


def test_a_config_that_is_not_utf8_is_one_line_in_search_eval_and_train(enron_store, questions_path, tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("max_turns: 3 # réglage\n".encode("latin-1"))
    r = _cli("search", "research", "--db", str(enron_store), "--inbox", "vince.kaminski@enron.com",
             "--config", str(bad))
    _one_line_error(r, "not UTF-8")
    r = _cli("eval", "--db", str(enron_store), "--questions", str(questions_path), "--model", "m",
             "--base-url", "http://127.0.0.1:9/v1", "--judge", "lexical", "--out", str(tmp_path / "o"),
             "--config", str(bad))
    _one_line_error(r, "not UTF-8")
    r = _cli("train", "--config", str(bad))
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "not UTF-8" in " ".join(r.stderr.split())
