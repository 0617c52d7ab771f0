"""The agent's three tools over the mail store, scoped to one inbox address and to mail sent before a date.

Scope is the whole point of this module: the agent answers as if it were the question's date and it were that one
user, so it must never see another inbox or the future. Searches find candidates fast (store/search.py), but
nothing is returned or read before one last check against the store's own tables (`store.access.visible_sql`: the
inbox is a participant, the date is trusted and before the question's day). A bug in the fast path can make a
search miss, never leak.

The methods are plain Python (the CLI and tests call them directly); `call()` is the door the agent loop uses: it
checks a model's arguments against the same signatures the schemas are built from and turns failures into
`ToolResult`s the model can read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inboxrl.store import access as store_access
from inboxrl.store import schema as store_schema
from inboxrl.store.search import ParticipantFilter, ScopedSearch
from inboxrl.tools.base import (
    TOOL_NAMES,
    BadArgumentsError,
    Scope,
    ToolNotFound,
    ToolQueryError,
    ToolResult,
    UnknownToolError,
)
from inboxrl.tools.query import Terms, clean_text, parse_day, terms_from_keywords
from inboxrl.tools.schemas import coerce_arguments, function_schema
from inboxrl.tools.snippets import snippet

__all__ = [
    "TOOL_NAMES",
    "InboxTools",
    "SearchHits",
    "StoreOpenError",
    "ToolNotFound",
    "ToolQueryError",
    "ToolsConfig",
    "tool_schemas",
]



class ToolsConfig(BaseModel):
    """The tools' settings; unknown keys are refused, so a typo in a config file is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")

    body_char_limit: int = Field(4000, ge=200)  # read_email cuts longer bodies, with a note saying how to page
    # Subject, sender and each recipient or attachment name are cut at this many characters, and each recipient
    # list at `recipients_shown`: a hostile header must not fill the model's context.
    header_char_limit: int = Field(300, ge=20)
    recipients_shown: int = Field(200, ge=1)
    snippet_tokens: int = Field(16, ge=1, le=64)
    default_max_results: int = Field(10, ge=1)
    max_results_cap: int = Field(50, ge=1)  # a model asking for 10,000 hits gets this many
    ranking: Literal["bm25", "date"] = "bm25"
    or_fallback: bool = True  # when an AND search finds nothing, retry with OR and say so in the result
    bm25_subject_weight: float = 1.0  # FTS5 column weights for bm25(): subject, body
    bm25_body_weight: float = 1.0
    bm25_cap: int = Field(500, ge=10)  # bm25 scores at most this many in-scope matches (the newest stored)
    # A word in at least this many messages of the whole store is too common to search by (and walking its
    # doclist would cost milliseconds): dropped when other words remain, else the newest matches are shown.
    common_word_df: int = Field(20_000, ge=1)
    common_word_fraction: float = Field(0.1, gt=0, le=1)  # ...or in this share of all messages, if that is fewer
    or_fallback_words: int = Field(8, ge=2)  # the OR fallback uses this many of the rarest words
    or_pair_words: int = Field(4, ge=2)  # ...and first asks for two of the rarest this many
    common_word_sample: int = Field(50, ge=1)  # how many recent matches of only-common words are looked at

    @classmethod
    def load(cls, path: str | Path) -> ToolsConfig:
        """From a YAML/TOML/JSON file: the whole file, or its `tools` table (so one file can configure every part)."""
        from inboxrl.configfile import load_model

        return load_model(cls, path, section="tools")


class StoreOpenError(ValueError):
    """The store file is missing or is not an inboxrl store: one line for the user, not a traceback."""


class SearchHits(list):  # type: ignore[type-arg]
    """A list of hit dicts that also carries what the model should be told about how they were found."""

    note: str | None = None
    query: str = ""  # the FTS5 expression that produced the hits, for the live trace and debugging


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _cut(text: str | None, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _participant_filter(value: str | None, roles: tuple[str, ...]) -> ParticipantFilter | None:
    """An exact address when the model gave one, else a case-insensitive fragment of an address or name."""
    if value is None:
        return None
    v = clean_text(value).strip()[:200]
    if not v:
        return None
    _, addr = parseaddr(v)
    if "@" in addr:
        return ParticipantFilter(roles=roles, exact=addr.lower())
    esc = v.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return ParticipantFilter(roles=roles, like=f"%{esc}%")


class InboxTools:
    """search_inbox / read_email / return_final_answer for one episode's scope."""

    def __init__(self, db: str | Path | sqlite3.Connection, scope: Scope, config: ToolsConfig | None = None):
        self.scope = scope
        self.config = config or ToolsConfig()
        self._own_conn = not isinstance(db, sqlite3.Connection)
        if isinstance(db, sqlite3.Connection):
            self.conn = db
        else:
            path = Path(db)
            if not path.is_file():
                raise StoreOpenError(f"no mail store at {path} (build one with `inboxrl ingest`)")
            try:
                self.conn = store_schema.connect(str(path), readonly=True)
            except sqlite3.DatabaseError as e:
                raise StoreOpenError(str(e) if isinstance(e, store_schema.StoreIncompleteError)
                                     else f"{db}: not a readable inboxrl store ({e})") from None
        self.inbox = clean_text(scope.inbox).strip().lower()
        self.before = parse_day(scope.before) if scope.before else None
        self.after = parse_day(scope.after) if scope.after else None
        if scope.before and self.before is None:
            raise ValueError(f"scope date is not a date: {scope.before!r}")
        if scope.after and self.after is None:
            raise ValueError(f"scope date is not a date: {scope.after!r}")
        try:  # fails here, with one clear line, on a file that is not a store
            store_access.Store(self.conn).check()
        except sqlite3.DatabaseError as e:
            if self._own_conn:
                self.conn.close()
            raise StoreOpenError(f"{db}: not a readable inboxrl store ({e})") from None
        self._store = store_access.Store(self.conn)  # ids and scope, the store's way
        self._search: ScopedSearch | None = None  # made on the first search: reads need no temp tables
        self._methods: dict[str, Callable[..., Any]] = {
            "search_inbox": self.search_inbox,
            "read_email": self.read_email,
            "return_final_answer": self.return_final_answer,
        }

    # -- scope -------------------------------------------------------------------------------------------------

    def in_scope(self, rowid: int) -> bool:
        return self._store.visible(rowid, self.inbox, self.before, self.after)

    @property
    def scope_size(self) -> int:
        """How many messages the agent can see (useful for reports; zero usually means a wrong inbox or date)."""
        return self._store.scope_size(self.inbox, self.before, self.after)

    def canonical_id(self, message_id: str) -> str | None:
        """The stored Message-ID for any copy's id (aliases resolve), if that message is in scope; else None.

        The rubric needs this: question sets cite whichever copy of a duplicate they saw.
        """
        rowid = self._resolve(message_id)
        return self._store.message_id(rowid) if rowid is not None else None

    def _resolve(self, message_id: Any) -> int | None:
        """The stored row a cited id names (any copy's id), if this scope may see it."""
        rowid = self._store.resolve(clean_text(message_id))
        return rowid if rowid is not None and self.in_scope(rowid) else None

    # -- the tools (their docstrings are what the model reads: keep them short) --------------------------------

    def search_inbox(
        self,
        keywords: list[str] | str,
        from_addr: str | None = None,
        to_addr: str | None = None,
        sent_after: str | None = None,
        sent_before: str | None = None,
        max_results: int | None = None,
    ) -> list[dict]:
        """Search the user's emails by keywords.

        Args:
            keywords: Words the email contains.
            from_addr: Sender address or name.
            to_addr: Recipient address or name.
            sent_after: YYYY-MM-DD; sent on or after.
            sent_before: YYYY-MM-DD; sent before.
            max_results: How many, at most 50.
        """
        terms = terms_from_keywords(keywords)
        if not terms.words:
            raise ToolQueryError(
                "The keywords contain no searchable word. Give one or more words to look for, e.g. "
                '["budget", "meeting"].',
                code="empty_query",
            )
        after, before = self.after, self.before
        for label, value, is_after in (("sent_after", sent_after, True), ("sent_before", sent_before, False)):
            if value is None or not clean_text(value).strip():
                continue
            day = parse_day(value)
            if day is None:
                raise ToolQueryError(f"{label} is not a date; write it as YYYY-MM-DD.", code="bad_date")
            if is_after:
                after = max(after, day) if after else day
            else:
                before = min(before, day) if before else day
        n = max(1, min(int(max_results or self.config.default_max_results), self.config.max_results_cap))
        filters = [f for f in (_participant_filter(from_addr, ("from",)),
                               _participant_filter(to_addr, ("to", "cc", "bcc"))) if f]
        # sent_after/sent_before only ever narrow: pass a bound to SQL only when it is inside the scope's own
        after = after if after and after != self.after else None
        before = before if before and before != self.before else None

        notes: list[str] = []
        words = terms.words
        if self._search is None:
            self._search = ScopedSearch(self.conn, self.inbox, self.after, self.before)
        limit = self._search.common_limit(self.config.common_word_df, self.config.common_word_fraction)
        df = {w: self._search.doc_freq(w, limit) for w in words}
        common = [w for w in words if df[w] >= limit]
        rare = [w for w in words if w not in common]
        if common and rare:
            words = rare
            notes.append(f"Ignored words found in too many emails to narrow the search: {', '.join(common)}.")
        only_common = not rare

        def bound(ws: list[str]) -> int | None:  # at most this many matches of an AND or OR of ws in the store
            return None if only_common or any(df[w] >= limit for w in ws) else sum(df[w] for w in ws)

        expr = Terms(words).fts_and()
        exact = [df[w] for w in words if df[w] < limit]  # counts below the limit are exact
        rowids, capped = self._ranked(expr, after, before, filters, n, only_common,
                                      min(exact) if exact and not only_common else None)
        if not rowids and self.config.or_fallback and len(words) > 1:
            # The rarest few words carry the meaning, and every OR'd word costs bm25 a walk of its doclist.
            # Mail with two of them first: far fewer matches than a plain OR, and the ones bm25 ranks highest.
            words = sorted(words, key=lambda w: df[w])[: self.config.or_fallback_words]
            if len(words) > 2:
                expr = Terms(words[: self.config.or_pair_words]).fts_pairs()
                rowids, capped = self._ranked(expr, after, before, filters, n, only_common,
                                              bound(words[: self.config.or_pair_words]))
            if not rowids:
                expr = Terms(words).fts_or()
                rowids, capped = self._ranked(expr, after, before, filters, n, only_common, bound(words))
            if rowids:
                notes.append("No email has all these words; showing emails with some of them.")
        if only_common and rowids:
            notes.append("These words are in most emails; showing recent ones. Add a more specific word.")
        if capped:
            notes.append(f"These words are in very many emails; only {self.config.bm25_cap} were ranked. "
                         "Add a more specific word.")
        if terms.truncated:
            notes.append(f"Only the first {len(terms.words)} words were used.")
        hits = SearchHits(self._hits(rowids, words, n))
        hits.query = expr
        if not hits:
            notes.append("No emails found. Try fewer or other words.")
        hits.note = " ".join(notes) or None
        return hits

    def read_email(self, message_id: str, offset: int = 0) -> dict:
        """Read one email.

        Args:
            message_id: A message_id from search results.
            offset: Body character to start at, for long emails.
        """
        rowid = self._resolve(message_id)
        if rowid is None:
            shown = clean_text(message_id).strip()[:200]
            raise ToolNotFound(f"No email with message_id {shown!r} in this inbox. Use an id from search_inbox.")
        m = self._store.message(rowid)
        if m is None:  # resolved a moment ago: only a store changed under a reader gets here
            raise ToolNotFound(f"No email with message_id {clean_text(message_id).strip()[:200]!r} in this inbox.")
        recipients: dict[str, list[str]] = {"to": [], "cc": [], "bcc": []}
        for address, role in self._store.participants(rowid):
            if role in recipients:
                recipients[role].append(address)
        body: str = m[5] or ""
        limit = self.config.body_char_limit
        start = max(0, int(offset or 0))
        h, n_shown = self.config.header_char_limit, self.config.recipients_shown
        notes: list[str] = []
        for role, addrs in recipients.items():
            if len(addrs) > n_shown:
                notes.append(f"{role}: {n_shown} of {len(addrs)} recipients shown.")
            recipients[role] = [_cut(a, h) for a in addrs[:n_shown]]
        out: dict[str, Any] = {
            "message_id": m[0],
            "date": m[1],
            "from": _cut(m[2], h),
            "to": recipients["to"],
            "cc": recipients["cc"],
            "bcc": recipients["bcc"],
            "subject": _cut(m[4], h),
        }
        if m[3] and m[3].lower() != m[2]:
            out["from_name"] = _cut(m[3], h)
        out["body"] = body[start:start + limit]
        try:
            attachments = json.loads(m[6] or "[]")
        except ValueError:
            attachments = []
        attachments = attachments if isinstance(attachments, list) else []
        if len(attachments) > n_shown:
            notes.append(f"{n_shown} of {len(attachments)} attachment names shown.")
        out["attachments"] = [_cut(str(a), h) for a in attachments[:n_shown]]
        if start >= len(body) and body:
            out["note"] = f"offset {start} is past the end of the body ({len(body)} characters)."
        elif start + limit < len(body):
            out["note"] = (f"Body cut: characters {start}-{start + limit} of {len(body)} shown. "
                           f"Call read_email with offset={start + limit} for more.")
        if notes:
            out["note"] = " ".join([out["note"], *notes] if "note" in out else notes)
        return out

    def return_final_answer(self, answer: str, sources: list[str]) -> dict:
        """Give the final answer and end. Say I don't know if the emails do not tell.

        Args:
            answer: The answer.
            sources: message_ids the answer comes from.
        """
        if isinstance(sources, str):
            sources = [sources]
        srcs = [clean_text(s).strip() for s in (sources or []) if clean_text(s).strip()]
        return {"answer": clean_text(answer).strip(), "sources": srcs}

    # -- the agent's door ----------------------------------------------------------------------------------------

    def schemas(self) -> list[dict]:
        """OpenAI tool schemas, built from the three methods' signatures and docstrings."""
        return tool_schemas()

    def call(self, name: str, arguments: dict) -> ToolResult:
        """Runs a model's tool call. Malformed calls raise; well-formed calls that fail return ok=False."""
        if not isinstance(name, str) or name not in self._methods:
            shown = clean_text(name)[:60] if name is not None else "None"
            raise UnknownToolError(f"unknown tool {shown!r}; the tools are: {', '.join(TOOL_NAMES)}")
        args = coerce_arguments(name, self._methods[name], arguments)
        if name == "search_inbox" and "max_results" in args and args["max_results"] < 1:
            raise BadArgumentsError("search_inbox: 'max_results' must be at least 1")
        if name == "read_email" and args.get("offset", 0) < 0:
            raise BadArgumentsError("read_email: 'offset' must be 0 or more")
        try:
            result = self._methods[name](**args)
        except ToolQueryError as e:
            return ToolResult(ok=False, content=_json({"error": str(e)}), error=e.code)
        if name == "search_inbox":
            payload: dict[str, Any] = {"results": list(result)}
            if result.note:
                payload["note"] = result.note
            return ToolResult(ok=True, content=_json(payload), ids=[h["message_id"] for h in result], data=result)
        if name == "read_email":
            return ToolResult(ok=True, content=_json(result), ids=[result["message_id"]], data=result)
        return ToolResult(ok=True, content=_json(result), final=True, answer=result["answer"],
                          sources=result["sources"], data=result)

    # -- search internals ------------------------------------------------------------------------------------------

    def _ranked(self, expr: str, after: str | None, before: str | None, filters: list[ParticipantFilter],
                n: int, only_common: bool, max_matches: int | None = None) -> tuple[list[int], bool]:
        assert self._search is not None
        want = n + 5  # a few spare: a hit that fails the final visibility check must not shorten the page
        if only_common:
            return self._search.recent(expr, after, before, filters, want, self.config.common_word_sample), False
        if self.config.ranking == "date":
            return self._search.by_date(expr, after, before, filters, want), False
        weights = (self.config.bm25_subject_weight, self.config.bm25_body_weight)
        return self._search.by_bm25(expr, after, before, filters, want, self.config.bm25_cap, weights, max_matches)

    def _hits(self, rowids: list[int], words: list[str], n: int) -> list[dict]:
        if not rowids:
            return []
        rows = self._visible_rows(rowids[:n])  # the spares are read only when some of the first n are not visible
        if len(rows) < n < len(rowids):
            rows.update(self._visible_rows(rowids[n:]))
        keep = [r for r in rowids if r in rows][:n]
        h = self.config.header_char_limit
        return [{"message_id": rows[r][1], "date": rows[r][2], "from": _cut(rows[r][3], h),
                 "subject": _cut(rows[r][4], h),
                 "snippet": snippet(_cut(rows[r][4], h), rows[r][5], words, self.config.snippet_tokens)}
                for r in keep]

    def _visible_rows(self, rowids: list[int]) -> dict[int, tuple]:
        """rowid -> (id, message_id, date, from_addr, subject, body) of those rowids the agent may see."""
        return self._store.visible_rows(rowids, self.inbox, self.before, self.after)  # nothing out of scope returns

    # -- lifetime ----------------------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._search is not None:
            self._search.close()
            self._search = None
        if self._own_conn:
            self.conn.close()

    def __enter__(self) -> InboxTools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tool_schemas() -> list[dict]:
    """The tools' OpenAI schemas without opening a store (prompt building and token counting need no mail)."""
    return [function_schema(getattr(InboxTools, name), name) for name in TOOL_NAMES]
