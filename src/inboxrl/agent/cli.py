"""`inboxrl ask`: one question, answered live from a real inbox. The first thing a new user runs."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

DEFAULT_MODEL = "local/qwen2.5-coder-0.5b"


def _fail(msg: str, code: int = 1) -> NoReturn:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(msg)}")
    raise typer.Exit(code)


def _check_date(date: str) -> str:
    try:
        return dt.date.fromisoformat(date.strip()).isoformat()
    except ValueError:
        _fail(f"--date must be YYYY-MM-DD, got {date!r}", 2)
        raise  # unreachable


def _quiet_loading() -> None:
    """transformers draws its own "Loading weights" bar under our spinner; the trace is clearer without it."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""

    @app.command()
    def ask(
        question: str = typer.Argument(..., help="The question, as the inbox's owner would ask it."),
        db: Path = typer.Option(..., "--db", help="Mail store built by `inboxrl ingest`."),
        inbox: str = typer.Option(..., "--inbox", help="Whose inbox: an email address."),
        date: str = typer.Option(..., "--date", help="Today's date for the agent (YYYY-MM-DD); it sees only "
                                                     "mail sent before it."),
        model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Model spec: local/<name> or an endpoint "
                                                                     "model name."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint URL."),
        max_turns: int | None = typer.Option(None, "--max-turns", min=1, help="Turn budget (default 10)."),
        tool_mode: str | None = typer.Option(None, "--tool-mode", help="auto, native or json."),
        harness: str | None = typer.Option(None, "--harness", help="free or guided (the harness forces a search "
                                                                  "first, a read after a search, an answer after a "
                                                                  "read). Default: the model's own (bundled local "
                                                                  "models guided, endpoints free)."),
        config: Path | None = typer.Option(None, "--config", help="Agent config file (YAML/TOML/JSON)."),
        set_: list[str] = typer.Option([], "--set", help="Override an agent setting, e.g. --set "
                                                          "tools.body_char_limit=3000 (repeatable; keys as in "
                                                          "the config's agent section)."),
        timeout: float = typer.Option(120.0, "--timeout", min=0.1, help="Endpoint models: seconds one request "
                                                                         "may take in all, every read included."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show what the model wrote each turn."),
        as_json: bool = typer.Option(False, "--json", help="Print the trajectory as JSON instead of the trace."),
    ) -> None:
        """Answer one question from an inbox, showing every search and every email read."""
        from rich.console import Console

        from inboxrl.agent.config import load_agent_config
        from inboxrl.configfile import ConfigFileError

        day = _check_date(date)
        if not db.is_file():
            _fail(f"no mail store at {db} (build one with `inboxrl ingest`)", 2)
        if not question.strip():
            _fail("the question is empty", 2)
        try:
            cfg = load_agent_config(config, set_)
        except ConfigFileError as e:
            _fail(str(e), 2)
        updates: dict[str, object] = {}
        if max_turns is not None:
            updates["max_turns"] = max_turns
        if tool_mode is not None:
            if tool_mode not in ("auto", "native", "json"):
                _fail(f"--tool-mode must be auto, native or json, got {tool_mode!r}", 2)
            updates["tool_mode"] = tool_mode
        cfg = cfg.model_copy(update=updates)
        try:
            cfg = cfg.with_harness(harness) if harness is not None else cfg.with_harness_default(model)
        except ValueError as e:
            _fail(f"--harness: {e}", 2)

        from inboxrl.agent.runner import run_episodes
        from inboxrl.agent.trace import TraceRenderer
        from inboxrl.models.base import BackendError
        from inboxrl.models.registry import load_backend
        from inboxrl.models.spec import parse_spec
        from inboxrl.questions.schema import Question

        try:
            parse_spec(model)  # a bad spec fails here, in one line, before anything is printed or loaded
        except BackendError as e:
            _fail(str(e), 2)
        q = Question(id="ask", question=question.strip(), answer="", inbox_address=inbox.strip().lower(),
                     query_date=day)
        console = Console(stderr=as_json)  # in --json mode stdout carries only the JSON
        quiet = as_json
        from inboxrl.agent.idk import is_dont_know

        renderer = TraceRenderer(console, verbose=verbose, max_turns=cfg.max_turns, dont_know=is_dont_know)
        if not quiet:
            renderer.header(q.question, q.inbox_address, day, model, harness=cfg.harness_name())
        _quiet_loading()
        try:
            with console.status(f"loading {model}…", spinner="dots") as status:
                opts: dict[str, Any] = {} if parse_spec(model).is_local else {"timeout_s": timeout}
                backend = load_backend(model, base_url=base_url, **opts)
                check = getattr(backend, "check", None)
                if callable(check):  # an endpoint that is not there fails in seconds, not after every retry
                    status.update(f"checking {base_url or model}…")
                    check()
                status.update(f"turn 1/{cfg.max_turns}: the model is thinking…")
                renderer.status = status
                trajs = run_episodes([q], backend, db, cfg, on_event=None if quiet else renderer, batch_size=1)
        except BackendError as e:
            _fail(str(e), 1)
        except KeyboardInterrupt:
            _fail("interrupted", 1)
        except Exception as e:
            from inboxrl.tools.inbox import StoreOpenError

            if isinstance(e, (StoreOpenError, FileNotFoundError, ValueError)):
                _fail(str(e).splitlines()[0], 2)
            raise
        from inboxrl.scoring.cost import episode_cost

        t = trajs[0]
        t.golden_answer = None
        t.cost_usd = episode_cost(t)  # no golden answer to judge against: only the cost is scored
        if as_json:
            sys.stdout.write(json.dumps(t.without_token_ids().model_dump(mode="json"), ensure_ascii=False) + "\n")
        else:
            renderer.summary(t)
        if t.stop_reason == "backend_error":
            _fail(t.backend_error or "backend error", 1)
