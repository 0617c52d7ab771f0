"""The LLM judge: any chat model decides whether the agent's answer says what the golden answer says.

Why these choices:
- **Structured output at temperature 0.** The verdict must be machine-readable and repeatable. Endpoints get a JSON
  schema as `response_format`; local backends cannot enforce it, so the prompt also spells the JSON out and the
  reply is parsed leniently (code fences, prose around the object, single quotes, a bare ACCEPT/REJECT word).
  A reply that still cannot be read is a *reject* with the reason "unparseable judge output", and it is counted
  (`stats["unparseable"]`): a judge that cannot answer must not hand out rewards, and the count shows how often
  that happened.
- **A disk cache** (SQLite) keyed by a hash of the judge model, the prompt version and the three texts, so
  repeated evaluations, GRPO groups with identical answers, and calibration reruns never pay twice. Bump
  `PROMPT_VERSION` whenever the prompt changes, so old verdicts are not reused for a different question.
- **One batch.** `judge_many` sends every uncached item through one `backend.generate` call (in chunks of
  `batch_size`), which is what makes a local judge affordable.
- **"I don't know" is never judged**: it is not an attempt (see `agent/idk.py`); it is rejected without a call.
- A backend failure (dead endpoint: every request of a batch fails) raises `JudgeError` instead of quietly
  rejecting answers: a wrong reward is worse than a stopped run. A single request the backend refuses (too long
  for the context) is a reject that says so, counted in `stats["errors"]` and not cached.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from inboxrl.agent.idk import is_dont_know
from inboxrl.judge.base import Verdict
from inboxrl.models.base import ChatBackend, ChatRequest

PROMPT_VERSION = "judge-v2"

# The same rules as the lexical judge's (judge/gaming.py): the judge is a reward, and a reward that pays for a list
# of guesses teaches the policy to list them.
GAMING_RULES = (
    ("REJECT an answer that lists several candidates of the kind asked for (dates, times, names, amounts, numbers, "
    "rooms or places) where the golden answer gives one, even if one of them is right."),
    "REJECT an answer that adds candidates of that kind beyond the golden answer's own list.",
    ("REJECT a hedged answer that offers alternatives (\"X or possibly Y\", \"either X or Y\") unless the golden "
    "answer itself gives those alternatives."),
    "REJECT an answer that only restates the question.",
)

SYSTEM_PROMPT = (
    "You grade answers to questions about a user's email. Compare the candidate answer with the golden answer, "
    "which is correct. ACCEPT if the candidate states the key facts of the golden answer (names, numbers, dates, "
    "times, places) and contradicts none of them; different wording, and correct detail of a kind the question "
    "does not ask for, are fine. REJECT if "
    "a key fact is missing, wrong or contradicted, or if the candidate does not really answer.\n"
    + "".join(f"- {rule}\n" for rule in GAMING_RULES)
    + 'Reply with only a JSON object: {"accept": true or false, "reason": "<at most 20 words>"}'
)

RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"accept": {"type": "boolean"}, "reason": {"type": "string"}},
            "required": ["accept", "reason"],
            "additionalProperties": False,
        },
    },
}


class JudgeError(RuntimeError):
    """The judge could not judge at all (backend failure); one line for the user."""


def default_cache_path() -> Path:
    """Next to the models' cache (`$INBOXRL_CACHE`, default ~/.cache/inboxrl), so one variable moves both."""
    base = Path(os.environ.get("INBOXRL_CACHE") or Path.home() / ".cache" / "inboxrl").expanduser()
    return base / "judge-verdicts.sqlite"


def build_messages(question: str, golden: str, candidate: str) -> list[dict[str, str]]:
    user = (f"Question: {question.strip()}\n"
            f"Golden answer: {golden.strip()}\n"
            f"Candidate answer: {candidate.strip()}\n"
            "Reply with the JSON object only.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_TRUE = {"true", "yes", "accept", "accepted", "correct", "1"}
_FALSE = {"false", "no", "reject", "rejected", "incorrect", "wrong", "0"}


def _as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    return None


def _objects(text: str) -> list[str]:
    """Balanced {...} spans in the text, outermost first, ignoring braces inside strings."""
    out: list[str] = []
    depth, start, in_str, esc, quote = 0, -1, False, False, ""
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == quote:
                in_str = False
            continue
        if ch in "\"'" and depth > 0:
            in_str, quote = True, ch
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                out.append(text[start:i + 1])
    return out


def parse_verdict(text: str) -> tuple[bool, str, str] | None:
    """(accept, reason, how) from a judge's reply, or None if no verdict can be read.

    `how` is "json" for a JSON object with a boolean `accept`, "lenient" for anything looser (a Python-style dict,
    an `"accept": true` pair in broken JSON, or a reply that starts with ACCEPT/REJECT).
    """
    t = (text or "").strip()
    t = re.sub(r"^```(?:json)?\s*|\s*```$", "", t, flags=re.IGNORECASE)
    for obj in _objects(t):
        for loader, how in ((json.loads, "json"), (ast.literal_eval, "lenient")):
            try:
                d = loader(obj)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(d, dict):
                d = {str(k).lower(): v for k, v in d.items()}
                for key in ("accept", "accepted", "correct", "verdict", "decision"):
                    if key in d:
                        b = _as_bool(d[key])
                        if b is not None:
                            reason = str(d.get("reason") or d.get("explanation") or "").strip()
                            return b, reason, how if key == "accept" and isinstance(d[key], bool) else "lenient"
    m = re.search(r"[\"']?accept[\"']?\s*[:=]\s*[\"']?(true|false|yes|no)\b", t, re.IGNORECASE)
    if m:
        r = re.search(r"[\"']?reason[\"']?\s*[:=]\s*[\"']([^\"']*)", t, re.IGNORECASE)
        return m.group(1).lower() in ("true", "yes"), (r.group(1).strip() if r else ""), "lenient"
    m = re.match(r"\W*(accept(?:ed)?|reject(?:ed)?|correct|incorrect)\b[\s.:,-]*(.*)", t,
                 re.IGNORECASE | re.DOTALL)
    if m:
        return m.group(1).lower() in ("accept", "accepted", "correct"), m.group(2).strip()[:200], "lenient"
    return None


class VerdictCache:
    """SQLite key -> verdict. Safe across threads; several processes may share it (WAL, busy timeout)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, accept INTEGER NOT NULL, reason TEXT NOT "
            "NULL, how TEXT NOT NULL, judge TEXT NOT NULL, raw TEXT NOT NULL, created REAL NOT NULL)")
        self._conn.commit()

    def get_many(self, keys: list[str]) -> dict[str, tuple[bool, str, str]]:
        out: dict[str, tuple[bool, str, str]] = {}
        with self._lock:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                q = f"SELECT key, accept, reason, how FROM verdicts WHERE key IN ({','.join('?' * len(chunk))})"
                for k, a, r, h in self._conn.execute(q, chunk):
                    out[k] = (bool(a), r, h)
        return out

    def put_many(self, rows: list[tuple[str, bool, str, str, str, str]]) -> None:
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO verdicts(key, accept, reason, how, judge, raw, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(k, int(a), r, h, j, raw, time.time()) for k, a, r, h, j, raw in rows])
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class LLMJudge:
    """A judge over any `ChatBackend`. `cache_path=None` turns the cache off."""

    def __init__(self, backend: ChatBackend, cache_path: str | Path | None = None, max_tokens: int = 64,
                 prompt_version: str = PROMPT_VERSION, batch_size: int = 16):
        self.backend = backend
        self.name = str(getattr(backend, "name", "llm"))
        self.max_tokens = max_tokens
        self.prompt_version = prompt_version
        self.batch_size = max(1, batch_size)
        self.cache = VerdictCache(cache_path) if cache_path is not None else None
        # Counters over this judge's lifetime: how many verdicts came from where, and how many were unreadable.
        self.stats = {"judged": 0, "cache_hits": 0, "generated": 0, "dont_know": 0, "parsed_json": 0,
                      "parsed_lenient": 0, "unparseable": 0, "errors": 0}

    def key(self, question: str, golden: str, candidate: str) -> str:
        blob = json.dumps([self.name, self.prompt_version, self.max_tokens, question, golden, candidate],
                          ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def judge(self, question: str, golden: str, candidate: str) -> Verdict:
        return self.judge_many([(question, golden, candidate)])[0]

    def judge_many(self, items: list[tuple[str, str, str]]) -> list[Verdict]:
        out: list[Verdict | None] = [None] * len(items)
        keys: list[str] = []
        for i, (q, g, c) in enumerate(items):
            keys.append(self.key(q, g, c))
            if is_dont_know(c):
                out[i] = Verdict(False, "\"I don't know\" is not an attempt; not sent to the judge", self.name)
                self.stats["dont_know"] += 1
        pending = [i for i in range(len(items)) if out[i] is None]
        cached = self.cache.get_many(list({keys[i] for i in pending})) if self.cache and pending else {}
        todo: dict[str, list[int]] = {}  # identical items are generated once
        for i in pending:
            hit = cached.get(keys[i])
            if hit is not None:
                out[i] = self._verdict(*hit)
                self.stats["cache_hits"] += 1
            else:
                todo.setdefault(keys[i], []).append(i)
        if todo:
            self._generate(items, todo, out)
        self.stats["judged"] += len(items)
        return [v for v in out if v is not None]

    def _verdict(self, accept: bool, reason: str, how: str) -> Verdict:
        self.stats[{"json": "parsed_json", "lenient": "parsed_lenient"}.get(how, "unparseable")] += 1
        return Verdict(accept, reason, self.name)

    def _generate(self, items: list[tuple[str, str, str]], todo: dict[str, list[int]],
                  out: list[Verdict | None]) -> None:
        order = list(todo)
        for s in range(0, len(order), self.batch_size):
            chunk = order[s:s + self.batch_size]
            reqs = []
            for k in chunk:
                q, g, c = items[todo[k][0]]
                reqs.append(ChatRequest(episode_id=f"judge-{k[:16]}-{s}", messages=build_messages(q, g, c),
                                        max_tokens=self.max_tokens, temperature=0.0, seed=0,
                                        response_format=RESPONSE_FORMAT))
            try:
                resps = self.backend.generate(reqs)
            finally:
                for r in reqs:
                    try:
                        self.backend.end_episode(r.episode_id)
                    except Exception:  # noqa: BLE001, S110 - freeing state must never hide the real outcome
                        pass
            if len(resps) != len(reqs):
                raise JudgeError(f"judge {self.name}: backend returned {len(resps)} replies for {len(reqs)} requests")
            if all(r.error for r in resps):
                raise JudgeError(f"judge {self.name}: {resps[0].error}")
            rows = []
            for k, resp in zip(chunk, resps):
                if resp.error:
                    # One item the backend could not take (e.g. too long for the context): reject that one, say
                    # why, count it, and do not cache it.
                    self.stats["errors"] += 1
                    for i in todo[k]:
                        out[i] = Verdict(False, f"judge error: {resp.error}", self.name)
                    continue
                parsed = parse_verdict(resp.text)
                if parsed is None:
                    snippet = " ".join((resp.text or "").split())[:80]
                    accept, reason, how = False, f"unparseable judge output: {snippet!r}", "unparseable"
                else:
                    accept, reason, how = parsed
                self.stats["generated"] += 1
                rows.append((k, accept, reason, how, self.name, resp.text or ""))
                for i in todo[k]:
                    out[i] = self._verdict(accept, reason, how)
            if self.cache is not None:
                self.cache.put_many(rows)
