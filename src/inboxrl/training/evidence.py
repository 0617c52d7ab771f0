"""Re-grounding training questions by answer evidence.

Why: of the 2,510 ART-E Kaminski questions only 107 cite Message-IDs present in the shared corpus, so a run had 54
training questions. The rest mostly cite copies filed in folders the corpus lacks, while the same mail is stored
under another copy's id (../shared/README.md). A question is re-grounded when a search built from its own words
finds, in its inbox and before its date, a mail whose subject and body contain every content word of the golden
answer (`min_coverage`, stemmed, stop words ignored): that mail becomes its source. Answers with fewer than
`min_answer_words` content words ("Yes.") cannot be evidenced this way and stay out.

Only training questions are re-grounded. Validation keeps the strict Message-ID grounding, so before/after numbers
stay comparable with every earlier run and with `inboxrl eval` on `RUN_DIR/data/val.jsonl`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inboxrl.agent.config import AgentConfig
from inboxrl.questions.schema import Question
from inboxrl.tools.base import ToolQueryError

_WORD = re.compile(r"[a-z0-9]+")


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning (the lexical judge's stemmer and stop words)."""
    from inboxrl.judge.facts import STOPWORDS, stem

    return {stem(w) for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS}


@dataclass
class Evidence:
    message_id: str
    coverage: float  # share of the answer's content words found in the mail
    keywords: list[str]  # the search that found it


@dataclass
class RegroundReport:
    regrounded: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def find_evidence(question: Question, answer: set[str], tools: Any, *, min_coverage: float = 1.0
                  ) -> Evidence | None:
    """The first mail, over the searches of `demonstrations.keyword_candidates`, that covers `answer` (the
    question's answer as `content_words`)."""
    from inboxrl.training.demonstrations import keyword_candidates

    best: Evidence | None = None
    read: set[str] = set()
    for kws in keyword_candidates(question):
        try:
            hits = tools.search_inbox(keywords=kws)
        except ToolQueryError:
            continue
        for h in hits:
            mid = str(h["message_id"])
            if mid in read:
                continue
            read.add(mid)
            mail = tools.read_email(mid)
            cov = len(answer & content_words(f"{mail.get('subject', '')} {mail.get('body', '')}")) / len(answer)
            if best is None or cov > best.coverage:
                best = Evidence(mid, cov, list(kws))
        if best is not None and best.coverage >= min_coverage:
            return best
    return best if best is not None and best.coverage >= min_coverage else None


def reground(questions: Sequence[Question], db: str, agent_cfg: AgentConfig, *, min_coverage: float = 1.0,
             min_answer_words: int = 2) -> tuple[list[Question], RegroundReport]:
    """Copies of `questions` whose `message_ids` name the evidence mail; questions without evidence are counted.
    The tools are the run's (`agent_cfg`): the evidence must be in what the agent's first read of the mail shows."""
    from inboxrl.agent.runner import make_tools, open_store

    report = RegroundReport()
    out: list[Question] = []
    conn = open_store(db)
    try:
        for q in questions:
            answer = content_words(q.answer)
            if len(answer) < min_answer_words:
                report.skip("answer_too_short")
                continue
            ev = find_evidence(q, answer, make_tools(conn, q, agent_cfg), min_coverage=min_coverage)
            if ev is None:
                report.skip("no_evidence")
                continue
            out.append(q.model_copy(update={"message_ids": [ev.message_id]}))
            report.regrounded += 1
    finally:
        conn.close()
    return out, report
