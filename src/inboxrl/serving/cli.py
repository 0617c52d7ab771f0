"""`inboxrl serve` (HTTP API) and `inboxrl mcp` (an MCP server on stdio)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NoReturn

import typer


def _fail(msg: str, code: int = 2) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(msg)}")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""

    @app.command()
    def serve(
        db: Path = typer.Option(..., "--db", help="Mail store built by `inboxrl ingest`."),
        model: list[str] = typer.Option(["local/qwen2.5-coder-0.5b"], "--model", "-m",
                                        help="Model spec to serve (repeatable): local/<name>[+<adapter dir>], or "
                                             "an endpoint model with --base-url."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but loopback needs "
                                                             "--token or --tokens-file."),
        port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0: any free port)."),
        token: str | None = typer.Option(None, "--token", envvar="INBOXRL_SERVE_TOKEN",
                                         help="Bearer token every request must carry (all inboxes)."),
        tokens_file: Path | None = typer.Option(None, "--tokens-file", help="YAML/JSON mapping token -> list of "
                                                                              "inboxes it may read (\"*\": all)."),
        out: Path = typer.Option(Path("runs/serve"), "--out", help="Where /v1/ask keeps its trajectories "
                                                                    "(trajectories.jsonl, as `inboxrl eval`)."),
        harness: str | None = typer.Option(None, "--harness", help="free or guided for /v1/ask (default: the "
                                                                  "model's own)."),
        config: Path | None = typer.Option(None, "--config", help="Agent config file for /v1/ask."),
        set_: list[str] = typer.Option([], "--set", help="Override an agent setting (repeatable)."),
        base_url: str | None = typer.Option(None, "--base-url", help="Serve an endpoint model from this URL."),
        max_batch: int = typer.Option(8, "--max-batch", min=1, help="Concurrent requests merged into one batch."),
    ) -> None:
        """Serve the agent over HTTP: /v1/ask, OpenAI-compatible /v1/chat/completions and /v1/models, /health,
        /metrics."""
        from inboxrl.agent.config import load_agent_config
        from inboxrl.configfile import ConfigFileError
        from inboxrl.models.base import BackendError
        from inboxrl.models.spec import parse_spec
        from inboxrl.serving.access import AccessFileError, is_loopback, load_access

        if not db.is_file():
            _fail(f"no mail store at {db} (build one with `inboxrl ingest`)")
        try:
            access = load_access(token, tokens_file)
        except AccessFileError as e:
            _fail(str(e))
        if not is_loopback(host) and not access.required:
            _fail(f"--host {host} is reachable from other machines: give --token or --tokens-file")
        try:
            for spec in model:
                parse_spec(spec)
            cfg = load_agent_config(config, set_)
            if harness is not None:
                cfg = cfg.with_harness(harness)
        except (BackendError, ConfigFileError, ValueError) as e:
            _fail(str(e))

        import uvicorn

        from inboxrl.models.registry import load_backend
        from inboxrl.serving.app import ServedModel, ServerState, check_store, create_app
        from inboxrl.serving.batcher import BatchingBackend

        try:
            check_store(db)
        except ValueError as e:
            _fail(str(e))
        served: dict[str, ServedModel] = {}
        for spec in model:
            try:
                backend = load_backend(spec, base_url=base_url) if base_url else load_backend(spec)
            except BackendError as e:
                _fail(str(e), 1)
            name = getattr(backend, "name", spec)
            served[name] = ServedModel(name, BatchingBackend(backend, max_batch=max_batch),
                                       cfg.with_harness_default(spec))
        out.mkdir(parents=True, exist_ok=True)
        state = ServerState(db=db, models=served, access=access, out_dir=out)
        typer.echo(f"inboxrl serve: {', '.join(served)} on http://{host}:{port} "
                   f"({'token required' if access.required else 'no token: loopback only'}); trajectories -> {out}",
                   err=True)
        uvicorn.run(create_app(state), host=host, port=port, log_level="warning")

    @app.command()
    def mcp(
        db: Path = typer.Option(..., "--db", help="Mail store built by `inboxrl ingest`."),
        inbox: str = typer.Option(..., "--inbox", help="The one inbox (email address) the tools may read."),
        before: str | None = typer.Option(None, "--before", help="Only mail sent before this date (YYYY-MM-DD)."),
    ) -> None:
        """An MCP server on stdio exposing search_inbox and read_email for one inbox (for desktop assistants)."""
        from inboxrl.serving.mcp_server import build_server

        if not db.is_file():
            _fail(f"no mail store at {db} (build one with `inboxrl ingest`)")
        if before is not None:
            try:
                before = dt.date.fromisoformat(before.strip()).isoformat()
            except ValueError:
                _fail(f"--before must be YYYY-MM-DD, got {before!r}")
        if "@" not in inbox:
            _fail(f"--inbox must be an email address, got {inbox!r}")
        try:
            server = build_server(db, inbox.strip().lower(), before)
        except ValueError as e:
            _fail(str(e).splitlines()[0])
        server.run("stdio")
