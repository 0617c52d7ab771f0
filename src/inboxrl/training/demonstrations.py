"""Golden demonstrations for the supervised warm start: search -> read the source -> the golden answer.

Why: GRPO can only reinforce right answers the policy already samples, and the bundled model rarely samples one
(docs/history/code-notes.md). A few epochs of supervised learning on golden episodes of the *training* questions show the
policy the shape of a right episode (which hit to open, a short answer that reaches `sources`) before GRPO starts.

A demonstration is not a second episode implementation: it is an ordinary episode of `agent.runner.run_episodes`
with the training harness and the real tools, whose replies are teacher-forced (`ChatRequest.demonstration`) by a
local backend over the policy's own tokenizer. The ids land in the trajectory exactly where sampled ids would, so
the splice and the mask of `training.rollout.trajectory_sample` turn it into training data unchanged, and the judge
and rubric score it like any rollout (a demonstration that does not score as planned is dropped and counted).

Each training question whose source a search from the question's own words can find gives a "correct"
demonstration. A share of them (`dont_know_fraction`) also gives a "don't know" one: a search, a read of a hit that
is *not* the source, then "I don't know" - so the warm start does not teach answering whatever was read.
`negatives` chooses that search. "other_search": one that misses every source, whose
words differ from the correct demonstration's, so the words alone can tell the two apart. "same_search": the first
search whose hits hold a source *and* other mail; the negative reads its best other hit, and that question's correct
demonstration reads the source from the same search, so the pair differs only in the mail read - the policy's
most common mistake. Questions without a negative keep their most specific search, which often finds the source
alone; nearly every question with a negative has a search with more than one hit (`benchmarks/negatives.py`).
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.prompt import question_keywords
from inboxrl.models.base import ChatBackend, ChatRequest, ChatResponse
from inboxrl.questions.schema import Question
from inboxrl.tools.base import ToolQueryError, normalise_id
from inboxrl.trajectory import Trajectory

DONT_KNOW = "I don't know"
Kind = Literal["correct", "dont_know"]
Negatives = Literal["other_search", "same_search"]


@dataclass
class Plan:
    """The replies of one golden episode, turn by turn, as whole JSON calls."""

    question: Question
    kind: Kind
    replies: list[str]
    partner: Plan | None = None  # a negative's correct twin from the same search, used instead when it is drawn


@dataclass
class DemoReport:
    """What became of every training question (counted skips, never silent ones)."""

    plans: int = 0
    twins: int = 0  # negatives drawn with a correct twin from the same search ("same_search"; 0 for "other_search")
    kept: dict[str, int] = field(default_factory=lambda: {"correct": 0, "dont_know": 0})
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)


def keyword_candidates(question: Question) -> list[list[str]]:
    """Searches a user could type, from most to least specific: the question's three key words, then each pair,
    then each word alone."""
    kws = question_keywords(question.question, question.inbox_address, limit=3)
    out: list[list[str]] = []
    for n in range(len(kws), 0, -1):
        for combo in itertools.combinations(kws, n):
            if list(combo) not in out:
                out.append(list(combo))
    return out


def plan_question(question: Question, tools: Any, report: DemoReport, negatives: Negatives = "other_search"
                  ) -> tuple[Plan | None, Plan | None]:
    """The golden episodes of one question: (correct, don't know). "correct": search, read a source, answer.
    "don't know": search, read a mail that is not a source, "I don't know". With "other_search" the correct one
    uses the first candidate search whose hits include a source, and the negative the top hit of the first search
    that misses every source (else the best other hit of the first search that found one). With "same_search" the
    negative uses the first search whose hits hold a source and other mail, when there is one, and carries as its
    `partner` the correct episode of that search. (None, None) when no candidate finds a source (counted)."""
    sources = {normalise_id(m) for m in question.message_ids}
    first_found: tuple[list[str], str] | None = None  # the first search that found a source, and that source
    missed: tuple[list[str], str] | None = None  # a search that found no source, and its top hit
    pair: tuple[list[str], str, str] | None = None  # a search that found a source and other mail: both
    for kws in keyword_candidates(question):
        try:
            hits = tools.search_inbox(keywords=kws)
        except ToolQueryError:
            continue
        ids = [str(h["message_id"]) for h in hits]
        found = [i for i in ids if normalise_id(i) in sources]
        others = [i for i in ids if normalise_id(i) not in sources]
        if found and others and pair is None:
            pair = (kws, found[0], others[0])
        if found and first_found is None:
            first_found = (kws, found[0])
        elif ids and not found and missed is None:
            missed = (kws, ids[0])
    if first_found is None:
        report.skip("source_not_found")
        return None, None
    partner = None
    negative: tuple[list[str], str] | None
    if negatives == "same_search" and pair is not None:
        negative = (pair[0], pair[2])
        partner = _correct(question, pair[0], pair[1])
    else:
        negative = missed or ((pair[0], pair[2]) if pair else None)
    found_plan = _correct(question, *first_found)
    if negative is None:
        return found_plan, None
    kws, other = negative
    return found_plan, Plan(question, "dont_know", [
        _call("search_inbox", keywords=kws), _call("read_email", message_id=other),
        _call("return_final_answer", answer=DONT_KNOW, sources=[])], partner=partner)


def _correct(question: Question, kws: list[str], source: str) -> Plan:
    return Plan(question, "correct", [
        _call("search_inbox", keywords=kws), _call("read_email", message_id=source),
        _call("return_final_answer", answer=question.answer, sources=[source])])


class DemonstrationBackend:
    """Plays each episode's plan through a local backend with teacher forcing. The plan's reply must start with
    the harness's forced opening (`assistant_prefix`); the rest is the demonstration."""

    native_tools = False

    def __init__(self, inner: ChatBackend, plans: dict[str, Plan]):
        self.inner = inner
        self.plans = plans  # question id -> plan
        self.name = inner.name
        self.template_tools = inner.template_tools
        self.turn: dict[str, int] = {}

    def generate(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        forced: list[ChatRequest] = []
        errors: dict[int, str] = {}
        for i, r in enumerate(requests):
            plan = self.plans.get(r.episode_id.rsplit("-", 1)[0])
            k = self.turn.get(r.episode_id, 0)
            self.turn[r.episode_id] = k + 1
            reply = plan.replies[k] if plan and k < len(plan.replies) else None
            prefix = r.assistant_prefix or ""
            if reply is None or not reply.startswith(prefix):
                errors[i] = f"demonstration has no reply for turn {k}" if reply is None else \
                    f"demonstration for turn {k} does not start with the forced opening {prefix!r}"
                reply = prefix  # keeps the batch shape; the episode is dropped below
            forced.append(ChatRequest(**{**r.__dict__, "demonstration": reply[len(prefix):]}))
        out = self.inner.generate(forced)
        return [ChatResponse(error=errors[i]) if i in errors else resp for i, resp in enumerate(out)]

    def end_episode(self, episode_id: str) -> None:
        self.inner.end_episode(episode_id)


def build_demonstrations(questions: Sequence[Question], db: str, agent_cfg: AgentConfig, judge: Any,
                         reward_cfg: Any, backend: Any, *, dont_know_fraction: float = 0.25, seed: int = 0,
                         negatives: Negatives = "other_search") -> tuple[list[Trajectory], DemoReport]:
    """Golden episodes of `questions`, played and scored; only those that ended as planned are returned."""
    from inboxrl.agent.runner import make_tools, open_store, run_episodes
    from inboxrl.scoring.reward import tier
    from inboxrl.scoring.score import score_trajectories

    report = DemoReport()
    rng = random.Random(seed)
    conn = open_store(db)
    plans: list[Plan] = []
    dont_knows: list[Plan] = []
    try:
        for q in questions:
            found, negative = plan_question(q, make_tools(conn, q, agent_cfg), report, negatives)
            plans += [found] if found else []
            dont_knows += [negative] if found and negative else []
    finally:
        conn.close()
    # Exactly the asked share of "don't know" demonstrations, from questions chosen by the seed; a drawn negative's
    # twin from the same search takes the place of its question's correct demonstration.
    drawn = rng.sample(dont_knows, min(len(dont_knows), round(dont_know_fraction * len(plans))))
    twins = {n.question.id: n.partner for n in drawn if n.partner is not None}
    plans = [twins.get(p.question.id, p) for p in plans] + drawn
    report.twins = len(twins)
    report.plans = len(plans)
    if not plans:
        return [], report
    # One question record per plan, so the backend can find an episode's plan from its id ("<question id>-<hex>").
    staged = [p.question if p.kind == "correct" else p.question.model_copy(update={"id": f"{p.question.id}#{p.kind}"})
              for p in plans]
    by_question = {q.id: p for q, p in zip(staged, plans)}
    demo = DemonstrationBackend(backend, by_question)
    cfg = agent_cfg.model_copy(update={"temperature": 0.0, "seed": None})
    trajs = run_episodes(staged, demo, db, cfg, batch_size=len(staged))
    score_trajectories(trajs, judge, reward_cfg, db=db, max_turns=cfg.max_turns)
    kept: list[Trajectory] = []
    for t in trajs:
        plan = by_question.get(t.question_id)
        if plan is None or t.rubric is None:
            report.skip("not_scored")
            continue
        want = "correct" if plan.kind == "correct" else "no_answer"
        got = tier(t.rubric)
        if got != want or len(t.turns) != len(plan.replies):
            report.skip(f"{plan.kind}_ended_{got}")
            continue
        t.meta["demonstration"] = plan.kind
        kept.append(t)
        report.kept[plan.kind] += 1
    return kept, report
