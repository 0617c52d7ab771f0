"""The optional support check: a second model (the judge's) is asked whether the answer is stated in the sources.

The generator grades its own homework when it cites sources; this is the independent look. A check that cannot be
read or whose backend fails is a counted drop, not a pass: the file promises verified answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from inboxrl.questions.parse import first_json_value
from inboxrl.questions.prompt import render_email
from inboxrl.questions.validate import Candidate

SUPPORT_PROMPT_VERSION = "s1"

SYSTEM = (
    "You check a dataset. Given emails, a question and a proposed answer, decide whether the answer is stated in "
    "(or directly follows from) the emails. Reply with JSON only: "
    '{"supported": true or false, "reason": "a few words"}'
)

USER = """{emails}

Question: {question}
Proposed answer: {answer}

Is this answer stated in these emails? Reply with the JSON only."""

RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "support_check",
        "schema": {
            "type": "object",
            "properties": {"supported": {"type": "boolean"}, "reason": {"type": "string"}},
            "required": ["supported", "reason"],
            "additionalProperties": False,
        },
    },
}


def support_messages(c: Candidate, email_chars: int) -> list[dict[str, str]]:
    emails = "\n\n".join(render_email(i, e, email_chars) for i, e in enumerate(c.sources, 1))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": USER.format(emails=emails, question=c.question, answer=c.answer)},
    ]


@dataclass
class SupportVerdict:
    supported: bool | None  # None: the check's output could not be read
    reason: str = ""


_YES = re.compile(r"^\W*(yes|true|supported)\b", re.IGNORECASE)
_NO = re.compile(r"^\W*(no|false|not supported|unsupported)\b", re.IGNORECASE)


def parse_support(text: str) -> SupportVerdict:
    loaded = first_json_value(text or "")
    if loaded is not None and isinstance(loaded[0], dict):
        d = {str(k).strip().lower(): v for k, v in loaded[0].items()}
        v = d.get("supported", d.get("answer", d.get("stated")))
        reason = str(d.get("reason", ""))[:200]
        if isinstance(v, bool):
            return SupportVerdict(v, reason)
        if isinstance(v, str) and v.strip().lower() in ("yes", "true", "no", "false"):
            return SupportVerdict(v.strip().lower() in ("yes", "true"), reason)
    t = (text or "").strip()
    if _NO.match(t):
        return SupportVerdict(False, t[:200])
    if _YES.match(t):
        return SupportVerdict(True, t[:200])
    return SupportVerdict(None, t[:200])


_CALENDAR = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july august "
    "september october november december".split()
)


def _question_names(question: str) -> list[str]:
    """Capitalised words after the first (names, places, companies), minus 'I' and calendar words."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9&.'-]*", question)
    out = []
    for w in words[1:]:
        w = w.rstrip(".'").removesuffix("'s")
        if w[:1].isupper() and w not in ("I", "I'm", "I've", "I'd", "I'll") and w.lower() not in _CALENDAR:
            out.append(w)
    return out


class LexicalSupport:
    """An offline support check: the names the question mentions, every number in the answer and most of the
    answer's content words must occur in the sources. Crude, but it needs no model and catches what small models
    do most: answers invented outright, and questions about people who are not in the mail (copied from the
    prompt's own examples).
    """

    name = "lexical"

    def __init__(self, min_overlap: float = 0.6) -> None:
        self.min_overlap = min_overlap

    def check(self, c: Candidate) -> SupportVerdict:
        from inboxrl.questions.filters import question_tokens

        source_text = " ".join(f"{e.subject} {e.from_name} {e.from_addr} {e.body} "
                               + " ".join(f"{n} {a}" for n, a in e.to) for e in c.sources)
        source_tokens = set(re.findall(r"[a-z0-9]+", source_text.lower().replace(",", "")))
        missing_names = [n for n in _question_names(c.question)
                         if not set(re.findall(r"[a-z0-9]+", n.lower())) <= source_tokens]
        if missing_names:
            return SupportVerdict(False, f"question names not in sources: {' '.join(missing_names[:5])}")
        answer_tokens = question_tokens(c.answer.replace(",", ""))
        numbers = {t for t in answer_tokens if t.isdigit()}
        missing_numbers = sorted(numbers - source_tokens)
        if missing_numbers:
            return SupportVerdict(False, f"numbers not in sources: {' '.join(missing_numbers[:5])}")
        if not answer_tokens:
            return SupportVerdict(False, "answer has no content words")
        overlap = len(answer_tokens & source_tokens) / len(answer_tokens)
        return SupportVerdict(overlap >= self.min_overlap, f"{overlap:.0%} of answer words in sources")
