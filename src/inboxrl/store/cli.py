"""`inboxrl ingest` and `inboxrl inboxes`.

Errors the user can fix (a missing source, a path that is not a store) print one red line and exit 2; bad mail
never stops a run, it shows up in the summary's skip reasons.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import typer


def _fail(message: str, code: int = 2) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _summary_table(s) -> object:  # type: ignore[no-untyped-def]
    from rich.table import Table

    t = Table(title=f"ingest into {s.db_path}", show_header=False)
    t.add_column("", style="bold")
    t.add_column("", justify="right")
    rows = [
        ("sources found", s.sources_found),
        ("sources ingested", s.sources_ingested),
        ("sources unchanged (skipped)", s.sources_unchanged),
        ("messages read", s.messages_read),
        ("stored", s.stored),
        ("duplicates (kept as aliases)", s.duplicates),
        ("already in store", s.already_stored),
        ("skipped", s.skipped),
    ]
    rows += [(f"  skipped: {reason}", n) for reason, n in s.skip_reasons.items()]
    rows += [
        ("elapsed", f"{s.elapsed_s:.1f} s"),
        ("messages/s", f"{s.msgs_per_s:,.0f}"),
        (
            "store: messages / aliases / participants",
            f"{s.store_messages:,} / {s.store_aliases:,} / {s.store_participants:,}",
        ),
    ]
    for k, v in rows:
        t.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    return t


def list_inboxes(db: str | Path, limit: int | None = None) -> list[dict[str, object]]:
    """Inbox addresses (sender or any To/Cc/Bcc recipient) with their distinct message counts, most first."""
    from inboxrl.store import schema

    conn = schema.connect(str(db), readonly=True)
    try:
        sql = (
            "SELECT address, count(DISTINCT message_rowid) AS n,"
            " count(DISTINCT CASE WHEN role='from' THEN message_rowid END) AS sent"
            " FROM participants WHERE address != '' GROUP BY address ORDER BY n DESC, address"
        )
        args: tuple[int, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (limit,)
        return [{"address": a, "messages": n, "sent": s} for a, n, s in conn.execute(sql, args)]
    finally:
        conn.close()


def _check_store(db: str) -> None:
    p = Path(db)
    if not p.is_file():
        _fail(f"no store at {db} (build one with `inboxrl ingest SOURCE --db {db}`)")
    from inboxrl.store.schema import StoreIncompleteError, connect

    try:
        conn = connect(str(p), readonly=True)
        try:
            conn.execute("SELECT 1 FROM participants LIMIT 1").fetchall()
        finally:
            conn.close()
    except StoreIncompleteError as e:
        _fail(str(e))
    except sqlite3.Error as e:
        _fail(f"{db} is not a readable inboxrl store ({e})")


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""

    @app.command("ingest")
    def ingest_cmd(
        sources: list[str] = typer.Argument(
            ..., help="mbox (.xz/.gz) files, folders, Maildirs, .eml, Kaggle CSV."
        ),
        db: str = typer.Option(..., "--db", help="The SQLite store to create or extend."),
        workers: int = typer.Option(2, "--workers", min=1, help="Parser processes."),
        config: str | None = typer.Option(None, "--config", help="YAML/TOML file with ingest settings."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Read mail into the store. Safe to re-run (adds nothing) and to interrupt (re-run to complete)."""
        from inboxrl.store.ingest import IngestConfig, IngestProgress, StoreBusyError, ingest, load_config
        from inboxrl.store.sources import SourceError

        cfg = IngestConfig()
        if config:
            try:
                cfg = load_config(config)
            except (OSError, ValueError) as e:
                _fail(f"cannot read config {config}: {str(e).splitlines()[0]}")
        missing = [s for s in sources if not Path(s).exists()]
        if missing:
            _fail(f"source not found: {missing[0]}")
        dbp = Path(db)
        if dbp.is_dir():
            _fail(f"--db {db} is a folder, not a database file")

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        with Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[msgs]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[unit]}"),
            console=console,
            transient=as_json,
        ) as bar:
            task = bar.add_task("ingest", total=None, msgs="", unit="")

            def progress(p: IngestProgress) -> None:
                bar.update(
                    task,
                    total=p.units_total,
                    completed=p.units_done,
                    msgs=f"{p.messages_read:,} msgs",
                    unit=p.unit[-40:],
                )

            try:
                summary = ingest(sources, db, workers=workers, progress=progress, config=cfg)
            except (SourceError, StoreBusyError) as e:
                _fail(str(e))
            except sqlite3.Error as e:
                _fail(f"cannot use store {db}: {e}")
        if as_json:
            typer.echo(summary.model_dump_json(indent=1))
        else:
            Console().print(_summary_table(summary))

    @app.command("inboxes")
    def inboxes_cmd(
        db: str = typer.Option(..., "--db", help="The store built by `inboxrl ingest`."),
        limit: int = typer.Option(20, "--limit", min=1, help="How many inboxes to list (most mail first)."),
        as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
    ) -> None:
        """List inbox addresses with their message counts (an address's mail: sent by it or to/cc/bcc it)."""
        _check_store(db)
        try:
            rows = list_inboxes(db, limit)
        except sqlite3.Error as e:
            _fail(f"cannot read store {db}: {e}")
        if as_json:
            typer.echo(json.dumps(rows, indent=1))
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"top {len(rows)} inboxes in {db}")
        t.add_column("address")
        t.add_column("messages", justify="right")
        t.add_column("sent by it", justify="right")
        for r in rows:
            t.add_row(str(r["address"]), f"{r['messages']:,}", f"{r['sent']:,}")
        Console().print(t)
