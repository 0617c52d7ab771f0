"""Answers that game a fact-matching judge: candidate lists, hedged alternatives, restated questions.

A judge that only asks "is the golden fact there?" pays an answer that lists every date it read, and GRPO learns
that. So an answer is also read for what it claims beyond the golden answer: of each kind of fact the golden
answer gives (and the question asks for), the answer may hold only facts that match the golden answer's own ones.
"""

from __future__ import annotations

import re

from inboxrl.judge.asked import DATES, NAMES, NUMBERS, TIMES
from inboxrl.judge.facts import DateRef, Facts, TimeRef, extract, squash, words_match

PLACES = "places"

_WHERE = re.compile(r"^\s*(?:and\s+)?(?:where\b|(?:in\s+|at\s+)?(?:what|which)(?:'s|\s+is|\s+was|\s+are)?\s+"
                    r"(?:[\w'-]+\s+){0,2}?(?:room|rooms|building|floor|location|office|venue|place|city|hotel|"
                    r"address)\b(?!\s+(?:rate|rates|number|cost|costs|fee|charge|price|key|reservation|block)\b))",
                    re.IGNORECASE)
# Room and building codes ("EB49C1", "EB 32", "VH 210"): letters in capitals, then digits.
_CODE = re.compile(r"\b([A-Z]{1,4})[\s-]?(\d{1,5}[A-Za-z]?\d{0,3})\b")
# Alternatives offered instead of one answer. "One or two", "or so", "or more", "whether or not" are amounts and
# idioms, not alternatives.
_HEDGE = re.compile(
    r"\bor\s+(?:possibly|perhaps|maybe|probably|likely|else|alternatively|otherwise)\b"
    r"|\beither\b[^.;]{0,200}?\bor\b"
    r"|\b(?:possibly|perhaps|maybe|alternatively)\b[^.;]{0,200}?\bor\b"
    r"|\bor\s+(?:it\s+)?(?:could|might|may)\s+(?:also\s+)?be\b"
    r"|\bnot\s+sure\s+(?:if|whether)\b|\bone\s+of\s+(?:these|the\s+following)\b",
    re.IGNORECASE)
# A bare "or" joining two answers ("weather derivatives or credit risk"); not in amounts and idioms.
_BARE_OR = re.compile(r"\b(\w+)[\s,]+or\s+((\w+)(?:[^.;\n]|\.(?=\S))*)", re.IGNORECASE)
_OR_IDIOM_BEFORE = {"whether", "one", "two", "three", "four", "five", "more", "sooner", "either", "and"}
_OR_IDIOM_AFTER = {"so", "more", "less", "not", "two", "three", "four", "five", "six", "later", "otherwise", "else"}
_YEAR = re.compile(r"(?<![$\d,.])(?<!\$ )((?:19[5-9]|20[0-3])\d)(?![\d,]|\.\d)")
_GOLDEN_ALTERNATIVES = re.compile(r"\bor\b|\beither\b|/", re.IGNORECASE)


def _bare_or(text: str) -> list[str]:
    """The alternatives a bare "or" offers: the text after it, to the end of the sentence."""
    return [m.group(2) for m in _BARE_OR.finditer(text or "") if m.group(1).lower() not in _OR_IDIOM_BEFORE
            and m.group(3).lower() not in _OR_IDIOM_AFTER and not m.group(1).isdigit()]


def asks_place(question: str) -> bool:
    """ "Where is it?", "What room is the meeting in?": the answer is a place or a room."""
    return bool(_WHERE.match(question or ""))


def room_codes(text: str) -> set[str]:
    return {squash(a + b) for a, b in _CODE.findall(text or "")}


def _date_meets(x: DateRef, y: DateRef) -> bool:
    """Same date, reading a missing day or year on either side as "not said"."""
    if x.month != y.month:
        return False
    if x.day is not None and y.day is not None and x.day != y.day:
        return False
    return x.year is None or y.year is None or x.year == y.year


def _time_meets(x: TimeRef, y: TimeRef) -> bool:
    if x.hour % 12 != y.hour % 12 or x.minute != y.minute:
        return False
    return x.pm is None or y.pm is None or x.pm == y.pm


def _num_eq(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def _is_range_end(x: object, c: Facts) -> bool:
    return any(x is e for e in c.range_ends)


def _extra_facts(kind: str, q: Facts, g: Facts, c: Facts, question: str, golden: str,
                 candidate: str) -> list[str]:
    """The candidate's facts of `kind` that match none of the golden answer's (nor the question's)."""
    if kind == DATES and g.dates:
        out = [str(x) for x in c.dates if not _is_range_end(x, c)
               and not any(_date_meets(x, y) for y in [*g.dates, *q.dates])]
        days = {d.day for d in [*g.dates, *q.dates]} | set(g.days) | set(q.days)
        out += [f"the {d}th" for d in c.days if d not in days]
        if not g.weekdays and len(set(c.weekdays) - set(q.weekdays)) > 1:
            out.append("several weekdays")
        return out
    if kind == TIMES and g.times:
        return [str(x) for x in c.times if not _is_range_end(x, c)
                and not any(_time_meets(x, y) for y in [*g.times, *q.times])
                and not (x.minute == 0 and any(_num_eq(float(x.hour), v) for v in g.numbers))]
    if kind == NUMBERS and g.numbers:
        known = [*g.numbers, *q.numbers, *(float(d.day) for d in [*g.dates, *q.dates] if d.day),
                 *(float(d.year) for d in [*g.dates, *q.dates] if d.year),
                 *(float(t.hour) for t in [*g.times, *q.times])]
        years = {float(y) for y in _YEAR.findall(candidate or "")}  # "the 2001 budget" names a year, not an amount
        return [f"{v:g}" for v in c.numbers if not any(_num_eq(v, k) for k in known) and v not in years]
    if kind == PLACES:
        g_codes = room_codes(golden)
        if g_codes:
            return sorted(room_codes(candidate) - g_codes - room_codes(question))
        return []
    if kind == NAMES and g.names:
        pool = [*g.words, *q.words, *(w for grp in [*g.names, *q.names] for w in grp)]
        extra = [grp for grp in c.names if not any(words_match(w, p) for w in grp for p in pool)]
        # A full name is a claim; a lone capitalised word may be a sentence's first word, so one alone is let be.
        if any(len(grp) >= 2 for grp in extra) or len(extra) >= 2:
            return [" ".join(grp) for grp in extra]
    return []


def _restates(q: Facts, g: Facts, c: Facts) -> bool:
    """True when the answer says nothing the question did not: no new word, name or fact."""
    pool = q.words + [w for grp in q.names for w in grp]
    if not c.words:
        return False
    new_words = [w for w in c.words if not any(words_match(w, p) for p in pool)]
    new_facts = ([d for d in c.dates if not any(_date_meets(d, x) for x in q.dates)]
                 + [t for t in c.times if not any(_time_meets(t, x) for x in q.times)]
                 + [v for v in c.numbers if not any(_num_eq(v, x) for x in q.numbers)]
                 + [d for d in c.days if d not in q.days])
    if new_words or new_facts:
        return False
    g_new = [w for w in g.words if not any(words_match(w, p) for p in pool)]
    if g_new or g.dates or g.times or g.numbers:
        return True
    # The golden answer adds nothing either ("Hanover Compression." for "Which company does the Hanover
    # Compression hedge relate to?"): it picks part of the question, and an answer echoing all of it picks none.
    def holds_all(words: list[str]) -> bool:
        return all(any(words_match(p, w) for w in words) for p in q.words)

    return holds_all(c.words) and not holds_all(g.words)


def _golden_lists(kinds: set[str], g: Facts, golden: str) -> bool:
    """The golden answer gives several of a kind asked for ("May 22 and June 5" for "possible start dates"): the
    answer may then offer them as alternatives; any beyond them is caught as an extra fact."""
    counts = {DATES: len(g.dates), TIMES: len([t for t in g.times if not _is_range_end(t, g)]),
              NUMBERS: len(g.numbers), PLACES: len(room_codes(golden)), NAMES: len(g.names)}
    return any(counts[k] >= 2 for k in kinds)


_HEDGED = re.compile(r"\bor\s+(?:possibly|perhaps|maybe|probably|likely|else|alternatively|otherwise|"
                     r"(?:it\s+)?(?:could|might|may)\s+(?:also\s+)?be)\b((?:[^.;\n]|\.(?=\S))*)"
                     r"|\beither\b((?:[^.;\n]|\.(?=\S))*?)\bor\b",
                     re.IGNORECASE)


def _hedges_beyond(q: Facts, g: Facts, candidate: str) -> bool:
    """An alternative offered ("..., or possibly Y") that says something the golden answer does not."""
    pool = [*g.words, *q.words, *(w for grp in [*g.names, *q.names] for w in grp)]
    alternatives = [m.group(1) or m.group(2) or "" for m in _HEDGED.finditer(candidate or "")]
    for text in [*alternatives, *_bare_or(candidate)]:
        alt = extract(text)
        if any(not any(words_match(w, p) for p in pool) for w in alt.words):
            return True
        if any(not any(_date_meets(d, x) for x in g.dates) for d in alt.dates) or \
                any(not any(_num_eq(v, x) for x in g.numbers) for v in alt.numbers):
            return True
    return False


def gaming_reason(question: str, golden: str, candidate: str, kinds: frozenset[str] | None,
                  yes_no: bool) -> str | None:
    """Why the answer games the judge, or None. `kinds`: the fact kinds the question asks for (None: not said)."""
    question, golden, candidate = question or "", golden or "", candidate or ""
    q, g, c = extract(question), extract(golden), extract(candidate)
    if yes_no and (candidate.strip().endswith("?") or squash(candidate) == squash(question)):
        return "the answer only restates the question"
    if not yes_no and _restates(q, g, c):
        return "the answer only restates the question"
    checked = set(kinds) if kinds else {DATES, TIMES, NUMBERS}
    if asks_place(question):
        checked |= {PLACES, NAMES}
    if _HEDGE.search(candidate) or _bare_or(candidate):
        if not _GOLDEN_ALTERNATIVES.search(golden) and not _golden_lists(checked, g, golden):
            return "the answer hedges between alternatives where the golden answer gives one"
        if _hedges_beyond(q, g, candidate):
            return "the answer offers an alternative the golden answer does not give"
    for kind in (DATES, TIMES, NUMBERS, PLACES, NAMES):
        if kind not in checked:
            continue
        extra = _extra_facts(kind, q, g, c, question, golden, candidate)
        if extra:
            return f"{kind} beyond the golden answer's own: {', '.join(extra[:4])}"
    return None
