"""Training and validation questions: loading, the grounded filter, and the fixed split.

The split must never leak: a question used for validation (and for the before/after evaluation) is never trained
on. It is decided per question from a hash of its id and a salt, so it does not depend on which other questions are
in the file, which are grounded in a given store, or the order of the file: the same question is on the same side
in every run and every tool that asks (`inboxrl train` writes both sides to `RUN_DIR/data/` for `inboxrl eval`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from inboxrl.agent.config import AgentConfig
from inboxrl.questions.schema import Question, load_questions
from inboxrl.training.config import DataSettings


def is_validation(question_id: str, salt: str, fraction: float) -> bool:
    """True when the question belongs to the validation side of the fixed split."""
    h = hashlib.sha1(f"{salt}:{question_id}".encode()).hexdigest()
    return int(h[:12], 16) / float(16 ** 12) < fraction


@dataclass
class QuestionSplit:
    train: list[Question]
    val: list[Question]
    n_loaded: int = 0
    n_grounded: int | None = None  # None: the store could not tell (no grounding helper)
    dropped: dict[str, int] = field(default_factory=dict)
    regrounded: int = 0  # training questions grounded by answer evidence (training.evidence)

    def write(self, out_dir: Path) -> None:
        """Both sides as question files, so `inboxrl eval --questions RUN_DIR/data/val.jsonl` runs the same set."""
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, qs in (("train", self.train), ("val", self.val)):
            with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as f:
                for q in qs:
                    f.write(q.model_dump_json() + "\n")
        (out_dir / "split.json").write_text(json.dumps({
            "n_loaded": self.n_loaded, "n_grounded": self.n_grounded, "regrounded": self.regrounded,
            "dropped": self.dropped,
            "train_ids": [q.id for q in self.train], "val_ids": [q.id for q in self.val]}, indent=1))


def _grounded(db: str, questions: list[Question]) -> set[str] | None:
    from inboxrl.evaluation.run import grounded_ids

    return grounded_ids(db, questions)


def load_split(data: DataSettings, agent_cfg: AgentConfig | None = None) -> QuestionSplit:
    """Loads the questions and applies grounded-only, the fixed split and the limits.

    With a separate `val_questions` file the split still applies to both files: a train-file question on the
    validation side is dropped from training, and a validation-file question on the train side is dropped from
    validation, so the two never overlap even when the files do. With `reground_train`, training-side questions
    that are not grounded get a chance through answer evidence, searched with `agent_cfg`'s tools.
    """
    train_all = load_questions(data.train_questions)
    val_all = load_questions(data.val_questions) if data.val_questions else train_all
    n_loaded = len({q.id for q in train_all} | {q.id for q in val_all})
    dropped: dict[str, int] = {}
    n_grounded = None
    regrounded: list[Question] = []
    if data.grounded_only:
        pool = {q.id: q for q in [*train_all, *val_all]}
        ok = _grounded(data.db, list(pool.values()))
        if ok is not None:
            n_grounded = len(ok)
            dropped["not_grounded"] = len(pool) - len(ok)
            val_all = [q for q in val_all if q.id in ok]
            if data.reground_train:
                from inboxrl.training.evidence import reground

                candidates = [q for q in train_all if q.id not in ok
                              and not is_validation(q.id, data.split_salt, data.val_fraction)]
                regrounded, report = reground(candidates, data.db, agent_cfg or AgentConfig(),
                                              min_coverage=data.reground_min_coverage)
                held_out = [q for q in val_all if is_validation(q.id, data.split_salt, data.val_fraction)]
                regrounded, shared = _without_validation_sources(data.db, regrounded, held_out)
                dropped["not_grounded"] -= len(regrounded)
                dropped.update({f"reground_{k}": v for k, v in report.skipped.items()})
                dropped["reground_source_of_a_validation_question"] = shared
            train_all = [q for q in train_all if q.id in ok] + regrounded
    train = [q for q in train_all if not is_validation(q.id, data.split_salt, data.val_fraction)]
    val = [q for q in val_all if is_validation(q.id, data.split_salt, data.val_fraction)]
    # A stable order (by id) so that limits pick the same questions whatever the file order.
    train.sort(key=lambda q: q.id)
    val.sort(key=lambda q: q.id)
    if data.train_limit is not None:
        train = train[: data.train_limit]
    if data.val_limit is not None:
        val = val[: data.val_limit]
    return QuestionSplit(train=train, val=val, n_loaded=n_loaded, n_grounded=n_grounded, dropped=dropped,
                         regrounded=len(regrounded))


def _without_validation_sources(db: str, regrounded: list[Question], val: list[Question]
                                ) -> tuple[list[Question], int]:
    """Drops re-grounded questions whose evidence mail is a validation question's source: training on another
    question about the very mail a validation question asks about would leak it."""
    from inboxrl.store.access import Store

    with Store.open(db) as store:
        held = {r for q in val for r in store.resolve_many(q.message_ids).values()}
        keep = [q for q in regrounded if not set(store.resolve_many(q.message_ids).values()) & held]
    return keep, len(regrounded) - len(keep)
