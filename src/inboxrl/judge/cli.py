"""`inboxrl judge ...`: commands about judges (registered by inboxrl.cli)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import typer

judge_app = typer.Typer(name="judge", no_args_is_help=True, add_completion=False,
                        help="Judges of answers: measure them against hand-labelled verdicts.")


def _fail(msg: str, code: int = 1) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(msg)}")
    raise typer.Exit(code)


@judge_app.command("calibrate")
def calibrate_cmd(
    judge: str = typer.Option("lexical", "--judge", "-j", help="'lexical' or any model spec (local/... or an "
                                                                "endpoint model name)."),
    files: list[Path] | None = typer.Option(None, "--file", "-f",
                                            help="JSONL of labelled verdicts (question, golden_answer, candidate, "
                                                 "label, kind); repeat it to compare sheets side by side (e.g. "
                                                 "blind-labelled sheets and a sheet of gaming answers). Default: the "
                                                 "file shipped with inboxrl."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N rows."),
    show_errors: bool = typer.Option(False, "--show-errors", help="List every row where judge and label differ."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint for a model judge."),
    cache: Path | None = typer.Option(None, "--cache", help="Verdict cache file for a model judge "
                                                            "(default: $INBOXRL_CACHE/judge-verdicts.sqlite)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the verdict cache."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Agreement, false-accept and false-reject rates of a judge on labelled verdicts."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from inboxrl.judge.calibrate import CalibrationFileError, CalibrationRow, calibrate, load_calibration
    from inboxrl.models.base import BackendError

    err = Console(stderr=True)
    sheets: list[tuple[str, list[CalibrationRow]]] = []
    chosen: list[Path | None] = list(files or []) or [None]
    for file in chosen:
        try:
            rows = load_calibration(file)
        except CalibrationFileError as e:
            _fail(str(e), 2)
        sheets.append((str(file) if file is not None else "shipped", rows[:limit] if limit is not None else rows))

    opts: dict[str, object] = {}
    if judge.strip().lower() != "lexical":
        if base_url:
            opts["base_url"] = base_url
        if no_cache:
            opts["cache_path"] = None
        elif cache is not None:
            opts["cache_path"] = cache
    try:
        from inboxrl.judge.registry import load_judge

        j = load_judge(judge, **opts)
    except (BackendError, ValueError, OSError) as e:
        _fail(f"judge {judge!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}", 2)

    from inboxrl.judge.llm import JudgeError

    progress = Progress(TextColumn(f"judging with {getattr(j, 'name', judge)}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err, transient=True, disable=as_json)
    reports = []
    try:
        with progress:
            task = progress.add_task("judge", total=sum(len(rows) for _, rows in sheets))
            for _, rows in sheets:
                reports.append(calibrate(j, rows, on_progress=lambda n: progress.advance(task, n)))
    except (JudgeError, BackendError) as e:
        _fail(str(e), 1)
    except KeyboardInterrupt:
        _fail("interrupted (verdicts judged so far are in the cache)", 1)

    dicts = [{"file": name, **rep.to_dict(with_errors=show_errors)} for (name, _), rep in zip(sheets, reports)]
    if as_json:
        sys.stdout.write(json.dumps(dicts[0] if len(dicts) == 1 else {"reports": dicts}, indent=2) + "\n")
        return
    con = Console()
    if len(reports) > 1:
        _print_sheets(con, [name for name, _ in sheets], reports)
    for rep in reports if len(reports) == 1 or show_errors else []:
        _print_report(con, rep, show_errors)


def _print_sheets(con: object, names: list[str], reports: Sequence[object]) -> None:
    """One line per sheet: a sheet of gaming answers shows its false-accept rate beside the blind-labelled ones."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from inboxrl.judge.calibrate import CalibrationReport

    assert isinstance(con, Console)
    t = Table(title="judge by sheet", show_header=True)
    for c in ("sheet", "n", "agreement", "false-accept", "false-reject", "wrong / right"):
        t.add_column(c, justify="left" if c == "sheet" else "right", overflow="fold")
    for name, rep in zip(names, reports):
        assert isinstance(rep, CalibrationReport)
        t.add_row(escape(Path(name).name), str(rep.n), f"{rep.agreement:.1%}", f"{rep.false_accept_rate:.1%}",
                  f"{rep.false_reject_rate:.1%}", f"{rep.false_accept + rep.true_reject} / "
                                                  f"{rep.true_accept + rep.false_reject}")
    con.print(t)


def _print_report(con: object, rep: object, show_errors: bool) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from inboxrl.judge.calibrate import CalibrationReport

    assert isinstance(con, Console) and isinstance(rep, CalibrationReport)
    head = Table(title=f"judge {rep.judge} · {rep.n} labelled rows", show_header=True)
    for c in ("agreement", "false-accept rate", "false-reject rate", "n", "seconds"):
        head.add_column(c, justify="right")
    head.add_row(f"{rep.agreement:.1%}", f"{rep.false_accept_rate:.1%}", f"{rep.false_reject_rate:.1%}",
                 str(rep.n), f"{rep.seconds:.1f}")
    con.print(head)

    conf = Table(title="confusion", show_header=True)
    conf.add_column("")
    conf.add_column("judge accepts", justify="right")
    conf.add_column("judge rejects", justify="right")
    conf.add_row("labelled right", str(rep.true_accept), str(rep.false_reject))
    conf.add_row("labelled wrong", str(rep.false_accept), str(rep.true_reject))
    con.print(conf)

    kinds = Table(title="agreement by kind", show_header=True)
    kinds.add_column("kind")
    kinds.add_column("agree", justify="right")
    kinds.add_column("n", justify="right")
    for k, v in sorted(rep.per_kind.items(), key=lambda kv: (-kv[1]["n"], kv[0])):
        kinds.add_row(k, f"{v['agree'] / v['n']:.0%}", str(v["n"]))
    con.print(kinds)
    st = rep.judge_stats
    if st.get("unparseable"):
        con.print(f"[yellow]{st['unparseable']} judge replies were unparseable (counted as reject)[/yellow]")

    if show_errors and rep.errors:
        t = Table(title=f"{len(rep.errors)} disagreements", show_lines=True)
        for c in ("row", "kind", "label", "judge", "golden answer", "candidate", "reason"):
            t.add_column(c, overflow="fold")
        for e in rep.errors:
            t.add_row(str(e["row"]), e["kind"], "right" if e["label"] else "wrong",
                      "accept" if e["judge_accept"] else "reject", escape(e["golden_answer"]),
                      escape(e["candidate"]), escape(e["reason"]))
        con.print(t)


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""
    app.add_typer(judge_app, name="judge")
