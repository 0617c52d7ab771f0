"""Unsupported answers: a date, amount, number or name in the answer that the agent was never shown.

What the agent saw is in its trajectory: the question, the system prompt (today's date, the inbox), every search
hit with its snippet and every email it read, all as non-assistant messages. A fact of the answer found nowhere in
them was made up, whether or not the judge happened to accept it. Facts are read by judge/facts.py, as the judge
reads them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from inboxrl.checks.episodes import attempted, shown_text
from inboxrl.checks.report import DetectorResult, per_episode
from inboxrl.judge.facts import DateRef, TimeRef, extract, name_forms, name_groups, squash, stem
from inboxrl.trajectory import Trajectory

# The first word of a sentence is capitalised whatever it is ("Unfortunately", "Attached"): not read as a name.
_SENTENCE_START = re.compile(r"(^|[.!?:;]\s+|\n\s*)([A-Z])(?=[a-z]+\b)")


@dataclass
class Seen:
    numbers: set[float]
    dates: list[DateRef]
    weekdays: set[int]
    times: list[TimeRef]
    words: set[str]

    @classmethod
    def of(cls, text: str) -> Seen:
        f = extract(text)
        numbers = set(f.numbers) | {float(d.day) for d in f.dates if d.day} | {float(d.year) for d in f.dates if d.year}
        numbers |= {float(t.hour) for t in f.times} | {float(t.minute) for t in f.times if t.minute}
        weekdays = set(f.weekdays)
        for d in f.dates:  # "2001-05-07" shows a Monday
            if d.year and d.day:
                try:
                    weekdays.add(dt.date(d.year, d.month, d.day).weekday())
                except ValueError:
                    pass
        # Every alphanumeric run, so that a name seen only inside an address ("molly.magee@enron.com") counts.
        # Name-shaped tokens also as the name reader keys them ("BenzeneCurves.xls" -> "benzenecurvesxl").
        raw = set(re.findall(r"[a-z0-9]+", text.lower()))
        return cls(numbers, list(f.dates), weekdays, list(f.times), raw | {stem(w) for w in raw} | name_forms(text))


def _num_seen(v: float, seen: set[float]) -> bool:
    return any(abs(v - x) <= 1e-9 * max(1.0, abs(v), abs(x)) for x in seen)


def _date_seen(d: DateRef, seen: Seen) -> bool:
    for s in seen.dates:
        if s.month != d.month:
            continue
        if d.day is not None and s.day is not None and s.day != d.day:
            continue
        if d.day is not None and s.day is None:
            continue
        if d.year is not None and s.year is not None and s.year != d.year:
            continue
        return True
    return False


def _time_seen(t: TimeRef, seen: Seen) -> bool:
    if any(s.hour % 12 == t.hour % 12 and s.minute == t.minute for s in seen.times):
        return True
    return t.minute == 0 and _num_seen(float(t.hour), seen.numbers)  # "at 4" in the mail, "4:00 pm" in the answer


def _name_seen(group: list[str], seen: Seen) -> bool:
    return all(squash(w) in seen.words or stem(squash(w)) in seen.words for w in group)


def unsupported_facts(answer: str, shown: str) -> list[str]:
    """The answer's facts found nowhere in `shown`, as short labels ("date 2001-05-14", "name john smith")."""
    f = extract(answer)
    seen = Seen.of(shown)
    out = [f"number {v:g}" for v in dict.fromkeys(f.numbers) if not _num_seen(v, seen.numbers)]
    out += [f"date {d}" for d in dict.fromkeys(f.dates) if not _date_seen(d, seen)]
    out += [f"weekday {w}" for w in dict.fromkeys(f.weekdays) if w not in seen.weekdays]
    out += [f"time {t}" for t in dict.fromkeys(f.times) if not _time_seen(t, seen)]
    names = name_groups(_SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).lower(), answer or ""))
    out += [f"name {' '.join(g)}" for g in names if not _name_seen(g, seen)]
    return out


def detect(trajs: Sequence[Trajectory], ids: Sequence[str]) -> DetectorResult:
    def finding(t: Trajectory) -> str | None:
        missing = unsupported_facts(t.final_answer or "", shown_text(t))
        return ", ".join(missing[:3]) if missing else None

    return per_episode(trajs, ids, attempted, finding, lambda k, n: (
        f"{k} of {n} answers carry a date, amount, number or name shown in no email read, no snippet and not the "
        f"question"))
