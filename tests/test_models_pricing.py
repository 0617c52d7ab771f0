"""The price table: endpoint prices per token, local models per machine-hour share."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxrl.models.pricing import PriceTable, PriceTableError, estimate_cost, load_price_table


def test_known_endpoint_model_costs_tokens() -> None:
    # gpt-4o-mini: $0.15 / 1M input, $0.60 / 1M output
    assert estimate_cost("gpt-4o-mini", 1_000_000, 1_000_000, table=PriceTable()) == pytest.approx(0.75)
    assert estimate_cost("gpt-4o-mini", 2000, 100, table=PriceTable()) == pytest.approx(0.00036)


def test_dated_and_prefixed_names_match_their_family() -> None:
    t = PriceTable()
    assert t.price("gpt-4o-mini-2024-07-18") == t.models["gpt-4o-mini"]
    assert t.price("openai/gpt-4o") == t.models["gpt-4o"]
    assert t.price("gpt-4o-2024-08-06") == t.models["gpt-4o"]  # not gpt-4o-mini
    assert t.price("some-unknown-model") is None
    assert t.estimate("some-unknown-model", 10_000, 10_000) is None  # unknown, not free


def test_local_models_cost_their_share_of_machine_time() -> None:
    t = PriceTable(local_usd_per_hour=0.36)
    assert t.estimate("local/qwen2.5-coder-0.5b", 10**6, 10**6, wall_time_s=100.0) == pytest.approx(0.01)
    assert t.estimate("local/smollm2-135m", 5, 5) == 0.0


def test_yaml_table_extends_defaults(tmp_path: Path) -> None:
    p = tmp_path / "prices.yaml"
    p.write_text("local_usd_per_hour: 1.8\nmodels:\n  my-vllm-model: {input_per_1m: 1.0, output_per_1m: 2.0}\n")
    t = load_price_table(p)
    assert t.local_usd_per_hour == 1.8
    assert t.estimate("my-vllm-model", 1_000_000, 500_000) == pytest.approx(2.0)
    assert "gpt-4o" in t.models
    assert "gpt-4o" not in load_price_table(p, merge_defaults=False).models


def test_toml_and_json_tables(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text('[models.x]\ninput_per_1m = 3.0\noutput_per_1m = 4.0\n')
    (tmp_path / "p.json").write_text('{"models": {"y": {"input_per_1m": 5}}}')
    assert load_price_table(tmp_path / "p.toml").price("x").output_per_1m == 4.0  # type: ignore[union-attr]
    assert load_price_table(tmp_path / "p.json").price("y").input_per_1m == 5.0  # type: ignore[union-attr]


@pytest.mark.parametrize("content,fragment", [
    ("models: [1, 2", "not valid yaml"),
    ("models:\n  x: {input_per_1m: -1}\n", "models.x.input_per_1m"),
    ("- a\n- b\n", "must be a mapping"),
])
def test_bad_tables_give_one_line_errors(tmp_path: Path, content: str, fragment: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(content)
    with pytest.raises(PriceTableError, match=fragment) as e:
        load_price_table(p)
    assert "\n" not in str(e.value)


def test_missing_table_file(tmp_path: Path) -> None:
    with pytest.raises(PriceTableError, match="cannot read"):
        load_price_table(tmp_path / "nope.yaml")


def test_env_var_selects_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "prices.yaml"
    p.write_text("local_usd_per_hour: 3.6\n")
    monkeypatch.setenv("INBOXRL_PRICES", str(p))
    assert estimate_cost("local/x", 0, 0, wall_time_s=10) == pytest.approx(0.01)
