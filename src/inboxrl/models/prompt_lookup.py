"""Prompt-lookup drafts for speculative decoding: the next tokens are guessed by finding the stream's last n-gram
earlier in the stream (the agent copies names, dates and phrases from the mail it read) and taking what followed.

The draft rule is transformers' `PromptLookupCandidateGenerator` (n-grams from `max_ngram` down to 1, the first
match from the left), so acceptance measured here is what `generate(..., prompt_lookup_num_tokens=N)` would get.
Greedy verification accepts the longest prefix of the draft that equals the model's own choices, plus the one token
the verifying forward pass yields anyway: the output is identical to plain greedy decoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def draft(ids: Sequence[int], num_tokens: int, max_ngram: int = 2) -> list[int]:
    """Up to `num_tokens` guessed continuations of `ids`; empty when the last n-gram never occurred before."""
    n_ids = len(ids)
    for n in range(min(max_ngram, n_ids - 1), 0, -1):
        tail = list(ids[n_ids - n:])
        for i in range(n_ids - n):
            if list(ids[i:i + n]) == tail:
                start = i + n
                end = min(start + num_tokens, n_ids)
                if start < end:
                    return list(ids[start:end])
    return []


@dataclass
class LookupReplay:
    """What prompt-lookup decoding would do on a known greedy output: forward passes, drafted and accepted
    tokens."""

    tokens: int = 0  # output tokens
    passes: int = 0  # forward passes of the model (plain greedy: one per token)
    drafted: int = 0
    accepted: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def tokens_per_pass(self) -> float:
        return self.tokens / self.passes if self.passes else 0.0


def replay(context: Sequence[int], output: Sequence[int], num_tokens: int, max_ngram: int = 2) -> LookupReplay:
    """Replays greedy speculative decoding with prompt-lookup drafts over `output`, the model's greedy reply to
    `context`. Exact for greedy decoding: a drafted token is accepted iff it is the token greedy decoding chose."""
    r = LookupReplay(tokens=len(output))
    pos = 0
    while pos < len(output):
        d = draft(list(context) + list(output[:pos]), min(num_tokens, len(output) - pos - 1), max_ngram)
        ok = 0
        while ok < len(d) and d[ok] == output[pos + ok]:
            ok += 1
        r.drafted += len(d)
        r.accepted += ok
        r.passes += 1
        pos += ok + 1  # the accepted drafts and the verifying pass's own next token
    return r
