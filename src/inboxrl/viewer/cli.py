"""`inboxrl view` (the web viewer over run dirs) and `inboxrl show` (one episode in the terminal)."""

from __future__ import annotations

from pathlib import Path

import typer

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _fail(msg: str, code: int = 2) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(msg)}")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""

    @app.command("view")
    def view_cmd(
        run_dirs: list[Path] = typer.Argument(..., help="Run directories (`inboxrl eval --out`, `inboxrl train`, "
                                                        "benchmarks/export_run.py) or trajectories .jsonl files."),
        db: Path | None = typer.Option(None, "--db", help="Mail store, to open the emails episodes link to."),
        labels: Path | None = typer.Option(None, "--labels", help="Blind-label sheet to write (a calibration file "
                                                                  "for `inboxrl judge calibrate`); never inside a run."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; any but 127.0.0.1 needs --token."),
        port: int = typer.Option(8765, "--port", min=0, max=65535),
        token: str | None = typer.Option(None, "--token", help="Every request must carry it (?token=... once; a "
                                                                "cookie then keeps it)."),
    ) -> None:
        """Browse runs in a web page: metrics, every question side by side, each episode and its emails, labels."""
        if host not in LOCAL_HOSTS and not token:
            _fail(f"--host {host} exposes the viewer beyond this machine: give --token too")
        if db is not None and not db.is_file():
            _fail(f"no mail store at {db}")
        try:
            import uvicorn

            from inboxrl.viewer.app import create_app
        except ImportError as e:
            _fail(f"the viewer needs its extra: pip install 'inboxrl[viewer]' ({e})")
        from inboxrl.viewer.runs import RunError

        try:
            app_ = create_app(list(run_dirs), db=db, labels=labels, token=token)
        except (RunError, ValueError, OSError) as e:
            _fail(str(e))
        shown = f"[{host}]" if ":" in host else host
        typer.echo(f"inboxrl view: http://{shown}:{port}/" + (f"?token={token}" if token else ""), err=True)
        uvicorn.run(app_, host=host, port=port, log_level="warning")

    @app.command("show")
    def show_cmd(
        trajectories: Path = typer.Argument(..., help="A trajectories .jsonl (or .jsonl.gz) file, or an eval run "
                                                           "directory."),
        question: str = typer.Option(..., "--question", "-q", help="Question id."),
        model: str | None = typer.Option(None, "--model", "-m", help="Only this model's episode(s)."),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Also print the model's raw output."),
    ) -> None:
        """Print an episode of a run in the terminal, as `inboxrl ask` traces it live."""
        from rich.console import Console

        from inboxrl.agent.trace import TraceRenderer
        from inboxrl.trajectory import eval_trajectories, read_jsonl
        from inboxrl.viewer import episode

        path = eval_trajectories(trajectories) if trajectories.is_dir() else trajectories
        if not path.is_file():
            _fail(f"no trajectories file at {path}")
        found = [t for t in read_jsonl(path) if t.question_id == question and (model is None or t.model == model)]
        if not found:
            _fail(f"no episode of question {question!r}{f' by {model}' if model else ''} in {path}", 1)
        console = Console()
        for t in found:
            r = TraceRenderer(console, verbose=verbose)
            r.header(t.question, t.inbox_address, t.query_date, t.model, title=f"{path.name} · {t.question_id}")
            for ev in episode.events(t):
                r(ev)
            r.summary(t)
            if t.golden_answer is not None:
                console.print(f"[dim]golden answer:[/dim] {_escape(t.golden_answer)}")
            if t.rubric is not None:
                verdict = "right" if t.rubric.answer_correct and t.rubric.attempted_answer else (
                    "wrong" if t.rubric.attempted_answer else "no answer")
                reason = f" ({_escape(t.rubric.judge_reason)})" if t.rubric.judge_reason else ""
                rew = f" · reward {t.reward:.3f}" if t.reward is not None else ""
                console.print(f"[bold]judged {verdict}[/bold]{reason}{rew}")


def _escape(s: str) -> str:
    from rich.markup import escape

    return escape(s)
