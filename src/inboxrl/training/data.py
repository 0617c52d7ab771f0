"""Training, validation and test questions: loading, the grounded filter, and the leak-free split.

The split must never leak: no training question shares a source mail (after alias resolution) with a validation or
test question, or is a near-duplicate of one (questions.split, the same code as `inboxrl questions split`). With a
frozen split file (`data.split_file`) validation and test are its ids, checked against its sha256; without one they
are drawn per linked group from a hash of ids and a salt, so a question is on the same side in every run whatever
the file order. Training never evaluates the test part; `inboxrl train` writes it with the others to `RUN_DIR/data/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from inboxrl.agent.config import AgentConfig
from inboxrl.questions.schema import Question, load_questions
from inboxrl.questions.split import (
    FrozenSplit,
    HeldOut,
    LeakFreeSplit,
    draw,
    held_out_by_hash,
    links,
    part_bytes,
    place,
    source_keys,
)
from inboxrl.training.config import DataSettings


def is_validation(question_id: str, salt: str, fraction: float) -> bool:
    """True when the per-id draw puts the question on the held-out side (see DataSettings.val_fraction)."""
    return draw(question_id, salt) < fraction


@dataclass
class QuestionSplit:
    train: list[Question]
    val: list[Question]
    test: list[Question] = field(default_factory=list)
    n_loaded: int = 0
    n_grounded: int | None = None  # None: the store could not tell (no grounding helper)
    dropped: dict[str, int] = field(default_factory=dict)
    regrounded: int = 0  # questions grounded by answer evidence (training.evidence), before the leak check
    leaks: LeakFreeSplit | None = None  # the ids dropped for sharing a source or a near-duplicate, and the links
    frozen_problems: list[str] = field(default_factory=list)  # how validation/test differ from the frozen file

    def write(self, out_dir: Path) -> None:
        """train.jsonl, val.jsonl, test.jsonl, so `inboxrl eval --questions RUN_DIR/data/val.jsonl` runs the same
        set; split.json says what was dropped and why."""
        import hashlib

        out_dir.mkdir(parents=True, exist_ok=True)
        info: dict[str, object] = {"n_loaded": self.n_loaded, "n_grounded": self.n_grounded,
                                   "regrounded": self.regrounded, "dropped": self.dropped,
                                   "frozen_problems": self.frozen_problems}
        for name, qs in (("train", self.train), ("val", self.val), ("test", self.test)):
            data = part_bytes(qs) if name != "train" else "".join(q.model_dump_json() + "\n" for q in qs).encode()
            (out_dir / f"{name}.jsonl").write_bytes(data)
            info[f"{name}_ids"] = [q.id for q in qs]
            info[f"{name}_sha256"] = hashlib.sha256(data).hexdigest()
        if self.leaks is not None:
            info["dropped_ids"] = self.leaks.dropped
            info["links"] = [[e.a, e.b, e.kind] for e in self.leaks.links]
        (out_dir / "split.json").write_text(json.dumps(info, indent=1))


def _grounded(db: str, questions: list[Question]) -> set[str] | None:
    from inboxrl.evaluation.run import grounded_ids

    return grounded_ids(db, questions)


def load_split(data: DataSettings, agent_cfg: AgentConfig | None = None) -> QuestionSplit:
    """Loads the questions and applies grounded-only, the leak-free split and the limits.

    Held-out questions (validation, test) are strictly grounded: every cited Message-ID resolves in the store.
    With a separate `val_questions` file, validation comes only from it and training only from the train file.
    With `reground_train`, training-side questions that are not grounded get a chance through answer evidence,
    searched with `agent_cfg`'s tools; the evidence mail is then their source for the leak check.
    """
    train_all = load_questions(data.train_questions)
    val_all = load_questions(data.val_questions) if data.val_questions else train_all
    pool = {q.id: q for q in [*val_all, *train_all]}
    train_file = {q.id for q in train_all}
    val_file = {q.id for q in val_all}
    frozen = FrozenSplit.load(data.split_file) if data.split_file else None
    dropped: dict[str, int] = {}
    n_grounded = None
    candidates = list(pool.values())
    ok: set[str] | None = None
    if data.grounded_only:
        ok = _grounded(data.db, candidates)
        if ok is not None:
            n_grounded = len(ok)
            dropped["not_grounded"] = len(pool) - len(ok)
            candidates = [q for q in candidates if q.id in ok]
    sources = source_keys(data.db, candidates)
    if frozen is not None:
        held = frozen.held_out()
    else:
        held = held_out_by_hash(candidates, links(candidates, sources), data.val_fraction, data.test_fraction,
                                data.split_salt, eligible=val_file)
    # Questions whose own draw is held out never train, grounded or not, as in every run before: re-grounding them
    # too would double the training pool (and the warm start's length).
    trainable = {i for i in train_file
                 if not is_validation(i, data.split_salt, data.val_fraction + data.test_fraction)}
    in_pool = {q.id for q in candidates}
    held = HeldOut(validation=held.validation & val_file & in_pool, test=held.test & in_pool)
    trainable -= held.validation | held.test

    regrounded: list[Question] = []
    if ok is not None and data.reground_train:
        from inboxrl.training.evidence import reground

        todo = [q for q in train_all if q.id not in ok and q.id in trainable]
        regrounded, report = reground(todo, data.db, agent_cfg or AgentConfig(),
                                      min_coverage=data.reground_min_coverage)
        dropped["not_grounded"] -= len(regrounded)
        dropped.update({f"reground_{k}": v for k, v in report.skipped.items()})
        sources.update(source_keys(data.db, regrounded))
        candidates += regrounded
    leaks = place(candidates, sources, held, trainable=trainable)
    dropped.update({k: len(v) for k, v in leaks.dropped.items()})  # not_trainable: its own draw is held out
    train, val = list(leaks.train), list(leaks.validation)  # sorted by id: limits pick the same questions
    if data.train_limit is not None:
        train = train[: data.train_limit]
    if data.val_limit is not None:
        val = val[: data.val_limit]
    return QuestionSplit(train=train, val=val, test=list(leaks.test), n_loaded=len(pool), n_grounded=n_grounded,
                         dropped=dropped, regrounded=len(regrounded), leaks=leaks,
                         frozen_problems=frozen.check(leaks) if frozen is not None else [])
