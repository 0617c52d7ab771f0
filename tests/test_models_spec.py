"""Model spec strings and `load_backend`'s one-line errors (no model is loaded here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxrl.models.base import BackendError
from inboxrl.models.registry import load_backend
from inboxrl.models.spec import parse_spec


@pytest.mark.parametrize("spec,kind,model,bundled,adapter", [
    ("local/qwen2.5-coder-0.5b", "local", "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b", None),
    ("local/Qwen2.5-Coder-0.5B-Instruct", "local", "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b", None),
    ("local/smollm2-135m", "local", "smollm2-135m", "smollm2-135m", None),
    ("local/HuggingFaceTB/SmolLM2-360M-Instruct", "local", "HuggingFaceTB/SmolLM2-360M-Instruct", None, None),
    ("local/qwen2.5-coder-0.5b+runs/x/final", "local", "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b", "runs/x/final"),
    ("gpt-4o-mini", "endpoint", "gpt-4o-mini", None, None),
    ("Qwen/Qwen2.5-7B-Instruct", "endpoint", "Qwen/Qwen2.5-7B-Instruct", None, None),
    ("qwen2.5:0.5b", "endpoint", "qwen2.5:0.5b", None, None),
    ("  gemini-2.5-flash ", "endpoint", "gemini-2.5-flash", None, None),
])
def test_specs_parse(spec: str, kind: str, model: str, bundled: str | None, adapter: str | None) -> None:
    ms = parse_spec(spec)
    assert (ms.kind, ms.model, ms.bundled, ms.adapter) == (kind, model, bundled, adapter)
    assert ms.raw == spec.strip()


def test_local_directory_spec(tmp_path: Path) -> None:
    plain = tmp_path / "mymodel"
    plain.mkdir()
    assert parse_spec(f"local/{plain}").model == str(plain)


@pytest.mark.parametrize("spec,fragment", [
    ("", "empty model spec"),
    ("   ", "empty model spec"),
    ("local/", "say which local model"),
    ("local/qwen2.5-coder-0.5b+", "adapter directory"),
    ("local/no-such-model", "unknown local model 'no-such-model'"),
    ("local/some dir", "must not contain spaces"),
])
def test_bad_specs_raise_one_line(spec: str, fragment: str) -> None:
    with pytest.raises(BackendError, match=fragment) as e:
        load_backend(spec)
    assert "\n" not in str(e.value)


def test_base_url_with_a_local_model_names_it_on_the_endpoint() -> None:
    """`inboxrl serve` serves local models under their specs; with --base-url the spec is asked for there."""
    b = load_backend("local/smollm2-135m", base_url="http://127.0.0.1:1/v1")
    assert type(b).__name__ == "OpenAIBackend"
    assert b.name == "local/smollm2-135m"
    assert getattr(b, "model", None) == "local/smollm2-135m"


def test_missing_adapter_directory(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="LoRA adapter not found"):
        load_backend(f"local/smollm2-135m+{tmp_path}/missing", shared=False)


def test_missing_local_directory_or_offline_hub_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="cannot load local model") as e:
        load_backend("local/nobody-xyz/not-a-real-model-123", shared=False)
    assert "\n" not in str(e.value)
