"""The LLM judge end to end with the real bundled SmolLM2 (local/smollm2-135m), its verdict cache, its lenient
parsing of what small local models write, and the judge registry. A SCRIPTED backend appears only in the tests
named for it: deterministic unparseable and backend-failure cases that a real model cannot be made to produce."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.judge.base import Verdict
from inboxrl.judge.lexical import LexicalJudge
from inboxrl.judge.llm import RESPONSE_FORMAT, JudgeError, LLMJudge, parse_verdict
from inboxrl.judge.registry import load_judge
from inboxrl.models.base import ChatRequest, ChatResponse

ITEMS = [
    ("How many Christmas cards did I ask Kevin to order?", "50 cards.", "You asked Kevin to order 50 cards."),
    ("When is Henwood's 2001 ERCOT Symposium?", "January 23, 2001", "January 25, 2001."),
    ("Who should Charles Shen report to?", "Tanya.", "I don't know."),
]


class CountingBackend:
    """Wraps a real backend and counts generate() calls and requests, to prove cache hits generate nothing."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name
        self.native_tools = getattr(inner, "native_tools", False)
        self.calls = 0
        self.requests: list[ChatRequest] = []

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        self.calls += 1
        self.requests += requests
        return self.inner.generate(requests)  # type: ignore[attr-defined]

    def end_episode(self, episode_id: str) -> None:
        self.inner.end_episode(episode_id)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def smollm2() -> object:
    from inboxrl.models.base import BackendError
    from inboxrl.models.registry import load_backend

    try:
        return load_backend("local/smollm2-135m")
    except BackendError as e:
        pytest.skip(f"bundled SmolLM2 not installed: {e}")


@pytest.mark.slow
def test_llm_judge_smollm2_end_to_end_with_cache(smollm2: object, tmp_path: Path) -> None:
    backend = CountingBackend(smollm2)
    judge = LLMJudge(backend, cache_path=tmp_path / "verdicts.sqlite", max_tokens=40)  # type: ignore[arg-type]
    first = judge.judge_many(ITEMS)
    assert len(first) == 3 and all(isinstance(v, Verdict) for v in first)
    assert all(v.judge == "local/smollm2-135m" and v.reason for v in first)
    # One batch, two requests: "I don't know" is never sent to the judge.
    assert backend.calls == 1 and len(backend.requests) == 2
    assert all(r.temperature == 0.0 and r.response_format == RESPONSE_FORMAT for r in backend.requests)
    assert first[2].accept is False and "not an attempt" in first[2].reason
    assert judge.stats["generated"] == 2
    assert judge.stats["parsed_json"] + judge.stats["parsed_lenient"] + judge.stats["unparseable"] == 2

    # Same inputs again, from a new judge over the same cache file: no generation at all, same verdicts.
    again = LLMJudge(backend, cache_path=tmp_path / "verdicts.sqlite", max_tokens=40)  # type: ignore[arg-type]
    second = again.judge_many(ITEMS)
    assert backend.calls == 1, "a cached verdict must not call the backend"
    assert [(v.accept, v.reason) for v in second] == [(v.accept, v.reason) for v in first]
    assert again.stats["cache_hits"] == 2 and again.stats["generated"] == 0

    # The cache key covers judge model, prompt version and every input text.
    other = LLMJudge(backend, cache_path=None, max_tokens=40, prompt_version="other")  # type: ignore[arg-type]
    assert other.key(*ITEMS[0]) != again.key(*ITEMS[0]) != again.key(*ITEMS[1])


@pytest.mark.slow
def test_load_judge_gives_llm_judge_for_a_model_spec(smollm2: object, tmp_path: Path) -> None:
    j = load_judge("local/smollm2-135m", cache_path=tmp_path / "c.sqlite")
    assert isinstance(j, LLMJudge) and j.name == "local/smollm2-135m" and j.backend is smollm2


def test_load_judge_lexical_and_bad_specs() -> None:
    from inboxrl.models.base import BackendError

    assert isinstance(load_judge("lexical"), LexicalJudge)
    assert isinstance(load_judge(" Lexical "), LexicalJudge)
    with pytest.raises(ValueError, match="empty judge spec"):
        load_judge("")
    with pytest.raises(BackendError, match="unknown local model"):
        load_judge("local/no-such-model-here")


@pytest.mark.parametrize("text, expected", [
    ('{"accept": true, "reason": "same number"}', (True, "same number", "json")),
    ('```json\n{"accept": false, "reason": "wrong date"}\n```', (False, "wrong date", "json")),
    ('Here is my verdict: {"accept": false, "reason": "a {brace} inside"} hope it helps',
     (False, "a {brace} inside", "json")),
    ("{'accept': True, 'reason': 'python style'}", (True, "python style", "lenient")),
    ('{"accept": "yes", "reason": "string bool"}', (True, "string bool", "lenient")),
    ('{"verdict": "reject", "reason": "other key"}', (False, "other key", "lenient")),
    ('"accept": false, "reason": "truncated', (False, "truncated", "lenient")),
    ("REJECT - the date differs", (False, "the date differs", "lenient")),
    ("The answer is: 650 796 8163", None),
    ('{"reason": "no verdict"}', None),
    ("", None),
])
def test_parse_verdict_reads_what_small_models_write(text: str, expected: tuple | None) -> None:
    assert parse_verdict(text) == expected


def scripted(replies: list[ChatResponse]) -> ScriptedBackend:
    """SCRIPTED: replies with fixed texts or errors, in turn, for the deterministic cases only."""
    return ScriptedBackend(reply=lambda r, n: replies[(n - 1) % len(replies)])


def test_llm_judge_scripted_backend_unparseable_is_a_counted_reject(tmp_path: Path) -> None:
    j = LLMJudge(scripted([ChatResponse(text="The answer is: 650 796 8163")]),  # type: ignore[arg-type]
                 cache_path=tmp_path / "c.sqlite")
    v = j.judge("What is Nick's cell phone number?", "650 796 8163", "650 796 8163")
    assert v.accept is False and v.reason.startswith("unparseable judge output")
    assert j.stats["unparseable"] == 1


def test_llm_judge_scripted_backend_dead_endpoint_raises_one_item_error_rejects() -> None:
    dead = LLMJudge(scripted([ChatResponse(error="connection refused")]))  # type: ignore[arg-type]
    with pytest.raises(JudgeError, match="connection refused"):
        dead.judge_many(ITEMS[:2])
    mixed = LLMJudge(scripted([ChatResponse(text='{"accept": true, "reason": "ok"}'),  # type: ignore[arg-type]
                                      ChatResponse(error="context window full")]))
    a, b = mixed.judge_many(ITEMS[:2])
    assert a.accept is True and b.accept is False and "context window full" in b.reason
    assert mixed.stats["errors"] == 1


def test_llm_judge_scripted_backend_identical_items_generate_once() -> None:
    backend = scripted([ChatResponse(text='{"accept": true, "reason": "ok"}')])
    j = LLMJudge(backend)  # type: ignore[arg-type]
    out = j.judge_many([ITEMS[0], ITEMS[0], ITEMS[0]])
    assert [v.accept for v in out] == [True, True, True] and j.stats["generated"] == 1


def test_llm_judge_scripted_backend_prompt_states_the_gaming_rules() -> None:
    """The LLM judge is told the lexical judge's rules against gaming (issue 20): several candidates, candidates
    beyond the golden list, hedged alternatives, a restated question. The scripted backend only records the
    prompt; what a real model makes of it is measured by `inboxrl judge calibrate --file` on the gaming sheets."""
    from inboxrl.judge.llm import GAMING_RULES, PROMPT_VERSION, SYSTEM_PROMPT

    backend = scripted([ChatResponse(text='{"accept": false, "reason": "lists several dates"}')])
    j = LLMJudge(backend)  # type: ignore[arg-type]
    shotgun = ("When is the ALP Project presentation?", "May 7 at 4:00 p.m.",
               "April 10, May 7, May 14, June 2; 1:00, 4:00, 6:00 p.m.")
    v = j.judge(*shotgun)
    assert v.accept is False and v.reason == "lists several dates"
    system = backend.requests[0].messages[0]
    assert system["role"] == "system" and system["content"] == SYSTEM_PROMPT
    text = system["content"].lower()
    for phrase in ("several candidates of the kind asked for", "dates, times, names, amounts, numbers, rooms or places",
                   "beyond the golden answer's own list", "x or possibly y", "unless the golden answer itself gives",
                   "only restates the question"):
        assert phrase in text, phrase
    assert all(rule in system["content"] for rule in GAMING_RULES)
    assert "extra correct detail are fine" not in text  # the old wording that invited extra candidates
    assert PROMPT_VERSION != "judge-v1"  # verdicts cached under the old prompt are not reused
    assert shotgun[2] in backend.requests[0].messages[1]["content"]
