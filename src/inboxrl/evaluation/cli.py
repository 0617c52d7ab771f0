"""`inboxrl eval`: run models over a question file, judge every answer, write trajectories and metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def _fail(msg: str, code: int = 1) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(msg)}")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""

    @app.command("eval")
    def eval_cmd(
        db: Path = typer.Option(..., "--db", help="Mail store built by `inboxrl ingest`."),
        questions: Path = typer.Option(..., "--questions", help="Question file (JSONL, ART-E fields)."),
        model: list[str] = typer.Option(..., "--model", "-m", help="Model spec; repeat for several models."),
        judge: str = typer.Option(..., "--judge", help="'lexical' or a model spec."),
        out: Path = typer.Option(..., "--out", help="Run directory: trajectories.jsonl and metrics.json. "
                                                    "Re-running with the same directory resumes."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N questions (after "
                                                                        "--grounded-only)."),
        grounded_only: bool = typer.Option(False, "--grounded-only", help="Only questions whose every source "
                                                                          "mail is in the store."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint URL (for "
                                                                        "endpoint models and judges)."),
        concurrency: int = typer.Option(8, "--concurrency", min=1, help="Episodes in flight: one local batch, "
                                                                         "or parallel endpoint requests."),
        max_turns: int | None = typer.Option(None, "--max-turns", min=1, help="Turn budget (default 10)."),
        max_retries: int | None = typer.Option(None, "--max-retries", min=0, help="Endpoint retries on "
                                                                                 "429/5xx/connection errors."),
        harness: str | None = typer.Option(None, "--harness", help="free or guided (default: each model's own: "
                                                                  "bundled local models guided, endpoints free)."),
        timeout: float = typer.Option(120.0, "--timeout", min=0.1, help="Endpoint models: seconds one request "
                                                                         "may take in all, every read included."),
        config: Path | None = typer.Option(None, "--config", help="Agent config file (YAML/TOML/JSON)."),
        set_: list[str] = typer.Option([], "--set", help="Override an agent setting, e.g. --set "
                                                          "tools.body_char_limit=3000 (repeatable; keys as in "
                                                          "the config's agent section)."),
        as_json: bool = typer.Option(False, "--json", help="Print metrics.json instead of the table."),
    ) -> None:
        """Evaluate models on a question set: accuracy, hallucinations, "I don't know", turns, latency, cost."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskID,
            TextColumn,
            TimeElapsedColumn,
        )

        from inboxrl.agent.config import load_agent_config
        from inboxrl.configfile import ConfigFileError
        from inboxrl.evaluation.run import EvalAborted, check_store, evaluate, grounded_ids
        from inboxrl.evaluation.table import rich_table
        from inboxrl.models.base import BackendError
        from inboxrl.questions.schema import QuestionFileError, load_questions

        err = Console(stderr=True)
        if not db.is_file():
            _fail(f"no mail store at {db} (build one with `inboxrl ingest`)", 2)
        try:
            check_store(db)
        except EvalAborted as e:
            _fail(str(e), 2)
        try:
            qs = load_questions(questions)
        except QuestionFileError as e:
            _fail(str(e), 2)
        try:
            cfg = load_agent_config(config, set_)
        except ConfigFileError as e:
            _fail(str(e), 2)
        if max_turns is not None:
            cfg = cfg.model_copy(update={"max_turns": max_turns})
        if harness is not None:
            try:
                cfg = cfg.with_harness(harness)
            except ValueError as e:
                _fail(f"--harness: {e}", 2)

        grounded = grounded_ids(db, qs)
        err.print(f"{len(qs)} questions, [bold]{len(grounded)}[/bold] grounded (every source mail in the store)")
        if grounded_only:
            qs = [q for q in qs if q.id in grounded]
        if limit is not None:
            qs = qs[:limit]
        if not qs:
            _fail("no questions to run", 2)

        try:
            from inboxrl.judge.registry import load_judge

            j = load_judge(judge, **({"base_url": base_url} if base_url and judge != "lexical" else {}))
        except (BackendError, ValueError) as e:
            _fail(f"judge {judge!r}: {e}", 2)

        backend_opts: dict[str, object] = {}
        if base_url:
            backend_opts["base_url"] = base_url
        if max_retries is not None:
            backend_opts["max_retries"] = max_retries
        backend_opts["timeout_s"] = timeout
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("[green]{task.fields[ok]}✓[/green] [red]{task.fields[bad]}✗[/red]"),
                            TimeElapsedColumn(), console=err, transient=False)
        tasks: dict[str, TaskID] = {}

        def on_model_start(name: str, todo: int, skipped: int) -> None:
            desc = f"{name} [dim]harness {cfg.with_harness_default(name).harness_name()}[/dim]"
            desc += f" [dim](resumed, {skipped} done)[/dim]" if skipped else ""
            tasks[name] = progress.add_task(desc, total=todo, ok=0, bad=0)

        def on_progress(name: str, t: object) -> None:
            tid = tasks[name]
            task = progress.tasks[tid]
            r = getattr(t, "rubric", None)
            good = bool(r and r.attempted_answer and r.answer_correct)
            progress.update(tid, advance=1, ok=task.fields["ok"] + good, bad=task.fields["bad"] + (not good))

        try:
            with progress:
                res = evaluate(qs, model, db, j, cfg, out, concurrency=concurrency,
                               backend_opts=backend_opts,
                               on_progress=on_progress, on_model_start=on_model_start)
        except (EvalAborted, BackendError) as e:
            _fail(f"{e} (finished trajectories are kept in {out / 'trajectories.jsonl'}; re-run to resume)", 1)
        except KeyboardInterrupt:
            _fail(f"interrupted (finished trajectories are kept in {out / 'trajectories.jsonl'}; re-run to resume)", 1)

        if as_json:
            sys.stdout.write(json.dumps(res.metrics, indent=2) + "\n")
            return
        Console().print(rich_table(res.models, title=f"{len(qs)} questions · judge {getattr(j, 'name', judge)}"))
        for name, m in res.models.items():
            err.print(f"harness: {m.get('harness') or 'unknown'} ({name})")
        checks = res.metrics.get("checks") or {}
        if checks.get("detectors"):
            from rich.markup import escape

            from inboxrl.checks.cli import summary_line

            err.print(f"{summary_line({k: d['count'] for k, d in checks['detectors'].items()})} "
                      f"[dim](inboxrl check {escape(str(out))})[/dim]")
        extra = f"; {res.backend_errors} backend errors (not written; re-run to retry)" if res.backend_errors else ""
        err.print(f"[dim]{res.written} new trajectories, {res.skipped} already done{extra} → {out}[/dim]")
