"""Which kinds of fact a question asks for, read from its question word.

A golden answer often carries more than the question asks: "Who should I call?" is answered with a name, a title
and a phone number; "What date is the talk?" with the date and the hour. Requiring every such fact rejects right
answers that simply stop at what was asked (figures in docs/reward.md). The facts a question asks for stay
required; the others need only not be contradicted. Questions whose word says nothing about the kind of answer ("what", "why", "where") keep every fact
required, as before.
"""

from __future__ import annotations

import re

NAMES, DATES, TIMES, NUMBERS = "names", "dates", "times", "numbers"

_PLURAL_WHO = re.compile(r"^\s*(?:and\s+)?who\s+(?:are|were|all|else\s+(?:are|were))\b|^\s*(?:which|what)\s+"
                         r"(?:people|persons|members|executives|students|candidates|attendees|speakers)\b",
                         re.IGNORECASE)
_WHO = re.compile(r"^\s*(?:and\s+|so\s+)?(?:who|whom|whose|to\s+whom|with\s+whom|from\s+whom|by\s+whom|"
                  r"which\s+(?:person|individual|employee|colleague))\b", re.IGNORECASE)
_WHAT_TIME = re.compile(r"^\s*(?:at\s+)?what\s+time\b", re.IGNORECASE)
_WHAT_DATE = re.compile(r"^\s*(?:on\s+|by\s+)?(?:what|which)\s+(?:date|day)\b", re.IGNORECASE)
_WHEN = re.compile(r"^\s*(?:by\s+|until\s+|since\s+)?when\b", re.IGNORECASE)
_HOW_MUCH = re.compile(r"^\s*how\s+(?:much|many|long|often|far|big|large|old)\b", re.IGNORECASE)
_WHAT_NUMBER = re.compile(r"^\s*(?:what|which)(?:'s|\s+is|\s+was|\s+are|\s+were)?\s+(?:[\w'-]+\s+){0,5}?"
                          r"(?:number|numbers|cost|costs|price|prices|amount|fee|fees|salary|budget|extension|"
                          r"percentage|phone|telephone|fax|pager)\b(?!\s+(?:of|for)\s+(?:the\s+)?\w+\s+who)",
                          re.IGNORECASE)


# "Who is John Martin?" asks for a description of a name, not for a name.
_WHO_IS_NAME = re.compile(r"^\s*(?i:who\s+(?:is|was|are|were))\s+(?:[A-Z][\w.'-]*\s*)+\??\s*$")
# "Who is out, and until when?" asks two things: read such a question whole.
_SECOND_QUESTION = re.compile(r"\b(?:and|or)\s+(?:(?:until|since|by|from)\s+)?(?:when|where|why|how|what|which|who)\b",
                              re.IGNORECASE)


def asked_facts(question: str) -> frozenset[str] | None:
    """The fact kinds the question asks for, or None when its word is not telling (then every fact is required).

    Yes/no questions are recognised by the caller, which already knows; this reads only wh-words.
    """
    q = question or ""
    if _WHO_IS_NAME.match(q) or _SECOND_QUESTION.search(q):
        return None
    if _WHO.match(q) or _PLURAL_WHO.match(q):
        return frozenset({NAMES})
    if _WHAT_TIME.match(q):
        return frozenset({TIMES})
    if _WHAT_DATE.match(q):
        return frozenset({DATES})
    if _WHEN.match(q):
        return frozenset({DATES, TIMES})
    if _HOW_MUCH.match(q) or _WHAT_NUMBER.match(q):
        return frozenset({NUMBERS})
    return None


def asks_for_one_person(question: str) -> bool:
    """ "Who is handling it?" wants one person; "Who are the visitors?" wants them all."""
    return bool(_WHO.match(question or "")) and not _PLURAL_WHO.match(question or "")
