"""Turning a model's keywords into a safe FTS5 query.

Keywords come from a language model and are hostile by accident (and in tests, on purpose): quotes, FTS5 operators,
SQL, 10 kB strings, emoji, NULs, lone surrogates. We never hand them to FTS5's query parser as syntax. Instead each
keyword is split into words the way FTS5's `unicode61` tokenizer would split it, and every word becomes a quoted
FTS5 string literal, so `NEAR`, `*`, `-` or `)` can only ever be searched as text (and mostly vanish, being
punctuation). The query string itself is then passed as a bound parameter, so nothing reaches SQL either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# unicode61 treats letters, numbers and private-use characters as token characters and everything else (the
# underscore included) as a separator. `[^\W_]` is Python's closest match: letters and digits of every script.
_WORD = re.compile(r"[^\W_]+")

# Words so common in mail that requiring them excludes almost nothing while making FTS5 read huge doclists; dropped
# when the query has other words (so a query of only such words still searches them).
STOP_WORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers him his how i if in into is it its itself just me more most my no nor not of
    off on once only or other our ours out over own same she should so some such than that the their
    theirs them then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours email emails mail message
    messages
    """.split()
)

MAX_WORDS = 16  # an AND of more words than this finds nothing anyway, and a 10 kB "keyword" must stay cheap
MAX_WORD_CHARS = 64  # longer runs are base64 or a model repeating itself; FTS5 cannot usefully match them
MAX_QUERY_CHARS = 2000  # of all keywords together; beyond this a model is pasting text, not choosing words


def clean_text(value: Any) -> str:
    """Any value as a str that SQLite and JSON accept: lone surrogates and NULs removed."""
    s = value if isinstance(value, str) else str(value)
    if "\x00" in s:
        s = s.replace("\x00", "")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "ignore").decode("utf-8")
    return s


@dataclass
class Terms:
    """The searchable words of a query, and what was dropped on the way (so the tool can say so)."""

    words: list[str] = field(default_factory=list)
    stop_words_dropped: list[str] = field(default_factory=list)
    truncated: bool = False

    def fts_and(self) -> str:
        return " ".join(_quote(w) for w in self.words)

    def fts_or(self) -> str:
        return " OR ".join(_quote(w) for w in self.words)

    def fts_pairs(self) -> str:
        """Any two of the words: `("a" AND "b") OR ("a" AND "c") OR ...`."""
        w = self.words
        return " OR ".join(f"({_quote(a)} AND {_quote(b)})" for i, a in enumerate(w) for b in w[i + 1:])


def _quote(word: str) -> str:
    # The words contain no quotes (they are letters and digits), but escaping keeps this correct if _WORD changes.
    return '"' + word.replace('"', '""') + '"'


def terms_from_keywords(keywords: Iterable[Any] | str | None) -> Terms:
    """Splits keywords into distinct lower-cased words, dropping stop words when real words remain."""
    if keywords is None:
        return Terms()
    if isinstance(keywords, (str, bytes)) or not isinstance(keywords, Iterable):
        keywords = [keywords]
    seen: dict[str, None] = {}
    budget = MAX_QUERY_CHARS
    cut = False
    for kw in keywords:
        if budget <= 0:
            cut = True
            break
        if isinstance(kw, bytes):
            kw = kw.decode("utf-8", "replace")
        text = clean_text(kw if isinstance(kw, str) else str(kw)[:budget])
        cut = cut or len(text) > budget
        text, budget = text[:budget], budget - len(text)
        for m in _WORD.finditer(text):
            w = m.group(0).lower()
            if len(w) <= MAX_WORD_CHARS:
                seen.setdefault(w, None)
    words = list(seen)
    useful = [w for w in words if w not in STOP_WORDS and not (len(w) == 1 and not w.isdigit())]
    dropped = [w for w in words if w not in useful] if useful else []
    words = useful or words
    truncated = cut or len(words) > MAX_WORDS
    return Terms(words=words[:MAX_WORDS], stop_words_dropped=dropped, truncated=truncated)


_ISO_DAY = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T\s].*)?$")
_US_DAY = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s*$")
_TEXT_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d %b %Y", "%B %d %Y", "%b %d %Y")


def parse_day(value: Any) -> str | None:
    """A model-written date as 'YYYY-MM-DD', or None when it is not a date.

    Models write dates as they like; ISO is what the schema asks for, but US order (Enron's own) and spelled-out
    months are cheap to accept, and accepting them spares an episode a wasted turn.
    """
    from datetime import date, datetime

    s = clean_text(value).strip()
    if not s or len(s) > 40:
        return None
    parts: tuple[int, int, int] | None = None
    if m := _ISO_DAY.match(s):
        parts = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    elif m := _US_DAY.match(s):
        parts = (int(m.group(3)), int(m.group(1)), int(m.group(2)))
    else:
        for fmt in _TEXT_FORMATS:
            try:
                d = datetime.strptime(s, fmt)
            except ValueError:
                continue
            parts = (d.year, d.month, d.day)
            break
    if parts is None:
        return None
    try:
        return date(*parts).isoformat()
    except ValueError:
        return None
