"""`inboxrl eval`: run models over a question file, judge every answer, write trajectories and metrics.
`inboxrl compare`: two such runs (or trajectory files) paired question by question."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from inboxrl.evaluation.compare import Comparison


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

    @app.command("compare")
    def compare_cmd(
        before: Path = typer.Argument(..., help="Eval output directory (has trajectories.jsonl) or a trajectories "
                                                "JSONL file, e.g. a training run's validation/step-000006.jsonl."),
        after: Path = typer.Argument(..., help="The same, for the other model or run."),
        model: str | None = typer.Option(None, "--model", "-m", help="Model of both sides, when a file holds "
                                                                     "several."),
        before_model: str | None = typer.Option(None, "--before-model", help="Model of BEFORE (overrides --model)."),
        after_model: str | None = typer.Option(None, "--after-model", help="Model of AFTER (overrides --model)."),
        resamples: int = typer.Option(10_000, "--resamples", min=100, help="Bootstrap resamples."),
        seed: int = typer.Option(0, "--seed", help="Bootstrap seed (fixed: the same files give the same figures)."),
        as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON instead of tables."),
    ) -> None:
        """Paired before/after on the same questions: each rate's change with its 95% bootstrap interval, the
        outcome transitions and the questions that changed."""
        from rich.console import Console

        from inboxrl.evaluation.compare import CompareError, compare, load_side
        from inboxrl.evaluation.metrics import json_safe

        try:
            b = load_side(before, before_model or model)
            a = load_side(after, after_model or model)
        except CompareError as e:
            _fail(str(e), 2)
        c = compare(b, a, resamples=resamples, seed=seed)
        if not c.paired:
            _fail(f"no question is scored on both sides ({len(b.episodes)} before, {len(a.episodes)} after, "
                  f"{len(c.only_before) + len(c.only_after)} on one side only, {len(c.unscored)} unscored)", 2)
        if as_json:
            sys.stdout.write(json.dumps(json_safe(c.to_json()), indent=2) + "\n")
            return
        out = Console()
        for line in compare_lines(c):
            out.print(line, highlight=False)
        out.print(rates_table(c))
        out.print(transitions_table(c))
        if c.changed:
            out.print(f"changed ({len(c.changed)}): "
                      + ", ".join(f"{q} {ob}→{oa}" for q, ob, oa in c.changed), highlight=False, markup=False)
        else:
            out.print("changed: none")


def compare_lines(c: Comparison) -> list[str]:
    """The header: what was compared, on how many questions, and what was left out and why."""
    from rich.markup import escape

    lines = []
    for name, s in (("before", c.before), ("after", c.after)):
        rep = f", {s.repeated} repeated episodes (the last of each question kept)" if s.repeated else ""
        lines.append(f"{name}: {escape(str(s.path))} [cyan]{escape(s.model)}[/cyan], {len(s.episodes)} questions{rep}")
    lines.append(f"[bold]paired on {len(c.paired)} questions[/bold] (95% intervals: paired percentile bootstrap, "
                 f"{c.resamples:,} resamples, seed {c.seed})")
    for label, ids in (("only in before, excluded", c.only_before), ("only in after, excluded", c.only_after),
                       ("not scored on one side, excluded", c.unscored)):
        if ids:
            lines.append(f"[yellow]{len(ids)} {label}:[/yellow] {escape(', '.join(ids))}")
    return lines


def rates_table(c: Comparison) -> Any:
    from rich.table import Table

    from inboxrl.evaluation.compare import COMPARED
    t = Table(header_style="bold")
    for h in ("", "before", "after", "diff (points)", "95% CI of the diff"):
        t.add_column(h, justify="left" if not h else "right")
    for key, label in COMPARED:
        d = c.rates[key]
        t.add_row(label, f"{100 * d.before:.1f}%", f"{100 * d.after:.1f}%", f"{100 * d.diff:+.1f}",
                  f"[{100 * d.lo:+.1f}, {100 * d.hi:+.1f}]")
    return t


def transitions_table(c: Comparison) -> Any:
    from rich.table import Table

    from inboxrl.evaluation.compare import OUTCOMES
    t = Table(title="questions by outcome: before (rows) → after (columns)", header_style="bold")
    t.add_column("before \\ after")
    for o in OUTCOMES:
        t.add_column(o, justify="right")
    t.add_column("total", justify="right")
    for ob in OUTCOMES:
        row = c.transitions[ob]
        t.add_row(ob, *(str(row[oa]) for oa in OUTCOMES), str(sum(row.values())))
    return t
