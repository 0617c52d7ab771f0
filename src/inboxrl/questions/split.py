"""Splits of question sets that do not leak.

Train / validation / test by source (`split_by_source`, `inboxrl questions split FILE --db DB --out DIR`, and
training's own split). Two questions are linked when they cite the same stored mail (every copy's Message-ID
resolves to one row through the store's `aliases` table; an id the store lacks links only by its own text) or are
near-duplicates: the same text up to case and punctuation, or the same answer (answer words' Jaccard >=
ANSWER_OVERLAP, the same numbers) to questions sharing words (content words' Jaccard >= QUESTION_OVERLAP).
Validation and test never hold two linked questions, and a question linked to either does not train. The held-out
sets come from a frozen split file (ids, and a sha256 of each part's file, checked) or from a hash of the smallest
id of each group of linked questions and a salt, so a question's side does not depend on file order.

By inbox (`split_questions(how="inbox")`): a test inbox is never seen in training, so the test measures
generalisation to a new person's mail. By time: every test question is dated after every training one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inboxrl.questions.filters import jaccard, question_tokens
from inboxrl.questions.schema import Question


class SplitError(ValueError):
    """A split that cannot be made (one inbox split by inbox, an unknown test inbox)."""


def choose_test_inboxes(inboxes: list[str], test_fraction: float, seed: int,
                        explicit: list[str] | None = None) -> list[str]:
    uniq = sorted(set(inboxes))
    if explicit:
        unknown = [a for a in explicit if a not in uniq]
        if unknown:
            raise SplitError(f"test inbox not among the inboxes: {', '.join(unknown)}")
        if set(explicit) == set(uniq):
            raise SplitError("every inbox is a test inbox; leave at least one for training")
        return sorted(set(explicit))
    if len(uniq) < 2:
        raise SplitError("a split by inbox needs at least two inboxes (use --split time for one inbox)")
    n_test = min(max(1, round(test_fraction * len(uniq))), len(uniq) - 1)
    rng = random.Random(f"split:{seed}")
    return sorted(rng.sample(uniq, n_test))


def split_questions(
    questions: list[Question],
    how: Literal["inbox", "time"],
    test_fraction: float = 0.2,
    seed: int = 0,
    test_inboxes: list[str] | None = None,
    inboxes: list[str] | None = None,
) -> dict[str, list[Question]]:
    """`inboxes`: the inboxes the questions were generated from. The test inboxes are drawn from these, so the
    choice depends only on the inbox list and the seed, not on how many questions each inbox happened to yield."""
    if how == "inbox":
        universe = list(inboxes) if inboxes else [q.inbox_address for q in questions]
        test = set(choose_test_inboxes(universe, test_fraction, seed, test_inboxes))
        return {
            "train": [q for q in questions if q.inbox_address not in test],
            "test": [q for q in questions if q.inbox_address in test],
        }
    if how == "time":
        if len(questions) < 2:
            raise SplitError("a time split needs at least two questions")
        dates = sorted(q.query_date for q in questions)
        cutoff = dates[min(len(dates) - 1, max(1, round(len(dates) * (1 - test_fraction))))]
        if cutoff == dates[0]:  # every question on one day: nothing can be strictly later
            raise SplitError("all questions share one date; a time split is impossible")
        return {
            "train": [q for q in questions if q.query_date < cutoff],
            "test": [q for q in questions if q.query_date >= cutoff],
        }
    raise SplitError(f"unknown split: {how}")


# ---- train / validation / test by source ----

PARTS = ("train", "validation", "test")
ANSWER_OVERLAP = 0.8
QUESTION_OVERLAP = 0.3
_WORD = re.compile(r"[a-z0-9]+")


class LeakError(SplitError):
    """A split that would leak (frozen parts linked to each other) or a frozen file that does not match."""


def text_key(text: str) -> str:
    """The text up to case and punctuation."""
    return " ".join(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class _Words:
    text: str
    answer: frozenset[str]
    question: frozenset[str]

    @classmethod
    def of(cls, q: Question) -> _Words:
        return cls(text_key(q.question), frozenset(_WORD.findall(q.answer.lower())), question_tokens(q.question))


def _numbers(words: frozenset[str]) -> frozenset[str]:
    """The answer's dates, times, amounts: two answers one digit apart are two facts, not one."""
    return frozenset(w for w in words if any(c.isdigit() for c in w))


def _near_duplicate(a: _Words, b: _Words) -> str | None:
    if a.text == b.text:
        return "same_text"
    if a.answer and b.answer and jaccard(a.answer, b.answer) >= ANSWER_OVERLAP \
            and _numbers(a.answer) == _numbers(b.answer) \
            and jaccard(a.question, b.question) >= QUESTION_OVERLAP:
        return "same_answer"
    return None


def near_duplicate(a: Question, b: Question) -> str | None:
    """Why two questions are near-duplicates ("same_text", "same_answer"), or None."""
    return _near_duplicate(_Words.of(a), _Words.of(b))


def source_keys(db: str | Path, questions: Sequence[Question]) -> dict[str, set[str]]:
    """Question id -> its source mails: `mail:<row>` for an id the store resolves (any copy's id resolves to the one
    stored row), `id:<message id>` for one it lacks."""
    from inboxrl.store.access import Store, normalise_id

    with Store.open(db) as store:
        out: dict[str, set[str]] = {}
        for q in questions:
            resolved = store.resolve_many(q.message_ids)
            out[q.id] = {f"mail:{resolved[m]}" if m in resolved else f"id:{normalise_id(m).lower()}"
                         for m in q.message_ids if m.strip()}
        return out


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    kind: str  # "source" (a shared mail), "same_text" or "same_answer"


def links(questions: Sequence[Question], sources: dict[str, set[str]]) -> list[Link]:
    """Every pair of questions that shares a source mail or is a near-duplicate."""
    out: list[Link] = []
    by_source: dict[str, list[str]] = {}
    for q in questions:
        for s in sorted(sources.get(q.id, ())):
            by_source.setdefault(s, []).append(q.id)
    seen: set[tuple[str, str]] = set()
    for ids in by_source.values():
        for a, b in itertools.combinations(ids, 2):
            if (a, b) not in seen:
                seen.add((a, b))
                out.append(Link(a, b, "source"))
    words = [(q.id, _Words.of(q)) for q in questions]
    for i, j in sorted(_candidate_pairs([w for _, w in words])):
        (ia, wa), (ib, wb) = words[i], words[j]
        kind = _near_duplicate(wa, wb)
        if kind and (ia, ib) not in seen:
            out.append(Link(ia, ib, kind))
    return out


def _candidate_pairs(words: Sequence[_Words]) -> set[tuple[int, int]]:
    """Pairs that may be near-duplicates: the same text, or answers sharing a token of their prefix filter (answer
    sets with Jaccard >= t share a token among the |A| - ceil(t|A|) + 1 rarest of each), instead of all n^2 pairs
    (2,500 questions: 3 million)."""
    import math

    pairs: set[tuple[int, int]] = set()
    by_text: dict[str, list[int]] = {}
    freq: dict[str, int] = {}
    for i, w in enumerate(words):
        by_text.setdefault(w.text, []).append(i)
        for t in w.answer:
            freq[t] = freq.get(t, 0) + 1
    for ids in by_text.values():
        pairs.update(itertools.combinations(ids, 2))
    by_token: dict[str, list[int]] = {}
    for i, w in enumerate(words):
        rare = sorted(w.answer, key=lambda t: (freq[t], t))
        for t in rare[: len(rare) - math.ceil(ANSWER_OVERLAP * len(rare)) + 1]:
            for j in by_token.get(t, ()):
                pairs.add((j, i))
            by_token.setdefault(t, []).append(i)
    return pairs


def components(ids: Iterable[str], edges: Iterable[Link]) -> dict[str, str]:
    """Question id -> the smallest id of its component (union-find over the links)."""
    parent = {i: i for i in ids}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in edges:
        ra, rb = find(e.a), find(e.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in parent}


def draw(question_id: str, salt: str) -> float:
    """A number in [0, 1) fixed by the id and the salt (the first 12 hex digits of a SHA-1)."""
    h = hashlib.sha1(f"{salt}:{question_id}".encode()).hexdigest()
    return int(h[:12], 16) / float(16 ** 12)


@dataclass
class HeldOut:
    validation: set[str]
    test: set[str]


def held_out_by_hash(questions: Sequence[Question], edges: Sequence[Link], val_fraction: float,
                     test_fraction: float, salt: str, *, validation: set[str] | None = None,
                     eligible: set[str] | None = None) -> HeldOut:
    """Whole components go to validation (draw < val_fraction) or test (the next test_fraction); the draw is of the
    component's smallest id. With `validation` given, those ids are the validation set and test is drawn among
    components that hold none of them. Only components with an `eligible` question are held out."""
    comp = components([q.id for q in questions], edges)
    members: dict[str, list[str]] = {}
    for qid, root in comp.items():
        members.setdefault(root, []).append(qid)
    val: set[str] = set(validation or ())
    test: set[str] = set()
    for root, ids in members.items():
        if eligible is not None and not set(ids) & eligible:
            continue
        if validation is not None:
            if not set(ids) & val and draw(root, salt) < test_fraction:
                test.update(ids)
            continue
        u = draw(root, salt)
        if u < val_fraction:
            val.update(ids)
        elif u < val_fraction + test_fraction:
            test.update(ids)
    return HeldOut(validation=val, test=test)


@dataclass
class LeakFreeSplit:
    train: list[Question] = field(default_factory=list)
    validation: list[Question] = field(default_factory=list)
    test: list[Question] = field(default_factory=list)
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> question ids
    links: list[Link] = field(default_factory=list)  # the links that decided a drop

    def part(self, name: str) -> list[Question]:
        return {"train": self.train, "validation": self.validation, "test": self.test}[name]

    def write(self, out_dir: str | Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """train.jsonl, validation.jsonl, test.jsonl (sorted by id, one `model_dump_json` line each) and split.json
        with each part's ids and sha256, the dropped ids and the links that dropped them."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] = dict(extra or {})
        for name in PARTS:
            data = part_bytes(self.part(name))
            (out / f"{name}.jsonl").write_bytes(data)
            summary[name] = {"n": len(self.part(name)), "sha256": hashlib.sha256(data).hexdigest(),
                             "ids": [q.id for q in self.part(name)]}
        summary["dropped"] = self.dropped
        summary["links"] = [[e.a, e.b, e.kind] for e in self.links]
        (out / "split.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        return summary


def part_bytes(questions: Sequence[Question]) -> bytes:
    """A part's file as written: its hash is what a frozen split pins."""
    return "".join(q.model_dump_json() + "\n" for q in sorted(questions, key=lambda q: q.id)).encode("utf-8")


def place(questions: Sequence[Question], sources: dict[str, set[str]], held: HeldOut, *,
          trainable: set[str] | None = None, edges: Sequence[Link] | None = None) -> LeakFreeSplit:
    """Validation and test as `held` says; every other question trains unless it shares a source mail with a
    held-out question or is a near-duplicate of one (those are dropped, with the links that dropped them), or is
    not `trainable`. Raises LeakError when a validation and a test question are linked."""
    edges = list(edges) if edges is not None else links(questions, sources)

    def part_of(qid: str) -> str | None:
        return "validation" if qid in held.validation else "test" if qid in held.test else None

    crossing = [e for e in edges if {part_of(e.a), part_of(e.b)} == {"validation", "test"}]
    if crossing:
        pairs = ", ".join(f"{e.a}/{e.b} ({e.kind})" for e in crossing[:5])
        raise LeakError(f"validation and test questions share a source mail or are near-duplicates: {pairs}")
    reasons: dict[str, list[Link]] = {}
    for e in edges:
        for mine, other in ((e.a, e.b), (e.b, e.a)):
            if part_of(mine) is None and part_of(other) is not None:
                reasons.setdefault(mine, []).append(e)
    out = LeakFreeSplit()
    for q in sorted(questions, key=lambda q: q.id):
        side = part_of(q.id)
        if side == "validation":
            out.validation.append(q)
        elif side == "test":
            out.test.append(q)
        elif q.id in reasons:
            first = min(reasons[q.id], key=lambda e: e.kind != "source")  # a shared mail names the cause first
            held_part = part_of(first.b if first.a == q.id else first.a)
            why = f"shares_source_with_{held_part}" if first.kind == "source" else f"near_duplicate_of_{held_part}"
            out.dropped.setdefault(why, []).append(q.id)
            out.links.extend(reasons[q.id])
        elif trainable is not None and q.id not in trainable:
            out.dropped.setdefault("not_trainable", []).append(q.id)
        else:
            out.train.append(q)
    return out


@dataclass
class FrozenSplit:
    """Held-out parts pinned in the repository: their ids and the sha256 of each part's file."""

    path: Path
    validation_ids: list[str]
    test_ids: list[str]
    sha256: dict[str, str]
    meta: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> FrozenSplit:
        p = Path(path)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            return cls(path=p, validation_ids=[str(i) for i in d["validation"]["ids"]],
                       test_ids=[str(i) for i in d["test"]["ids"]],
                       sha256={k: d[k]["sha256"] for k in ("validation", "test")},
                       meta={k: v for k, v in d.items() if k not in ("validation", "test")})
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LeakError(f"cannot read frozen split {p}: {e}") from e

    def held_out(self) -> HeldOut:
        return HeldOut(validation=set(self.validation_ids), test=set(self.test_ids))

    def check(self, split: LeakFreeSplit) -> list[str]:
        """What differs between the split made and the frozen one (empty: both parts byte for byte)."""
        problems: list[str] = []
        for name, ids in (("validation", self.validation_ids), ("test", self.test_ids)):
            got = split.part(name)
            missing = sorted(set(ids) - {q.id for q in got})
            if missing:
                problems.append(f"{name}: {len(missing)} frozen questions missing (not in the file or not grounded "
                                f"in this store): {missing[:5]}")
            elif hashlib.sha256(part_bytes(got)).hexdigest() != self.sha256[name]:
                problems.append(f"{name}: the questions' text differs from the frozen sha256 {self.sha256[name]}")
        return problems


def freeze(split: LeakFreeSplit, path: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Writes the frozen split file for `split`'s validation and test parts."""
    d: dict[str, Any] = dict(meta)
    for name in ("validation", "test"):
        part = split.part(name)
        d[name] = {"n": len(part), "sha256": hashlib.sha256(part_bytes(part)).hexdigest(),
                   "ids": sorted(q.id for q in part)}
    # One line per key, the id lists kept on one line each: a diff of the file shows which ids moved.
    body = ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in d.items())
    Path(path).write_text("{\n" + body + "\n}\n", encoding="utf-8")
    return d


@dataclass
class SourceSplitResult:
    split: LeakFreeSplit
    n_loaded: int
    n_grounded: int
    frozen_problems: list[str]


def split_by_source(questions: Sequence[Question], db: str | Path, *, frozen: FrozenSplit | None = None,
                    validation_ids: set[str] | None = None, val_fraction: float = 0.2, test_fraction: float = 0.2,
                    salt: str = "inboxrl-split-v1", grounded_only: bool = True) -> SourceSplitResult:
    """The whole split from a question list and a store. Held-out parts are only ever grounded questions (every
    cited id resolves in the store); with `grounded_only=False` the others may still train, unless linked."""
    from inboxrl.questions.grounding import grounded_questions

    pool = list({q.id: q for q in questions}.values())
    grounded = {q.id for q in grounded_questions(db, pool)}
    if grounded_only:
        pool = [q for q in pool if q.id in grounded]
    sources = source_keys(db, pool)
    edges = links(pool, sources)
    if frozen is not None:
        held = frozen.held_out()
    else:
        held = held_out_by_hash(pool, edges, val_fraction, test_fraction, salt, validation=validation_ids,
                                eligible=grounded)
    held = HeldOut(validation=held.validation & grounded, test=held.test & grounded)
    split = place(pool, sources, held, edges=edges)
    return SourceSplitResult(split=split, n_loaded=len({q.id for q in questions}), n_grounded=len(grounded),
                             frozen_problems=frozen.check(split) if frozen is not None else [])
