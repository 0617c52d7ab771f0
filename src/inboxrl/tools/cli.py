"""`inboxrl search` and `inboxrl read`: the agent's tools from the shell, with exactly the agent's scope rules.

They exist so that a person can see what the agent sees (same code path, same scope), e.g. to check why an episode
missed its source mail.
"""

from __future__ import annotations

import json
from typing import Any

import typer

_RANKS = ("bm25", "date")


def _fail(message: str, code: int = 1) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _open(db: str, inbox: str, before: str | None, after: str | None, config_file: str | None, **config: Any):
    from pydantic import ValidationError

    from inboxrl.configfile import ConfigFileError
    from inboxrl.tools.base import Scope
    from inboxrl.tools.inbox import InboxTools, StoreOpenError, ToolsConfig

    if not inbox.strip():
        _fail("--inbox must be an email address", 2)
    try:
        base = ToolsConfig.load(config_file) if config_file else ToolsConfig()
        cfg = ToolsConfig.model_validate({**base.model_dump(), **config})
    except (ConfigFileError, ValidationError) as e:
        _fail(str(e).splitlines()[0], 2)
    try:
        return InboxTools(db, Scope(inbox=inbox, before=before, after=after), cfg)
    except StoreOpenError as e:
        _fail(str(e), 1)
    except ValueError as e:
        _fail(str(e).splitlines()[0], 2)


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""

    @app.command("search")
    def search(
        keywords: list[str] = typer.Argument(..., help="Words to look for (all must appear; OR if none match)."),
        db: str = typer.Option(..., "--db", help="Mail store (SQLite) built by `inboxrl ingest`."),
        inbox: str = typer.Option(..., "--inbox", help="The inbox address to search in."),
        before: str | None = typer.Option(None, "--before", help="Only mail sent before this day (YYYY-MM-DD)."),
        after: str | None = typer.Option(None, "--after", help="Only mail sent on or after this day."),
        from_addr: str | None = typer.Option(None, "--from", help="Sender address or name."),
        to_addr: str | None = typer.Option(None, "--to", help="Recipient address or name."),
        limit: int = typer.Option(10, "--limit", min=1, help="Number of results."),
        rank: str = typer.Option("bm25", "--rank", help="Ranking: bm25 (relevance) or date (newest first)."),
        no_or_fallback: bool = typer.Option(False, "--no-or-fallback", help="Do not retry with OR on no match."),
        config_file: str | None = typer.Option(None, "--config", help="Tools settings (YAML/TOML/JSON)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array of hits."),
    ) -> None:
        """Search one inbox the way the agent does."""
        from inboxrl.tools.base import ToolQueryError

        if rank not in _RANKS:
            _fail(f"--rank must be one of {', '.join(_RANKS)}", 2)
        tools = _open(db, inbox, before, after, config_file, ranking=rank, or_fallback=not no_or_fallback,
                      max_results_cap=max(limit, 50))
        try:
            hits = tools.search_inbox(keywords, from_addr=from_addr, to_addr=to_addr, max_results=limit)
        except ToolQueryError as e:
            _fail(str(e), 2)
        finally:
            tools.close()
        if as_json:
            typer.echo(json.dumps(list(hits), ensure_ascii=False, indent=1))
            if hits.note:
                typer.echo(hits.note, err=True)
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"{len(hits)} hit(s) in {inbox}" + (f" before {before}" if before else ""))
        for col in ("date", "from", "subject", "snippet", "message_id"):
            table.add_column(col, overflow="fold")
        for h in hits:
            table.add_row(Text(h["date"][:16]), Text(h["from"]), Text(h["subject"]), Text(h["snippet"]),
                          Text(h["message_id"]))
        console = Console()
        console.print(table)
        if hits.note:
            console.print(Text(hits.note, style="yellow"))

    @app.command("read")
    def read(
        message_id: str = typer.Argument(..., help="Message-ID (any copy's; aliases resolve)."),
        db: str = typer.Option(..., "--db", help="Mail store (SQLite) built by `inboxrl ingest`."),
        inbox: str = typer.Option(..., "--inbox", help="The inbox address the message must belong to."),
        before: str | None = typer.Option(None, "--before", help="Only mail sent before this day (YYYY-MM-DD)."),
        after: str | None = typer.Option(None, "--after", help="Only mail sent on or after this day."),
        offset: int = typer.Option(0, "--offset", min=0, help="Start the body at this character."),
        body_limit: int = typer.Option(4000, "--body-limit", min=200, help="Cut the body at this many characters."),
        config_file: str | None = typer.Option(None, "--config", help="Tools settings (YAML/TOML/JSON)."),
        as_json: bool = typer.Option(False, "--json", help="Print the email as a JSON object."),
    ) -> None:
        """Read one email the way the agent does (only within the inbox and date scope)."""
        from inboxrl.tools.base import ToolQueryError

        tools = _open(db, inbox, before, after, config_file, body_char_limit=body_limit)
        try:
            mail = tools.read_email(message_id, offset=offset)
        except ToolQueryError as e:
            _fail(str(e), 1)
        finally:
            tools.close()
        if as_json:
            typer.echo(json.dumps(mail, ensure_ascii=False, indent=1))
            return
        from rich.console import Console
        from rich.text import Text

        console = Console()
        head = Text()
        for key in ("message_id", "date", "from", "to", "cc", "bcc", "subject", "attachments"):
            value = mail.get(key)
            if isinstance(value, list):
                value = ", ".join(value)
            if value:
                head.append(f"{key}: ", style="bold").append(f"{value}\n")
        console.print(head)
        console.print(Text(mail["body"]))
        if mail.get("note"):
            console.print(Text(mail["note"], style="yellow"))
