"""The shape of a check's result, and the episode ids its flags name.

`CheckReport.model_dump()` is what `metrics.json` holds under "checks", what `inboxrl check --json` prints and what
the viewer reads, so its shape is a contract:

    {"n_episodes": int, "detectors": {"<name>": {"count": int, "flagged": [<episode id>], "detail": str}}}

An episode id is the trajectory's question id, suffixed "#k" (k counted from 0 within the file) only when that
question id occurs more than once in the file (GRPO groups, several models in one eval run).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from inboxrl.trajectory import Trajectory

# In the order reports show them.
DETECTORS = ("shotgun", "unsupported", "answer_collapse", "abstention_collapse", "repeated_calls", "divergence")


class DetectorResult(BaseModel):
    count: int = 0  # the number of flagged episodes
    flagged: list[str] = Field(default_factory=list)
    detail: str = ""


class CheckReport(BaseModel):
    n_episodes: int
    detectors: dict[str, DetectorResult]

    def counts(self) -> dict[str, int]:
        return {name: d.count for name, d in self.detectors.items()}


def episode_ids(trajs: Sequence[Trajectory]) -> list[str]:
    """One id per trajectory, in order: the question id, with "#k" when the id repeats in `trajs`."""
    totals = Counter(t.question_id for t in trajs)
    seen: Counter[str] = Counter()
    out = []
    for t in trajs:
        qid = t.question_id
        out.append(f"{qid}#{seen[qid]}" if totals[qid] > 1 else qid)
        seen[qid] += 1
    return out


def result(flagged: Sequence[str], detail: str) -> DetectorResult:
    return DetectorResult(count=len(flagged), flagged=list(flagged), detail=detail)


def per_episode(trajs: Sequence[Trajectory], ids: Sequence[str], counts: Callable[[Trajectory], bool],
                finding: Callable[[Trajectory], str | None], detail: Callable[[int, int], str]) -> DetectorResult:
    """A detector that judges each episode alone: of the episodes `counts` keeps, those whose `finding` is a text
    are flagged; `detail(flagged, counted)` describes them, followed by two of the findings as examples."""
    flagged: list[str] = []
    examples: list[str] = []
    n = 0
    for t, eid in zip(trajs, ids):
        if not counts(t):
            continue
        n += 1
        found = finding(t)
        if found:
            flagged.append(eid)
            if len(examples) < 2:
                examples.append(f"{eid}: {found}")
    text = detail(len(flagged), n)
    return result(flagged, text + (f"; e.g. {'; '.join(examples)}" if examples else ""))
