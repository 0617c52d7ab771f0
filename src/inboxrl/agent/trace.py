"""The live trace of an episode, for people: each search with its keywords and hits, each email read, the answer.

This is the first thing a new user sees (`inboxrl ask`), so it says what the agent did in plain words, one step per
block, with the model's own output only on request (`--verbose`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from inboxrl.agent.events import Event
from inboxrl.tools.base import normalise_id
from inboxrl.trajectory import Trajectory

MAX_HITS_SHOWN = 5


def _day(date: Any) -> str:
    return str(date or "")[:10] or "????-??-??"


def _short(text: Any, n: int) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= n else s[: n - 1] + "…"


class TraceRenderer:
    """Prints events as they arrive; `status` (a Rich status spinner) is updated between model calls."""

    def __init__(self, console: Console, verbose: bool = False, status: Any = None, max_turns: int | None = None,
                 dont_know: Callable[[str | None], bool] | None = None):
        self.console = console
        # How to tell an "I don't know" answer, given by the caller: the agent records answers, it does not judge.
        self.dont_know = dont_know or (lambda _answer: False)
        self.verbose = verbose
        self.status = status
        self.max_turns = max_turns
        self.subjects: dict[str, str] = {}  # message id -> subject, to label the answer's sources

    def header(self, question: str, inbox: str, date: str, model: str, title: str = "inboxrl ask",
               harness: str | None = None) -> None:
        body = Text()
        body.append(question, style="bold")
        body.append(f"\ninbox {inbox} · today {date} · model {model}", style="dim")
        if harness:
            body.append(f" · harness {harness}", style="dim")
        self.console.print(Panel(body, title=Text(title), title_align="left", border_style="cyan"))

    def _turn(self, ev: Event) -> str:
        return f"[dim]{ev.turn + 1:>2}[/dim]"

    def __call__(self, ev: Event) -> None:
        d = ev.data
        c = self.console
        if ev.kind == "model":
            if self.verbose and d.get("text"):
                c.print(f"{self._turn(ev)} [dim]model ({d.get('latency_s', 0):.1f} s, "
                        f"{d.get('completion_tokens', 0)} tokens):[/dim]")
                c.print(Text("    " + str(d["text"]).strip().replace("\n", "\n    "), style="dim"))
            if self.status is not None:
                nxt = ev.turn + 2
                budget = f"/{self.max_turns}" if self.max_turns else ""
                self.status.update(f"turn {nxt}{budget}: the model is thinking…")
        elif ev.kind == "search":
            self._search(ev)
        elif ev.kind == "read":
            self._read(ev)
        elif ev.kind == "tool":
            c.print(f"{self._turn(ev)} [bold]{escape(str(d.get('name')))}[/bold] {escape(str(d.get('arguments')))}")
        elif ev.kind == "answer":
            self._answer(ev)
        elif ev.kind == "format_error":
            c.print(f"{self._turn(ev)} [yellow]format error[/yellow] [dim]({d.get('error_kind')})[/dim] "
                    f"{escape(_short(d.get('detail'), 100))}")
        elif ev.kind == "tool_error":
            msg = d.get("error") or "failed"
            c.print(f"{self._turn(ev)} [red]✗ {escape(str(d.get('name')))}[/red] {escape(str(msg))} "
                    f"[dim]{escape(_short(d.get('arguments'), 80))}[/dim]")
        elif ev.kind == "out_of_turns":
            c.print(f"{self._turn(ev)} [yellow]out of turns[/yellow]: no answer within the budget")
        elif ev.kind in ("backend_error", "context_full"):
            c.print(f"{self._turn(ev)} [red]{ev.kind.replace('_', ' ')}[/red]: {escape(str(d.get('error')))}")

    def _search(self, ev: Event) -> None:
        d = ev.data
        args = d.get("arguments") or {}
        kw = args.get("keywords")
        kws = [kw] if isinstance(kw, str) else list(kw or [])
        filters = [f"{k}={v}" for k, v in args.items() if k != "keywords" and v not in (None, "", [])]
        hits = d.get("result") or []
        line = Text.from_markup(f"{self._turn(ev)} [bold blue]search[/bold blue] ")
        line.append(", ".join(f'"{k}"' for k in kws) or "(no keywords)", style="bold")
        if filters:
            line.append("  " + " ".join(filters), style="dim")
        line.append(f"  → {len(hits)} hit{'s' if len(hits) != 1 else ''}", style="green" if hits else "yellow")
        note = getattr(hits, "note", None)
        if note:
            line.append(f"  ({note})", style="dim")
        self.console.print(line)
        for h in hits:
            if isinstance(h, dict):
                self.subjects[normalise_id(h.get("message_id", ""))] = str(h.get("subject") or "")
        for h in list(hits)[:MAX_HITS_SHOWN]:
            if not isinstance(h, dict):
                continue
            row = Text("      ")
            row.append(_day(h.get("date")), style="dim")
            row.append("  " + _short(h.get("from"), 28).ljust(28), style="magenta")
            row.append("  " + _short(h.get("subject") or "(no subject)", 60))
            self.console.print(row)
        if len(hits) > MAX_HITS_SHOWN:
            self.console.print(f"      [dim]… and {len(hits) - MAX_HITS_SHOWN} more[/dim]")

    def _read(self, ev: Event) -> None:
        r = ev.data.get("result") or {}
        mid = str(r.get("message_id") or (ev.data.get("ids") or [""])[0])
        self.subjects[normalise_id(mid)] = str(r.get("subject") or "")
        line = Text.from_markup(f"{self._turn(ev)} [bold magenta]read[/bold magenta]   ")
        line.append(_short(r.get("subject") or "(no subject)", 70), style="bold")
        line.append(f"  {_day(r.get('date'))} from {r.get('from', '?')}", style="dim")
        self.console.print(line)
        body = _short(r.get("body"), 160)
        if body:
            self.console.print(Text("      " + body, style="dim italic"))

    def _answer(self, ev: Event) -> None:
        d = ev.data
        # A replayed trajectory's events may say it already (`inboxrl show`); a live one is told by the caller's rule.
        idk = bool(d["dont_know"]) if "dont_know" in d else self.dont_know(d.get("answer"))
        style = "yellow" if idk else "green"
        label = "I don't know" if idk else "answer"
        self.console.print(f"{self._turn(ev)} [bold {style}]{label}[/bold {style}]")
        self.console.print(Panel(Text(str(d.get("answer") or "").strip() or "(empty)"), border_style=style))
        # A model often cites an id without its angle brackets, or the same id several times: show each once.
        for s in dict.fromkeys(str(x) for x in d.get("sources") or []):
            subj = self.subjects.get(normalise_id(s))
            note = (f"  [dim]{escape(_short(subj, 60))}[/dim]" if subj
                    else "  [yellow](not an email the agent saw)[/yellow]")
            self.console.print(f"      [dim]source[/dim] {escape(str(s))}{note}")
        if not d.get("sources") and not idk:
            self.console.print("      [yellow]no sources given[/yellow]")

    def summary(self, t: Trajectory) -> None:
        reason = {"answered": "answered", "out_of_turns": "out of turns", "format_error": "stopped on a format error",
                  "backend_error": "backend error", "context_full": "context window full"}.get(t.stop_reason or "", "?")
        fe = sum(1 for x in t.turns if x.format_error is not None)
        parts = [reason, f"{len(t.turns)} turn{'s' if len(t.turns) != 1 else ''}", f"{t.wall_time_s:.1f} s",
                 f"{t.prompt_tokens:,} prompt + {t.completion_tokens:,} completion tokens"]
        if fe:
            parts.append(f"{fe} format error{'s' if fe != 1 else ''}")
        if t.cost_usd:
            parts.append(f"${t.cost_usd:.4f}")
        elif t.cost_usd is None and t.stop_reason is not None:
            parts.append("cost unknown")
        self.console.print("[dim]" + " · ".join(parts) + "[/dim]")
