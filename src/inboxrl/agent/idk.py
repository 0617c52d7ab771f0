"""Recognising "I don't know" answers.

An "I don't know" is not an attempt: it is never sent to the judge, and the reward puts it in the tier above a
wrong answer (we would rather the agent admit ignorance than invent). The agent loop and the rubric must agree on
what counts as one, so both call `is_dont_know` from here.

The rule is deliberately conservative about *hedged* answers: "I don't know the exact time, but it was on Friday"
carries a claim and is an attempt (the judge decides it). Only answers whose whole content is a refusal, a
"could not find", or a "no information" count as "I don't know". An empty or missing answer counts too, since it
says nothing.
"""

from __future__ import annotations

import re

# Phrases that say "I have no answer". Matched on a lower-cased, apostrophe-normalised text.
_IDK_PHRASES = [
    r"i (?:do not|don't|dont) know",
    r"(?:i am|i'm|im) not (?:sure|certain)",
    r"(?:i am|i'm|im) (?:unable|not able) to (?:find|determine|locate|answer|tell|say|identify)",
    (r"i (?:could not|couldn't|couldnt|cannot|can't|cant|can not|was unable to|was not able to|did not|didn't|"
     r"didnt) (?:find|locate|determine|identify|tell|say|answer|see|get)"),
    (r"(?:there is|there's|there are|there was|there were|i (?:have|had|found|see)) no (?:relevant |such |"
     r"specific |clear |further )?(?:information|info|emails?|messages?|mention|record|details?|answer|data|"
     r"results?|evidence)"),
    r"no (?:relevant |specific )?(?:information|emails?|messages?|results?) (?:was |were )?found",
    (r"(?:the )?(?:information|answer|details?|date|time|number|amount|name) (?:is|are|was|were) not "
     r"(?:available|found|mentioned|provided|given|specified|stated|in)"),
    r"no idea",
    r"(?:cannot|can't|can not|could not) be (?:determined|found|answered)",
    r"unable to (?:find|determine|locate|answer|identify)",
    r"not enough information",
    r"insufficient information",
]
_IDK_RE = re.compile(r"\b(?:" + "|".join(_IDK_PHRASES) + r")\b")

# Answers that are nothing but a placeholder.
_BARE = {"unknown", "n/a", "na", "none", "not found", "no answer", "idk", "no information", "not available",
         "not sure", "unsure", "no idea", "?", "..."}

# A hedge followed by a claim ("..., but it was on Friday") makes the answer an attempt.
_CLAIM_AFTER_HEDGE = re.compile(
    r"\b(?:but|however|although|though|except|probably|likely|maybe|perhaps|possibly|it (?:was|is|seems|looks)|"
    r"i think|i believe|best guess|mentions?|says|states|according to|indicates?)\b")

_WORD = re.compile(r"[a-z0-9]+")


def _normalise(text: str) -> str:
    t = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return re.sub(r"\s+", " ", t).strip()


def is_dont_know(text: str | None) -> bool:
    """True if the answer says, in effect, only "I don't know" (or is empty)."""
    if text is None:
        return True
    t = _normalise(text)
    if not _WORD.search(t):
        return True
    if t.strip(" .!") in _BARE:
        return True
    if not _IDK_RE.search(t):
        return False
    return not _CLAIM_AFTER_HEDGE.search(t)
