"""Search-hit snippets: a few words around the matches, with each match marked as [word].

FTS5's own `snippet()` was the first choice, but it can only run inside a MATCH query: on the big index that means
a slow `rowid IN (...)` lookup, and on a scratch FTS5 table holding just the hits it cost about 1 ms of CPU per
search (insert, delete, re-tokenise), half of the latency budget. This does the same job in Python, in tens of
microseconds: str.find locates candidate matches, and only those are checked in Python. It tokenises like FTS5's unicode61 (letters and digits, diacritics folded) and
approximates the porter stemmer by suffix-stripping the query word and accepting tokens that extend its stem a
little, so "meetings" marks "meeting" and "meet". A missed mark costs nothing: the hit was found by FTS5 itself.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata

_TOKEN = re.compile(r"[^\W_]+")
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ies", "ied", "ed", "es", "ly", "s")
MAX_MATCHES = 40  # matches considered per text when choosing where the snippet starts
SCAN_CHARS = 30_000  # matches further into a body are not looked for (the snippet then shows its start)


def fold(text: str) -> str:
    """Lower case without diacritics, as FTS5's `remove_diacritics 2` compares."""
    text = text.lower()
    if text.isascii():
        return text
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@functools.lru_cache(maxsize=512)
def _stems(words: tuple[str, ...]) -> dict[str, str]:
    """stem -> query word."""
    return {_stem(fold(w)): w for w in words}


def _which(token: str, stems: dict[str, str]) -> str | None:
    t = fold(token)
    for stem, word in stems.items():
        if t == word or (len(stem) >= 3 and t.startswith(stem) and len(t) <= len(stem) + 4):
            return word
    return None


def _matches(text: str, stems: dict[str, str]) -> list[tuple[int, str]]:
    """(position, query word) of the first matches in text. str.find per stem is the fast scan (a regex
    alternation with a word-boundary check was 30 times slower); only the candidates it finds are checked."""
    text = text[:SCAN_CHARS]
    folded = fold(text)
    scan = folded if len(folded) == len(text) else text.lower()  # positions must line up with the original text
    out: list[tuple[int, str]] = []
    seen: dict[str, str | None] = {}  # token -> query word: a text repeats its words
    find, match = scan.find, _TOKEN.match
    for stem in stems:
        pos = find(stem)
        found = 0
        while pos >= 0 and found < MAX_MATCHES:
            if pos == 0 or not scan[pos - 1].isalnum():
                tok = match(text, pos)
                if tok is not None:
                    t = tok.group(0)
                    word = seen[t] if t in seen else seen.setdefault(t, _which(t, stems))
                    if word is not None:
                        out.append((pos, word))
                        found += 1
            pos = find(stem, pos + 1)
    out.sort()
    return out[:MAX_MATCHES]


def _best_start(matches: list[tuple[int, str]], span: int) -> tuple[int, int]:
    """(distinct words, position): the match that starts the stretch of text holding most distinct words."""
    best, best_pos = 0, 0
    most = len({w for _, w in matches})  # no stretch can hold more: the first to reach it wins
    for i, (pos, _) in enumerate(matches):
        end = pos + span
        words: set[str] = set()
        for p, w in itertools.islice(matches, i, None):  # matches are in position order
            if p >= end:
                break
            words.add(w)
        if len(words) > best:
            best, best_pos = len(words), pos
            if best == most:
                break
    return best, best_pos


def _render(text: str, pos: int, marked: set[int], size: int) -> str:
    # A little context before the match: the last two tokens of the 80 characters before it, found as the first
    # two of the reversed text (token characters are a class, so reversal keeps the boundaries).
    back = text[max(0, pos - 80):pos][::-1]
    start = pos
    m = _TOKEN.search(back)
    if m is not None:
        m2 = _TOKEN.search(back, m.end())
        start = pos - (m2 or m).end()
    # The snippet is the text from there to the end of the size-th token (what trails the text's last token is not
    # shown), with the tokens that start at a match bracketed; "…" marks text cut at either end.
    span = _tokens(size).match(text, start)
    end = span.end() if span else start
    out = ["…"] if start > 0 else []
    last = start
    for b in sorted(marked):
        if start <= b < end and text[b].isalnum() and (b == start or not text[b - 1].isalnum()):
            e = _TOKEN.match(text, b).end()  # type: ignore[union-attr]
            out += (text[last:b], "[", text[b:e], "]")
            last = e
    out.append(text[last:end])
    if _TOKEN.search(text, end):
        out.append("…")
    return " ".join("".join(out).split())


@functools.lru_cache(maxsize=64)
def _tokens(size: int) -> re.Pattern[str]:
    """Up to `size` tokens with what separates them (greedy, so each repetition takes a whole token)."""
    return re.compile(rf"(?:[\W_]*[^\W_]+){{1,{size}}}")


def snippet(subject: str, body: str, words: list[str], size: int = 16) -> str:
    """A snippet of the body (or of the subject, if only it matches), matches in [brackets]."""
    stems = _stems(tuple(words))
    best: tuple[int, str, int, set[int]] = (-1, "", 0, set())
    for text in (body or "", subject or ""):  # the body first: it wins ties, and it is what the subject is not
        matches = _matches(text, stems)
        distinct, pos = _best_start(matches, span=size * 8)
        if distinct > best[0]:
            best = (distinct, text, pos, {p for p, _ in matches})
    return _render(best[1], best[2], best[3], size) if best[1] else ""
