"""Question generation: batches of an inbox's mail -> model -> parse -> validate -> realism -> dedup -> support.

Any inbox and any backend: the model is whatever `ChatBackend` is passed, and everything about its output is
distrusted and counted. The run is deterministic given the seed and the model's answers (batch order, question dates
and ids derive from content, not from timing or concurrency), and the cache makes a repeated run free.
"""

from __future__ import annotations

import hashlib
import sqlite3
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inboxrl.models.base import BackendError, ChatBackend, ChatRequest, ChatResponse
from inboxrl.questions import prompt as gen_prompt
from inboxrl.questions import support as sup
from inboxrl.questions.cache import CallCache, call_key
from inboxrl.questions.config import GenerateConfig
from inboxrl.questions.counts import StageCount, merge, new_stages
from inboxrl.questions.filters import NearDuplicateIndex, query_date, realistic_enough
from inboxrl.questions.parse import parse_output
from inboxrl.questions.schema import Question
from inboxrl.questions.select import Batch, select_batches
from inboxrl.questions.validate import Candidate, DropReason, Rejected, validate_items
from inboxrl.store.access import Store

# A backend that fails this many batches in a row before any success is dead: stop instead of failing them all.
DEAD_BACKEND_AFTER = 4

ProgressFn = Callable[[int, int], None]  # (advance by, new total)


@dataclass
class Call:
    key: str
    request: ChatRequest
    message_ids: list[str]
    kind: str
    prompt_version: str


@dataclass
class CallOutcome:
    text: str | None
    error: str | None
    cached: bool
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class GenerationResult:
    questions: list[Question]
    stages: dict[str, StageCount]
    per_inbox: dict[str, dict[str, StageCount]]
    rejected: list[Rejected]
    owners: dict[str, str] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)

    def questions_per_inbox(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for q in self.questions:
            out[q.inbox_address] = out.get(q.inbox_address, 0) + 1
        return out


class LazyBackend:
    """Loads the model on the first call that misses the cache: a fully cached re-run never pays for loading
    weights. `name` is the spec as given, which is what backends record as their name."""

    native_tools = False
    template_tools = False

    def __init__(self, spec: str, loader: Callable[[], ChatBackend]) -> None:
        self.name = spec.strip()
        self._loader = loader
        self._backend: ChatBackend | None = None

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        if self._backend is None:
            self._backend = self._loader()
        return self._backend.generate(requests)

    def end_episode(self, episode_id: str) -> None:
        if self._backend is not None:
            self._backend.end_episode(episode_id)


def owner_name(conn: sqlite3.Connection | Store, inbox: str) -> str:
    """The display name most often written next to the address: what the owner is called in their own mail."""
    return Store.of(conn).owner_name(inbox)


def question_id(inbox: str, message_ids: list[str], question: str) -> str:
    return hashlib.sha1(f"{inbox}\x1f{'|'.join(message_ids)}\x1f{question}".encode()).hexdigest()[:16]


class _Caller:
    """Sends calls to a backend in groups of `concurrency`, through the cache, and keeps time and token totals."""

    def __init__(self, backend: ChatBackend, cache: CallCache, concurrency: int) -> None:
        self.backend = backend
        self.cache = cache
        self.concurrency = concurrency
        self.model_time_s = 0.0
        self.calls_made = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.failures_in_a_row = 0
        self.any_success = False

    def run(self, calls: list[Call]) -> list[CallOutcome]:
        outcomes: list[CallOutcome | None] = [None] * len(calls)
        misses: list[int] = []
        for i, c in enumerate(calls):
            hit = self.cache.get(c.key)
            if hit is not None:
                outcomes[i] = CallOutcome(hit["text"], None, True, hit["latency_s"], hit["prompt_tokens"],
                                          hit["completion_tokens"])
            else:
                misses.append(i)
        for start in range(0, len(misses), self.concurrency):
            group = misses[start : start + self.concurrency]
            reqs = [calls[i].request for i in group]
            t0 = time.perf_counter()
            try:
                responses = self.backend.generate(reqs)
            except BackendError:
                raise
            except Exception as e:  # noqa: BLE001 - a backend bug must not lose the run: count it against these batches
                responses = [ChatResponse(error=f"{type(e).__name__}: {e}") for _ in reqs]
            finally:
                for r in reqs:
                    try:
                        self.backend.end_episode(r.episode_id)
                    except Exception:  # noqa: BLE001, S110 - cleanup must not hide the batch's result
                        pass
            wall = time.perf_counter() - t0
            self.model_time_s += wall
            self.calls_made += len(group)
            if len(responses) != len(reqs):
                responses = [ChatResponse(error=f"backend returned {len(responses)} answers for {len(reqs)}")
                             for _ in reqs]
            for i, resp in zip(group, responses):
                c = calls[i]
                self.prompt_tokens += resp.prompt_tokens
                self.completion_tokens += resp.completion_tokens
                latency = resp.latency_s or wall / len(group)
                if resp.error:
                    outcomes[i] = CallOutcome(None, resp.error, False, latency)
                    self.failures_in_a_row += 1
                    if not self.any_success and self.failures_in_a_row >= DEAD_BACKEND_AFTER:
                        raise BackendError(f"model {self.backend.name} failed {self.failures_in_a_row} calls in a "
                                           f"row and never answered: {resp.error}")
                    continue
                self.failures_in_a_row = 0
                self.any_success = True
                self.cache.put(c.key, kind=c.kind, model=self.backend.name, prompt_version=c.prompt_version,
                               message_ids=c.message_ids, text=resp.text, prompt_tokens=resp.prompt_tokens,
                               completion_tokens=resp.completion_tokens, latency_s=latency)
                outcomes[i] = CallOutcome(resp.text, None, False, latency, resp.prompt_tokens,
                                          resp.completion_tokens)
        assert all(o is not None for o in outcomes)
        return outcomes  # type: ignore[return-value]


def _request(kind: str, model: str, version: str, ids: list[str], messages: list[dict[str, str]],
             max_tokens: int, cfg: GenerateConfig, response_format: dict[str, Any]) -> Call:
    temperature = cfg.temperature if kind == "generate" else 0.0  # a check should not be a dice roll
    key = call_key(kind, model, version, ids,
                   {"messages": messages, "max_tokens": max_tokens, "temperature": temperature, "seed": cfg.seed})
    req = ChatRequest(episode_id=f"qgen-{kind}-{key[:12]}-{uuid.uuid4().hex[:6]}", messages=messages,
                      max_tokens=max_tokens, temperature=temperature, seed=cfg.seed,
                      response_format=response_format)
    return Call(key, req, ids, kind, version)


def generate_questions(
    conn: sqlite3.Connection,
    inboxes: list[str],
    backend: ChatBackend,
    cfg: GenerateConfig,
    cache: CallCache | None = None,
    support: ChatBackend | sup.LexicalSupport | None = None,
    progress: ProgressFn | None = None,
) -> GenerationResult:
    cache = cache or CallCache(None)
    caller = _Caller(backend, cache, cfg.concurrency)
    sup_caller = _Caller(support, cache, cfg.concurrency) if support is not None and not isinstance(
        support, sup.LexicalSupport) else None
    lexical = support if isinstance(support, sup.LexicalSupport) else None
    inboxes = list(dict.fromkeys(a.strip().lower() for a in inboxes))
    t_start = time.perf_counter()

    selections = [select_batches(conn, inbox, cfg) for inbox in inboxes]
    total_batches = sum(len(s.batches) for s in selections)
    if progress:
        progress(0, total_batches)

    questions: list[Question] = []
    rejected: list[Rejected] = []
    per_inbox: dict[str, dict[str, StageCount]] = {}
    owners: dict[str, str] = {}
    batch_latencies: list[float] = []  # answered batches of this run
    cached_latencies: list[float] = []  # what the cached batches took when they were made

    for sel in selections:
        inbox = sel.inbox
        st = new_stages()
        per_inbox[inbox] = st
        owners[inbox] = name = owner_name(conn, inbox)
        planned_emails = sum(len(b.emails) for b in sel.batches)
        s = st["selection"]
        s.seen, s.kept = sel.in_inbox, planned_emails
        s.drop("bad_date", sel.bad_date)
        s.drop("body_length_out_of_bounds", sel.body_out_of_bounds)
        s.drop("over_max_batches", sel.in_inbox - sel.bad_date - sel.body_out_of_bounds - planned_emails)
        st["generation"].seen = len(sel.batches)
        if not sel.batches:
            st["selection"].notes["inboxes_without_usable_mail"] = 1
        dedup = NearDuplicateIndex(cfg.dedup_threshold)
        kept_here = 0
        remaining = list(sel.batches)
        while remaining:
            if cfg.per_inbox is not None and kept_here >= cfg.per_inbox:
                st["generation"].drop("skipped_target_reached", len(remaining))
                if progress:
                    progress(len(remaining), total_batches)
                break
            wave, remaining = remaining[: cfg.concurrency], remaining[cfg.concurrency :]
            calls = [
                _request("generate", backend.name, gen_prompt.PROMPT_VERSION, b.message_ids,
                         gen_prompt.build_messages(b, name, cfg.max_questions_per_batch, cfg.email_chars),
                         cfg.max_tokens, cfg, gen_prompt.RESPONSE_SCHEMA)
                for b in wave
            ]
            outcomes = caller.run(calls)
            survivors: list[Candidate] = []
            for b, out in zip(wave, outcomes):
                if out.cached:
                    st["generation"].notes["cache_hits"] = st["generation"].notes.get("cache_hits", 0) + 1
                    cached_latencies.append(out.latency_s)
                elif out.error is None:
                    batch_latencies.append(out.latency_s)
                survivors.extend(_filter_batch(b, out, st, dedup, cfg, rejected))
            checker = sup_caller or lexical
            if checker is not None:
                survivors = _support(survivors, checker, st["support"], cfg, rejected)
            else:
                st["support"].seen += len(survivors)
                st["support"].kept += len(survivors)
                st["support"].notes["checker"] = "none"
            for c in survivors:
                pi = st["per_inbox"]
                pi.seen += 1
                if cfg.per_inbox is not None and kept_here >= cfg.per_inbox:
                    pi.drop(DropReason.OVER_PER_INBOX.value)
                    rejected.append(Rejected(DropReason.OVER_PER_INBOX, inbox, c.batch_index, c.raw))
                    continue
                pi.kept += 1
                kept_here += 1
                questions.append(_to_question(c, cfg))
            if progress:
                progress(len(wave), total_batches)

    totals: dict[str, StageCount] = {}
    for st in per_inbox.values():
        merge(totals, st)
    if not per_inbox:
        totals = new_stages()
    wall = time.perf_counter() - t_start
    calls_made = caller.calls_made
    timing = {
        "wall_s": round(wall, 3),
        "model_calls": calls_made,
        "model_time_s": round(caller.model_time_s, 3),
        "s_per_batch": round(caller.model_time_s / calls_made, 3) if calls_made else None,
        "s_per_batch_median": round(statistics.median(batch_latencies), 3) if batch_latencies else None,
        # Including cached batches at the latency recorded when they were made: a resumed run's real cost.
        "s_per_batch_incl_cached": round(statistics.fmean(batch_latencies + cached_latencies), 3)
        if batch_latencies or cached_latencies else None,
        "prompt_tokens": caller.prompt_tokens,
        "completion_tokens": caller.completion_tokens,
        "cache_hits": cache.hits,
        "cache_misses": cache.misses,
    }
    if sup_caller is not None:
        timing.update(support_calls=sup_caller.calls_made, support_time_s=round(sup_caller.model_time_s, 3))
    return GenerationResult(questions, totals, per_inbox, rejected, owners, timing)


def _filter_batch(b: Batch, out: CallOutcome, st: dict[str, StageCount], dedup: NearDuplicateIndex,
                  cfg: GenerateConfig, rejected: list[Rejected]) -> list[Candidate]:
    gen = st["generation"]
    if out.error is not None:
        gen.drop(DropReason.BACKEND_ERROR.value)
        rejected.append(Rejected(DropReason.BACKEND_ERROR, b.inbox, b.index, None, out.error[:500]))
        return []
    parsed = parse_output(out.text or "")
    if not parsed.ok:
        gen.drop(DropReason.UNPARSEABLE.value)
        rejected.append(Rejected(DropReason.UNPARSEABLE, b.inbox, b.index, (out.text or "")[:2000]))
        return []
    gen.kept += 1
    if parsed.mode == "salvaged":
        gen.notes["salvaged_outputs"] = gen.notes.get("salvaged_outputs", 0) + 1
    if not parsed.items:
        gen.notes["outputs_with_no_questions"] = gen.notes.get("outputs_with_no_questions", 0) + 1

    val = st["validation"]
    val.seen += len(parsed.items)
    cands, drops = validate_items(b, parsed.items)
    val.kept += len(cands)
    for r in drops:
        val.drop(r.reason.value)
    rejected.extend(drops)

    # Within a batch the more realistic of two near-duplicates should win, so look at the best first.
    cands.sort(key=lambda c: -c.how_realistic)
    real, dd = st["realism"], st["dedup"]
    out_cands: list[Candidate] = []
    for c in cands:
        real.seen += 1
        if not realistic_enough(c.how_realistic, cfg.realism_threshold):
            real.drop(DropReason.BELOW_REALISM_THRESHOLD.value)
            rejected.append(Rejected(DropReason.BELOW_REALISM_THRESHOLD, b.inbox, b.index, c.raw,
                                     f"{c.how_realistic:.2f} < {cfg.realism_threshold}"))
            continue
        real.kept += 1
        dd.seen += 1
        if not dedup.add(c.question):
            dd.drop(DropReason.NEAR_DUPLICATE.value)
            rejected.append(Rejected(DropReason.NEAR_DUPLICATE, b.inbox, b.index, c.raw))
            continue
        dd.kept += 1
        out_cands.append(c)
    return out_cands


def _support(cands: list[Candidate], checker: _Caller | sup.LexicalSupport, stage: StageCount,
             cfg: GenerateConfig, rejected: list[Rejected]) -> list[Candidate]:
    stage.seen += len(cands)
    stage.notes["checker"] = checker.name if isinstance(checker, sup.LexicalSupport) else checker.backend.name
    outcomes: list[CallOutcome | sup.SupportVerdict]
    if isinstance(checker, sup.LexicalSupport):
        outcomes = [checker.check(c) for c in cands]
    else:
        calls = [
            _request("support", checker.backend.name, sup.SUPPORT_PROMPT_VERSION, c.message_ids,
                     sup.support_messages(c, cfg.email_chars), cfg.support_max_tokens, cfg, sup.RESPONSE_SCHEMA)
            for c in cands
        ]
        outcomes = list(checker.run(calls)) if calls else []
    kept: list[Candidate] = []
    for c, out in zip(cands, outcomes):
        if isinstance(out, sup.SupportVerdict):
            verdict = out
        elif out.error is not None:
            stage.drop(DropReason.SUPPORT_CHECK_FAILED.value)
            rejected.append(Rejected(DropReason.SUPPORT_CHECK_FAILED, c.inbox, c.batch_index, c.raw, out.error))
            continue
        else:
            verdict = sup.parse_support(out.text or "")
        if verdict.supported is None:
            stage.drop(DropReason.SUPPORT_CHECK_FAILED.value)
            rejected.append(Rejected(DropReason.SUPPORT_CHECK_FAILED, c.inbox, c.batch_index, c.raw,
                                     f"unreadable verdict: {verdict.reason}"))
        elif not verdict.supported:
            stage.drop(DropReason.UNSUPPORTED.value)
            rejected.append(Rejected(DropReason.UNSUPPORTED, c.inbox, c.batch_index, c.raw, verdict.reason))
        else:
            stage.kept += 1
            kept.append(c)
    return kept


def _to_question(c: Candidate, cfg: GenerateConfig) -> Question:
    ids = c.message_ids
    qid = question_id(c.inbox, ids, c.question)
    latest = max(e.date for e in c.sources)
    return Question(
        id=qid,
        question=c.question,
        answer=c.answer,
        message_ids=ids,
        how_realistic=round(c.how_realistic, 4),
        inbox_address=c.inbox,
        query_date=query_date(latest, cfg.seed, qid, cfg.min_days_after, cfg.max_days_after),
    )
