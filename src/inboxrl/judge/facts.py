"""Reading an answer as a bag of facts, so two answers can be compared fact by fact rather than word by word.

The lexical judge (judge/lexical.py) and the warm start's evidence check (training/evidence.py) both need to know
that "$85K" is 85,000, that "Sept. 11-12" holds two dates and that "Shirley Crenshaw" is a name. Kept apart from
the judge's rules so that each can be read on its own. What is read:

- **numbers** ("1,000", "1000", "one thousand", "$85K", "12.2 MM", "50%", phone numbers and extensions written
  with any separators), compared by value;
- **dates** ("March 3", "3/3/2001", "2001-03-03", "Sept. 11-12"), compared field by field (a year given on one
  side only does not matter, a missing day does), and **weekdays**;
- **times** ("3:00 p.m.", "3pm", "10:00 - 11:30 AM", "noon"), compared on hour and minute, with am/pm where both
  sides give it;
- **names**: runs of capitalised words of the golden answer that the question does not already contain;
- **key words**: the golden answer's content words (stop-words removed, light stemming) that are not in the
  question, because words echoing the question say nothing about whether the answer is right;
- for yes/no questions, the **polarity** of each answer (a leading yes/no, else the presence of a negation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MONTHS = {
    "jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4, "may": 5,
    "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8, "sep": 9, "sept": 9, "september": 9,
    "oct": 10, "october": 10, "nov": 11, "november": 11, "dec": 12, "december": 12,
}
WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2, "thursday": 3, "thu": 3,
    "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
# Units written in capitals that are not names.
_UNITS = {"mw", "mwh", "kwh", "gw", "bbl", "bcf", "mmbtu", "btu", "usd", "aud", "cad", "gbp", "eur", "am", "pm",
          "a.m", "p.m", "ok", "id"}
_SCALE_WORDS = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_SUFFIX_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "mil": 1e6, "mln": 1e6, "million": 1e6,
                 "b": 1e9, "bn": 1e9, "billion": 1e9}

STOPWORDS = set("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
on once only or other our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves yes ok okay shall may might must
let lets us get got also please thanks thank per via etc re fw fwd
say said says tell told ask asked mention mentioned note noted wrote write writes according regarding
email emails mail message messages inbox
""".split())

# Abbreviations mapped to one spelling before stemming, so "Corp." meets "Corporation".
_ABBREV = {
    "corp": "corporation", "inc": "incorporated", "co": "company", "dept": "department", "univ": "university",
    "prof": "professor", "dr": "doctor", "mgr": "manager", "asst": "assistant", "admin": "administrative",
    "approx": "approximately", "info": "information", "tel": "telephone", "phone": "telephone", "ph": "telephone",
    "mtg": "meeting", "conf": "conference", "intl": "international", "govt": "government", "assoc": "associate",
    "rep": "representative", "ext": "extension", "rm": "room", "bldg": "building", "mkt": "market",
    "min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour", "sec": "second", "secs": "second",
    "wk": "week", "wks": "week", "yr": "year", "yrs": "year", "mo": "month", "mos": "month",
}

_NEGATIONS = {"not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "cannot", "without",
              "decline", "declined", "declines", "refuse", "refused", "refuses", "reject", "rejected", "fail",
              "failed", "unable", "denied", "deny"}
YESNO_Q = re.compile(r"^\s*(?:did|does|do|is|are|was|were|can|could|will|would|should|has|have|had|may|might|"
                      r"must|shall)\b", re.IGNORECASE)

_MONTH_RE = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
             r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"(?:,?\s*('?\d{4}|'\d{2}))?"
_AMPM = r"(a\.?\s?m\.?|p\.?\s?m\.?)"


@dataclass(frozen=True)
class DateRef:
    year: int | None
    month: int
    day: int | None

    def __str__(self) -> str:
        return f"{self.year or '????'}-{self.month:02d}-{self.day:02d}" if self.day else \
            f"{self.year or '????'}-{self.month:02d}"


@dataclass(frozen=True)
class TimeRef:
    hour: int  # 0..12 as written (12-hour clock) or 13..23
    minute: int
    pm: bool | None  # None: not said

    def __str__(self) -> str:
        suffix = "" if self.pm is None else ("pm" if self.pm else "am")
        return f"{self.hour}:{self.minute:02d}{suffix}"


@dataclass
class Facts:
    numbers: list[float] = field(default_factory=list)
    dates: list[DateRef] = field(default_factory=list)
    weekdays: list[int] = field(default_factory=list)
    times: list[TimeRef] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # stemmed content words, in order
    names: list[list[str]] = field(default_factory=list)  # groups of stemmed name tokens
    polarity: str | None = None  # "yes"/"no" when the answer starts with one
    negated: bool = False
    # The second end of each range ("Sept. 11-12", "3:00-5:00pm"): one claim with its start, not an alternative.
    range_ends: list[DateRef | TimeRef] = field(default_factory=list)
    days: list[int] = field(default_factory=list)  # "the 6th": a day of the month, the month left unsaid


def _year(s: str | None) -> int | None:
    if not s:
        return None
    s = s.strip("'")
    y = int(s)
    return y + (1900 if y >= 50 else 2000) if len(s) == 2 else y


def _time(h: str, m: str | None, ampm: str | None) -> TimeRef | None:
    hh, mm = int(h), int(m or 0)
    if hh > 23 or mm > 59:
        return None
    pm = None if not ampm else ampm.lower().startswith("p")
    if hh > 12:
        hh, pm = hh - 12, True
    return TimeRef(hh, mm, pm)


def stem(w: str) -> str:
    """A light stemmer: enough to meet "installed"/"installing"/"installs", not a linguistic one."""
    w = _ABBREV.get(w, w)
    w = w.removesuffix("'s")
    w = w.strip("'")
    if len(w) <= 3 or not w.isalpha():
        return w
    for suf, rep in (("ies", "y"), ("ied", "y"), ("ing", ""), ("edly", ""), ("ed", ""), ("ly", ""),
                     ("ment", ""), ("ation", ""), ("ness", "")):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            w = w[: -len(suf)] + rep
            break
    else:
        if w.endswith(("sses", "shes", "ches", "xes")):
            w = w[:-2]
        elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
    if len(w) > 4 and w.endswith("e"):
        w = w[:-1]
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "ls":  # "stopp" -> "stop"
        w = w[:-1]
    return w


def words_match(a: str, b: str) -> bool:
    if a == b:
        return True
    # Alphabetic words sharing a long prefix ("recommend"/"recommendation"); never for codes like EB4444B.
    if a.isalpha() and b.isalpha() and min(len(a), len(b)) >= 5:
        n = 0
        for x, y in zip(a, b):
            if x != y:
                break
            n += 1
        return n >= 5 and n >= min(len(a), len(b)) - 1
    return False


_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)+|https?://\S+|www\.\S+|"
                       r"[a-z0-9]+(?:'[a-z]+)?")


class Extractor:
    """Pulls facts out of a text, consuming each recognised span so it is not read twice."""

    def __init__(self, text: str):
        t = (text or "").replace("\u2019", "'").replace("\u2018", "'").replace("\u2013", "-").replace("\u2014", "-")
        self.original = t
        self.text = t.lower()
        self.facts = Facts()

    def _sub(self, pattern: str, fn) -> None:  # type: ignore[no-untyped-def]
        def repl(m: re.Match[str]) -> str:
            return " ; " if fn(m) is not False else m.group(0)

        self.text = re.sub(pattern, repl, self.text)

    def run(self) -> Facts:
        f = self.facts
        # E-mail addresses and URLs are words, not numbers.
        self._sub(r"[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)+|https?://\S+|www\.\S+",
                  lambda m: f.words.append(m.group(0).rstrip(".,;)")))
        self._fractions()
        self._dates()
        self._times()
        self._weekdays()
        self._numbers()
        for tok in _TOKEN_RE.findall(self.text):
            if tok in STOPWORDS or tok in MONTHS or tok in WEEKDAYS or tok in ("am", "pm") or len(tok) < 2:
                continue
            f.words.append(stem(tok))
        self._names()
        self._polarity()
        return f

    def _fractions(self) -> None:
        """ "1/2 day", "1 1/2 hours": read before dates, which would take "1/2" for January 2."""
        f = self.facts

        def frac(m: re.Match[str]) -> bool:
            whole, num, den = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
            if not 0 < num < den:
                return False
            f.numbers.append(whole + num / den)
            return True

        self._sub(r"(?<![\d/])(?:(\d+)[\s-]+)?(\d)/(\d{1,2})(?![\d/])(?=[\s-]*(?:day|days|hour|hours|hr|hrs|"
                  r"mile|miles|inch|inches|point|points|cup|share|shares|of|an?|time|times|price|week|weeks|month|"
                  r"months|year|years)\b)", frac)

    def _dates(self) -> None:
        f = self.facts

        def iso(m: re.Match[str]) -> bool:
            y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if not (1 <= mo <= 12 and 1 <= d <= 31):
                return False
            f.dates.append(DateRef(y, mo, d))
            return True

        def mdy(m: re.Match[str]) -> bool:
            mo, d = int(m.group(1)), int(m.group(2))
            if not (1 <= mo <= 12 and 1 <= d <= 31):
                return False
            f.dates.append(DateRef(_year(m.group(3)), mo, d))
            return True

        def month_day_range(m: re.Match[str]) -> bool:
            mo = MONTHS[m.group(1).rstrip(".")]
            y = _year(m.group(4))
            d1, d2 = int(m.group(2)), int(m.group(3))
            if not (1 <= d1 <= 31 and 1 <= d2 <= 31):
                return False
            f.dates += [DateRef(y, mo, d1), DateRef(y, mo, d2)]
            f.range_ends.append(f.dates[-1])
            return True

        def month_day(m: re.Match[str]) -> bool:
            mo = MONTHS[m.group(1).rstrip(".")]
            d = int(m.group(2))
            if not 1 <= d <= 31:
                return False
            f.dates.append(DateRef(_year(m.group(3)), mo, d))
            return True

        def day_month(m: re.Match[str]) -> bool:
            d = int(m.group(1))
            if not 1 <= d <= 31:
                return False
            f.dates.append(DateRef(_year(m.group(3)), MONTHS[m.group(2).rstrip(".")], d))
            return True

        def month_year(m: re.Match[str]) -> bool:
            f.dates.append(DateRef(_year(m.group(2)), MONTHS[m.group(1).rstrip(".")], None))
            return True

        self._sub(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", iso)
        self._sub(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?(?![\d/])", mdy)
        self._sub(rf"\b({_MONTH_RE})\s+{_DAY}\s*(?:-|to|and|&|through|thru)\s*{_DAY}\b{_YEAR}",
                  month_day_range)
        self._sub(rf"\b({_MONTH_RE})\s+{_DAY}\b{_YEAR}", month_day)
        self._sub(rf"\b{_DAY}\s+(?:of\s+)?({_MONTH_RE})\b{_YEAR}", day_month)
        self._sub(rf"\b({_MONTH_RE})\s*,?\s+(\d{{4}})\b", month_year)
        self._sub(r"\b(?:the|on)\s+(\d{1,2})(?:st|nd|rd|th)\b",
                  lambda m: f.days.append(int(m.group(1))) if 1 <= int(m.group(1)) <= 31 else False)
        # A month named alone ("in August") is a date with neither day nor year.
        self._sub(r"\b(january|february|march|april|june|july|august|september|october|november|december|"
                  r"jan|feb|aug|sept|sep|oct|nov|dec)\b\.?",
                  lambda m: f.dates.append(DateRef(None, MONTHS[m.group(1)], None)))

    def _times(self) -> None:
        f = self.facts

        def rng(m: re.Match[str]) -> bool:
            t1 = _time(m.group(1), m.group(2), m.group(3) or m.group(6))
            t2 = _time(m.group(4), m.group(5), m.group(6))
            if t1 is None or t2 is None:
                return False
            f.times += [t1, t2]
            f.range_ends.append(t2)
            return True

        def one(m: re.Match[str]) -> bool:
            t = _time(m.group(1), m.group(2), m.group(3) if m.lastindex and m.lastindex >= 3 else None)
            if t is None:
                return False
            f.times.append(t)
            return True

        self._sub(rf"\b(\d{{1,2}})(?:[:.](\d{{2}}))?\s*{_AMPM}?\s*(?:-|to|until|till)\s*(\d{{1,2}})(?:[:.](\d{{2}}))?"
                  rf"\s*{_AMPM}", rng)
        self._sub(rf"\b(\d{{1,2}})(?:[:.](\d{{2}}))?\s*{_AMPM}", one)
        self._sub(r"\b(\d{1,2}):(\d{2})\b(?!:)", one)
        self._sub(r"\bnoon\b", lambda m: f.times.append(TimeRef(12, 0, True)))
        self._sub(r"\bmidnight\b", lambda m: f.times.append(TimeRef(12, 0, False)))

    def _weekdays(self) -> None:
        f = self.facts
        self._sub(r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|tues|thurs|thur|wed)\b\.?",
                  lambda m: f.weekdays.append(WEEKDAYS[m.group(1)]))
        self._sub(r"\b(mon|tue|thu|fri|sat|sun)\b(?:\.|,|(?=\s+\d))",
                  lambda m: f.weekdays.append(WEEKDAYS[m.group(1)]))

    def _numbers(self) -> None:
        f = self.facts

        def phone(m: re.Match[str]) -> bool:
            digits = re.sub(r"\D", "", m.group(0))
            if len(digits) < 5:
                return False
            if len(digits) == 11 and digits[0] == "1":  # "1-800-759-8352" is "800-759-8352" dialled from the US
                digits = digits[1:]
            f.numbers.append(float(digits))
            return True

        # Phone numbers and extensions: digit groups joined by separators, read as one digit string so that
        # "(713) 853-6117", "713-853-6117" and "713 853 6117" agree, as do "3-0396" and "30396".
        self._sub(r"(?<![\w.,$])(?:\(\d{1,4}\)\s*|\d{1,4}[\s./-]+)(?:\d{2,4}[\s./-]+){0,2}\d{3,4}(?!\w|[.,]\d)",
                  phone)

        def num(m: re.Match[str]) -> bool:
            v = float(m.group(1).replace(",", ""))
            unit = (m.group(2) or "").strip().lower()
            v *= _SUFFIX_SCALE.get(unit, 1.0)
            f.numbers.append(v)
            return True

        self._sub(r"(?<![\w.])\$?\s?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
                  r"(?:(?:st|nd|rd|th)\b|\s?(k|mm|mil|mln|m|bn|b|thousand|million|billion)\b|\s?%|\s?percent\b)?"
                  r"(?![\w])", num)
        # Number words: "fifty", "ninety thousand", "two hundred fifty".
        words = r"(?:" + "|".join(list(_NUMBER_WORDS) + list(_SCALE_WORDS)) + r")"

        def wordnum(m: re.Match[str]) -> bool:
            if m.group(0).strip() == "one":  # "this one", "one of them": a pronoun far more often than a count
                return False
            total, cur = 0, 0
            for w in re.findall(r"[a-z]+", m.group(0)):
                if w in _NUMBER_WORDS:
                    cur += _NUMBER_WORDS[w]
                elif w == "hundred":
                    cur = max(cur, 1) * 100
                elif w in _SCALE_WORDS:
                    total += max(cur, 1) * _SCALE_WORDS[w]
                    cur = 0
            f.numbers.append(float(total + cur))
            return True

        self._sub(rf"\b{words}(?:[\s-]+(?:and\s+)?{words})*\b", wordnum)

    def name_groups(self) -> list[list[str]]:
        self._names()
        return self.facts.names

    def _names(self) -> None:
        groups: list[list[str]] = []
        cur: list[str] = []
        for m in re.finditer(r"[A-Za-z][A-Za-z0-9'&.-]*|[^\sA-Za-z]+", self.original):
            tok = m.group(0)
            core = tok.rstrip(".'-").replace("'s", "") if tok[0].isalpha() else ""
            lower = core.lower()
            label = self.original[m.end():m.end() + 1] == ":"  # "Phone:", "Email:" are labels, not names
            is_name = (bool(core) and core[0].isupper() and len(core) > 1 and not label
                       and lower.split("'")[0] not in STOPWORDS and lower not in MONTHS and lower not in WEEKDAYS
                       and lower not in _NEGATIONS and lower not in _SUFFIX_SCALE and lower not in _UNITS)
            if is_name:
                cur.append(stem(lower.replace(".", "")))
                if tok.endswith((".", ",")) and not re.fullmatch(r"[A-Z][a-z]?\.", tok):
                    groups.append(cur)
                    cur = []
            elif cur:
                groups.append(cur)
                cur = []
        if cur:
            groups.append(cur)
        self.facts.names = groups

    def _polarity(self) -> None:
        first = re.match(r"\s*([a-z]+)", self.original.lower())
        if first and first.group(1) in ("yes", "yeah", "yep", "correct", "no", "nope"):
            self.facts.polarity = "no" if first.group(1) in ("no", "nope") else "yes"
            body = self.original.lower()[first.end():]
        else:
            body = self.original.lower()
        toks = re.findall(r"[a-z]+(?:'[a-z]+)?", body)
        self.facts.negated = any(t in _NEGATIONS or t.endswith("n't") for t in toks)


_NAME_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'&.-]*")


def squash(w: str) -> str:
    return re.sub(r"[^a-z0-9]", "", w.lower())


def name_forms(text: str) -> set[str]:
    """Each name-shaped token of `text` as `_names` would key it (lower case, stemmed), with punctuation removed."""
    out: set[str] = set()
    for tok in _NAME_TOKEN.findall(text or ""):
        core = tok.rstrip(".'-").replace("'s", "").lower()
        out.update({squash(core), squash(stem(core.replace(".", "")))})
    return out - {""}


_CURRENCIES = {
    "usd": r"\busd\b|\bus\s?\$|\bu\.s\.\s?dollars?\b|\bus\s+dollars?\b|(?<![a-z])\$",
    "aud": r"\baud\b|\ba\$|\baustralian\s+dollars?\b", "cad": r"\bcad\b|\bc\$|\bcanadian\s+dollars?\b",
    "gbp": r"\bgbp\b|£|\bpounds?\s+sterling\b|\bsterling\b", "eur": r"\beur\b|€|\beuros?\b",
    "jpy": r"\bjpy\b|¥|\byen\b",
}


def currencies(text: str) -> set[str]:
    """The currencies a text names: "5,000 AUD" and "5,000 US dollars" carry the same number, not the same sum."""
    t = (text or "").lower()
    return {code for code, pattern in _CURRENCIES.items() if re.search(pattern, t)}


def extract(text: str) -> Facts:
    return Extractor(text).run()


def name_groups(text: str) -> list[list[str]]:
    """The name groups of `text` alone, without reading its other facts."""
    return Extractor(text).name_groups()
