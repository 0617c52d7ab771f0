"""A deterministic, offline judge: does the candidate carry the golden answer's key facts, contradict none, and
claim no more than the golden answer does?

Why: evaluation and GRPO must run with no model at all (CI, a CPU machine), and its verdict is the reward, so it
compares facts (judge/facts.py), not wording, and rejects answers that game a fact check (judge/gaming.py). Its
rules, limits and measured agreement are in docs/reward.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inboxrl.agent.idk import is_dont_know
from inboxrl.judge.asked import DATES, NAMES, NUMBERS, TIMES, asked_facts, asks_for_one_person
from inboxrl.judge.base import Verdict
from inboxrl.judge.facts import (
    YESNO_Q,
    DateRef,
    TimeRef,
    currencies,
    extract,
    name_forms,
    name_groups,
    squash,
    words_match,
)
from inboxrl.judge.gaming import gaming_reason


def _date_ok(g: DateRef, c: DateRef) -> bool:
    if g.month != c.month:
        return False
    if g.day is not None and c.day != g.day:
        return False
    return g.year is None or c.year is None or g.year == c.year


def _time_ok(g: TimeRef, c: TimeRef) -> bool:
    if g.hour % 12 != c.hour % 12 or g.minute != c.minute:
        return False
    return g.pm is None or c.pm is None or g.pm == c.pm


def _num_eq(a: float, b: float) -> bool:
    # Tight enough that phone numbers one digit apart differ (1e-9 of 7,138,535,290 is 7), loose enough for
    # "12.2 MM" computed as 12.2 * 1e6.
    return abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,g}"


@dataclass
class LexicalJudge:
    """Facts asked for (judge/asked.py) must be there; others must not be contradicted (docs/reward.md)."""

    name: str = "lexical"
    min_word_coverage: float = 0.5
    min_name_coverage: float = 0.75

    def judge(self, question: str, golden: str, candidate: str) -> Verdict:
        accept, reason = self._decide(question, golden, candidate)
        if accept:  # the golden facts are there: now, does it claim more than the golden answer?
            yes_no = bool(YESNO_Q.match(question or ""))
            gamed = gaming_reason(question, golden, candidate, None if yes_no else asked_facts(question), yes_no)
            if gamed:
                accept, reason = False, gamed
        return Verdict(accept=accept, reason=reason, judge=self.name)

    def judge_many(self, items: list[tuple[str, str, str]]) -> list[Verdict]:
        return [self.judge(q, g, c) for q, g, c in items]

    def _decide(self, question: str, golden: str, candidate: str) -> tuple[bool, str]:
        if is_dont_know(candidate):
            return False, "the answer is an \"I don't know\""
        q, g, c = extract(question), extract(golden), extract(candidate)
        q_words = set(q.words)

        def has_word(w: str, pool: list[str]) -> bool:
            return any(words_match(w, x) for x in pool)

        yes_no = bool(YESNO_Q.match(question or ""))
        if yes_no:
            gp = g.polarity or ("no" if g.negated else "yes")
            cp = c.polarity or ("no" if c.negated else "yes")
            if gp != cp:
                return False, f"yes/no disagrees: golden says {gp}, answer says {cp}"
        elif g.polarity and c.polarity and g.polarity != c.polarity:
            return False, f"golden starts with {g.polarity}, answer with {c.polarity}"

        # A name group sharing a word with the question names what the question already names ("Don Reid" for a
        # question about "Don"): the answer need not repeat it. A parenthesis holding more than a name is an aside
        # ("Sherron Watkins (John Bloomer's team)"), whose names are required only when the golden answer names
        # no one outside it; one holding only a name is another name for what precedes it ("Tony (Anthony Mends)").
        asides = [m for m in re.findall(r"\(([^()]*)\)", golden or "") if re.search(r"\b[a-z]", m)]
        outside = name_groups(re.sub(r"\(([^()]*)\)", lambda m: " " if m.group(1) in asides else m.group(0),
                                    golden or "")) or g.names
        names = [grp for grp in outside if not any(has_word(w, list(q_words)) for w in grp)]
        aliases = [grp for m in re.findall(r"\(([^()]*)\)", golden or "") if m not in asides
                   for grp in name_groups(m)]

        asked = asked_facts(question) if not yes_no else frozenset()
        present = {NAMES: bool(names), DATES: bool(g.dates or g.weekdays), TIMES: bool(g.times),
                   NUMBERS: bool(g.numbers)}
        if asked and not any(present[k] for k in asked):
            asked = None  # the golden answer holds none of what the word asks for: read it whole, as before

        def required(kind: str) -> bool:
            return asked is None or kind in asked

        # Numbers: day and hour components of the candidate's dates and times also count as its numbers, so
        # "September 11 and 12" meets "Sept 11 and Sept 12" and "breakfast at 8:00" meets "breakfast 8-9".
        c_nums = list(c.numbers) + [float(d.day) for d in c.dates if d.day] + [float(d.year) for d in c.dates
                                                                               if d.year]
        c_nums += [float(t.hour) for t in c.times] + [float(d) for d in c.days]
        missing = [v for v in g.numbers if not any(_num_eq(v, x) for x in c_nums)]
        if required(NUMBERS) and g.numbers and missing and _num_eq(missing[0], g.numbers[0]):
            return False, f"missing the number {_fmt(g.numbers[0])}"
        if missing:
            g_all = list(g.numbers) + [float(d.day) for d in g.dates if d.day] + [float(t.hour) for t in g.times]
            extra = [v for v in c.numbers if not any(_num_eq(v, x) for x in g_all)]
            if extra:
                return False, f"number {_fmt(extra[0])} where the golden answer has {_fmt(missing[0])}"

        g_cur, c_cur = currencies(golden), currencies(candidate)
        if g_cur and c_cur and not g_cur & c_cur:
            return False, f"currency {'/'.join(sorted(c_cur))} where the golden answer has {'/'.join(sorted(g_cur))}"

        # Facts the question does not ask for need only not be contradicted: missing is fine, replaced is not.
        for d in g.dates:
            if not any(_date_ok(d, x) for x in c.dates) and not (d.day in c.days and not c.dates):
                if required(DATES):
                    return False, f"missing the date {d}"
                other = next((x for x in c.dates if not any(_date_ok(y, x) for y in g.dates)), None)
                if other is not None:
                    return False, f"date {other} where the golden answer has {d}"
        if g.weekdays and c.weekdays and not set(c.weekdays) <= set(g.weekdays):
            return False, "weekday differs"
        if required(DATES) and g.weekdays and not g.dates and not set(g.weekdays) <= set(c.weekdays):
            return False, "missing the weekday"
        for t in g.times:
            if not any(_time_ok(t, x) for x in c.times) and not (
                    t.minute == 0 and any(_num_eq(float(t.hour), x) for x in c.numbers)):
                if required(TIMES):
                    return False, f"missing the time {t}"
                other_t = next((x for x in c.times if not any(_time_ok(y, x) for y in g.times)), None)
                if other_t is not None:
                    return False, f"time {other_t} where the golden answer has {t}"

        if names and required(NAMES):
            c_names = name_forms(candidate)

            def named(w: str) -> bool:
                # Name words are cut differently from plain words ("19C2", "Pierre-Philippe", "Vince.J.Kaminski"),
                # so they are also looked up among the candidate's own name-shaped tokens, cut the same way.
                return has_word(w, c.words) or squash(w) in c_names

            def covered_group(grp: list[str]) -> bool:
                return named(grp[-1]) or all(named(w) for w in grp)

            covered = sum(1 for grp in names if covered_group(grp))
            # A question after one person is answered by the golden answer's first name, or another name for it;
            # the names after it are titles, teams and firms around it.
            if asked and asks_for_one_person(question):
                enough = covered_group(names[0]) or any(covered_group(a) for a in aliases)
            else:
                enough = covered / len(names) >= self.min_name_coverage
            if not enough:
                miss = next(" ".join(grp) for grp in names if not covered_group(grp))
                return False, f"names covered {covered}/{len(names)} (missing '{miss}')"

        # When the question asks for a kind of fact and the golden answer's facts of that kind are all present
        # (checked above), those facts are the answer; its other words are context.
        if asked:
            return True, f"the {' and '.join(sorted(asked))} asked for are present, none contradicted"
        # A yes/no answer that does not open with yes or no is read as a statement: it must carry the golden
        # answer's content, or any unnegated text (a mail header line) would pass as "yes".
        # A statement that says "not" to a question whose golden answer is "no" ("Don said he doesn't need a
        # forecast") makes the claim that decides it; a pasted header line does not carry a negation.
        golden_no = (g.polarity or ("no" if g.negated else "yes")) == "no"
        said_no = yes_no and c.polarity is None and c.negated and golden_no
        # The question put as a statement, unnegated ("I asked Shirley to register you for the seminar"), says
        # yes as plainly as "yes" does; it must hold every content word of the question, which a header line or a
        # statement about something else ("Kim is interested in an internship" for "has Kim been offered one?") does not.
        said_yes = (yes_no and c.polarity is None and not c.negated and not golden_no
                    and not (candidate or "").strip().endswith("?") and bool(q_words)
                    and all(has_word(w, c.words) or squash(w) in name_forms(candidate) for w in q_words))
        if (not yes_no or c.polarity is None) and not said_no and not said_yes:
            key = []
            for w in g.words:
                if w not in key and not has_word(w, list(q_words)):
                    key.append(w)
            if key:
                hit = sum(1 for w in key if has_word(w, c.words))
                if hit / len(key) < self.min_word_coverage:
                    return False, f"covers {hit}/{len(key)} key words of the golden answer"
        return True, "key facts of the golden answer present, none contradicted"
