"""Turning a finished trajectory (plus the judge's verdict) into a rubric: the facts the reward is computed from.

Everything here is read off the trajectory's recorded turns and tool events, never re-run, so a rubric can be
rebuilt later from a trajectories.jsonl file (for instance with a different judge) and give the same facts.

Message ids: the golden ids of ART-E questions are often the Message-ID of one copy of a mail while the store kept
another copy (the store de-duplicates and records every copy's id in its `aliases` table). Given the store, two
ids match when they resolve to the same stored message (`store.access.Store.resolve`); without it, they match only
when equal (angle brackets and surrounding whitespace ignored).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from inboxrl.agent.idk import is_dont_know
from inboxrl.judge.base import Verdict
from inboxrl.store.access import Store
from inboxrl.tools.base import READ_TOOL, SEARCH_TOOL, normalise_id
from inboxrl.trajectory import ANSWER_BEFORE_SEARCH, Rubric, Trajectory


class IdResolver:
    """Maps message ids to a canonical key: the stored message's row when the store knows the id, else the id.

    Lookups are cached because a scoring run asks about the same golden ids many times (GRPO groups).
    """

    def __init__(self, db: str | Path | sqlite3.Connection | None = None):
        self._store: Store | None = Store.of(db) if db is not None else None  # a path is opened read-only
        self._cache: dict[str, str] = {}

    def key(self, mid: str) -> str:
        n = normalise_id(mid)
        if n in self._cache:
            return self._cache[n]
        k = n
        if self._store is not None and n:
            rowid = self._store.resolve(n)
            if rowid is not None:
                k = f"#row{rowid}"
        self._cache[n] = k
        return k

    def keys(self, ids: Iterable[str]) -> set[str]:
        return {self.key(i) for i in ids if normalise_id(i)}

    def close(self) -> None:
        if self._store is not None:
            self._store.close()  # closes only a connection it opened
            self._store = None


def _read_targets(event_arguments: dict, result_ids: list[str]) -> list[str]:
    """The id a read_email call asked for (the result id if the read succeeded)."""
    ids = list(result_ids)
    for k in ("message_id", "id", "email_id"):
        v = event_arguments.get(k)
        if isinstance(v, str) and v.strip():
            ids.append(v)
    return ids


def build_rubric(traj: Trajectory, verdict: Verdict | None, max_turns: int,
                 db: str | Path | sqlite3.Connection | IdResolver | None = None) -> Rubric:
    """The rubric of one finished episode.

    `verdict` is the judge's decision on `traj.final_answer`; it is ignored (and may be None) when the answer is
    not an attempt ("I don't know", no answer at all). An attempt without a verdict counts as not correct.
    """
    resolver = db if isinstance(db, IdResolver) else IdResolver(db)
    try:
        golden = resolver.keys(traj.golden_message_ids)
        answered = traj.stop_reason in (None, "answered") and traj.final_answer is not None
        said_idk = answered and is_dont_know(traj.final_answer)
        attempted = answered and not said_idk

        cited = resolver.keys(traj.final_sources)
        sources_correct = bool(cited) and bool(golden) and cited <= golden

        found = read = False
        invalid_reads = 0
        refused_answers = 0
        for ev in traj.tool_events:
            if ev.error == ANSWER_BEFORE_SEARCH:
                refused_answers += 1
            elif ev.name == SEARCH_TOOL and ev.ok:
                if golden & resolver.keys(ev.result_ids):
                    found = True
            elif ev.name == READ_TOOL:
                if not ev.ok:
                    # Counts ids that do not exist or are out of scope (invented ids, ids from another inbox or
                    # from the future): the tool answers those with an error code such as "not_found". Malformed
                    # calls are format errors, counted from the turns; a crashing tool ("TypeError: ...") is not
                    # the model's fault.
                    code = ev.error or "not_found"
                    if re.fullmatch(r"[a-z_]+", code) and code not in ("bad_arguments", "unknown_tool"):
                        invalid_reads += 1
                elif golden & resolver.keys(_read_targets(ev.arguments, ev.result_ids)):
                    read = True

        format_errors: dict[str, int] = {}
        for turn in traj.turns:
            if turn.format_error is not None:
                kind = turn.format_error.value if hasattr(turn.format_error, "value") else str(turn.format_error)
                format_errors[kind] = format_errors.get(kind, 0) + 1

        return Rubric(
            answer_correct=bool(attempted and verdict is not None and verdict.accept),
            attempted_answer=attempted,
            said_dont_know=said_idk,
            sources_correct=sources_correct,
            num_turns=len(traj.turns),
            max_turns=max_turns,
            found_source_in_search=found,
            read_source=read,
            invalid_read_attempts=invalid_reads,
            refused_answers=refused_answers,
            format_errors=format_errors,
            ended_by_format_error=traj.stop_reason == "format_error",
            # A full context window is the same failure as running out of turns: the budget ended the episode.
            ran_out_of_turns=traj.stop_reason in ("out_of_turns", "context_full"),
            judge_reason=(verdict.reason if verdict is not None and attempted else None),
        )
    finally:
        if resolver is not db:
            resolver.close()
