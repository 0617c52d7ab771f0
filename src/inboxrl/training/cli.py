"""`inboxrl train`, `inboxrl report` and `inboxrl export` (registered by inboxrl.cli).

Heavy imports (torch, transformers, TRL) happen inside the commands so `inboxrl --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from inboxrl.training.progress_lines import PlainProgress, fmt, step_summary


def _fail(msg: str, code: int = 1) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[red]error:[/red] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    from inboxrl.configfile import ConfigFileError, parse_overrides

    try:
        return parse_overrides(items)
    except ConfigFileError as e:
        _fail(str(e), 2)
        return {}


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""

    @app.command("train")
    def train_cmd(
        config: Path = typer.Option(..., "--config", "-c", help="Training config (YAML or TOML), see configs/."),
        resume: bool = typer.Option(False, "--resume", help="Continue the run in run_dir from its last checkpoint."),
        set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set max_steps=3 "
                                                          "--set data.val_limit=5 (repeatable)."),
        split_only: bool = typer.Option(False, "--split-only", help="Only write the fixed train/validation split "
                                                                     "to RUN_DIR/data (to evaluate baselines first)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (progress goes to stderr)."),
    ) -> None:
        """Train the agent with GRPO + LoRA on the email environment (TRL GRPOTrainer)."""
        from rich.console import Console

        from inboxrl.training.config import TrainConfig, TrainConfigError
        from inboxrl.training.ranks import is_main_process

        # Under torchrun every process runs this command; only rank 0 reports, the others would print duplicates.
        console = Console(stderr=True, quiet=not is_main_process())
        try:
            cfg = TrainConfig.load(config, _parse_overrides(set_)).resolved(Path.cwd())
        except TrainConfigError as e:
            _fail(str(e), 2)
            return
        if not Path(cfg.data.db).is_file():
            _fail(f"data.db: mail store not found: {cfg.data.db} (build it with `inboxrl ingest`)", 2)
        from inboxrl.store.schema import StoreIncompleteError, connect

        try:  # a store whose ingest did not finish finds nothing: refuse it before the model loads
            connect(cfg.data.db, readonly=True).close()
        except StoreIncompleteError as e:
            _fail(f"data.db: {e}", 2)
        for name in ("train_questions", "val_questions"):
            p = getattr(cfg.data, name)
            if p is not None and not Path(p).is_file():
                _fail(f"data.{name}: question file not found: {p}", 2)

        if split_only:
            from inboxrl.questions.schema import QuestionFileError
            from inboxrl.training.trainer import write_split

            try:
                split = write_split(cfg)
            except QuestionFileError as e:
                _fail(str(e), 2)
                return
            d = Path(cfg.run_dir) / "data"
            info = {"train": len(split.train), "val": len(split.val), "test": len(split.test),
                    "grounded": split.n_grounded, "regrounded": split.regrounded,
                    "train_file": str(d / "train.jsonl"), "val_file": str(d / "val.jsonl"),
                    "test_file": str(d / "test.jsonl"), "frozen_problems": split.frozen_problems}
            if as_json:
                typer.echo(json.dumps(info))
            else:
                console.print(f"wrote {info['train']} training, {info['val']} validation and {info['test']} test "
                              f"questions (grounded {info['grounded']}, re-grounded by evidence "
                              f"{info['regrounded']}) to {d}")
            for problem in split.frozen_problems:
                console.print(f"[yellow]warning:[/yellow] frozen split: {problem}", highlight=False, soft_wrap=True)
            return

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console,
                            transient=False)
        task: dict[str, Any] = {}
        plain = None if console.is_terminal else PlainProgress()  # Rich draws no bars off a terminal

        def on_event(kind: str, data: dict[str, Any]) -> None:
            line = plain.line(kind, data) if plain is not None else None
            if line is not None:
                progress.console.print(line, markup=False, highlight=False, soft_wrap=True)
            if kind == "setup":
                console.print(f"[bold]train[/bold] {data['train']} questions, "
                              f"[bold]validation[/bold] {data['val']} (grounded {data['grounded']}"
                              + (f", re-grounded {data['regrounded']}" if data.get("regrounded") else "") + "), "
                              f"{data['steps']} steps"
                              + (f", resuming after step {data['resume_from']}" if data["resume_from"] else ""))
                if data.get("precision"):
                    console.print(f"[bold]precision[/bold] {data['precision']}")
                for problem in data.get("frozen_problems") or []:  # validating on another set than the frozen one
                    console.print(f"[yellow]warning:[/yellow] frozen split: {problem}", highlight=False,
                                  soft_wrap=True)
                task["id"] = progress.add_task("GRPO", total=data["steps"],
                                               completed=data["resume_from"] or 0, info="")
            elif kind == "step" and "id" in task:
                progress.update(task["id"], completed=data["step"], info=step_summary(data))
            elif kind == "validation":
                progress.console.print(
                    f"[cyan]validation @ step {data['step']}[/cyan]: accuracy {fmt(data.get('accuracy'), True)}, "
                    f"hallucination {fmt(data.get('hallucination_rate'), True)}, "
                    f"I don't know {fmt(data.get('dont_know_rate'), True)}, "
                    f"out of turns {fmt(data.get('out_of_turns_rate'), True)}, "
                    f"avg turns {fmt(data.get('avg_turns'))} (n={data.get('n_scored')})")
            elif kind == "warm_start":
                kept = data["kept"]
                progress.console.print(
                    f"[bold]warm start[/bold] on {data['demonstrations']} demonstrations ({kept.get('correct', 0)} "
                    f"answered, {kept.get('dont_know', 0)} \"I don't know\" ({data.get('negatives', '?')}, "
                    f"{data.get('twins', 0)} with a same-search twin); skipped "
                    f"{sum(data['skipped'].values())}: {data['skipped'] or 'none'})")
                task["warm"] = progress.add_task("warm start", total=data["steps"], info="")
            elif kind == "warm_start_step" and "warm" in task:
                progress.update(task["warm"], completed=data["step"], total=data["total"],
                                info=f"loss {data['loss']:.3f}")
            elif kind == "saved":
                progress.console.print(f"[green]saved[/green] {data['dir']}")
            elif kind == "warning":
                progress.console.print(f"[yellow]warning:[/yellow] {data['message']}")

        from inboxrl.training.trainer import TrainError, train

        try:
            with progress:
                result = train(cfg, resume=resume, on_event=on_event)
        except (TrainError, TrainConfigError) as e:
            _fail(str(e), 1)
            return
        except KeyboardInterrupt:
            _fail("interrupted; continue with --resume (from the last checkpoint)", 130)
            return
        out = {"run_dir": str(result.run_dir), "steps": result.steps, "final_adapter": str(result.final_adapter),
               "model_spec": f"{cfg.model}+{result.final_adapter}" if cfg.model.startswith("local/") else None,
               "resumed_from": result.resumed_from, "skipped_groups": result.skipped_groups,
               "groups": result.groups, "seconds": round(result.seconds, 1),
               "last_validation": result.validations[-1] if result.validations else None}
        if as_json:
            if is_main_process():
                typer.echo(json.dumps(out, default=str))
        else:
            console.print(f"[bold green]done[/bold green]: {result.steps} steps in {result.seconds:.0f} s; "
                          f"adapter at {result.final_adapter}; plots in {result.run_dir / 'plots'}")
            if out["model_spec"]:
                console.print(f"evaluate it with: inboxrl eval --model {out['model_spec']} "
                              f"--questions {result.run_dir / 'data' / 'val.jsonl'} ...")

    @app.command("report")
    def report_cmd(
        run_dir: Path = typer.Argument(..., help="A training run directory (holds metrics.jsonl)."),
        baseline: list[Path] = typer.Option([], "--baseline", "-b",
                                            help="An `inboxrl eval` output dir; one line per model (repeatable)."),
        out: Path = typer.Option(..., "--out", "-o", help="Directory for the PNG plots."),
        as_json: bool = typer.Option(False, "--json", help="Print the table and plot paths as JSON."),
    ) -> None:
        """Plot a run and write report.html beside the PNGs: validation accuracy over steps against prompted baselines,
        turns, hallucinations, reward, accuracy / cost / latency per model, detector counts over steps."""
        from inboxrl.evaluation.plots import (
            BaselineError,
            load_baselines,
            plot_models_and_checks,
            plot_run,
            summary_table,
            write_report_html,
        )
        from inboxrl.training import runlog

        if not (run_dir / runlog.METRICS_FILE).is_file():
            _fail(f"no {runlog.METRICS_FILE} in {run_dir}: not a training run directory", 2)
        try:
            baselines = load_baselines(baseline)
        except BaselineError as e:
            _fail(str(e), 2)
            return
        records = list(runlog.read(run_dir))
        paths = plot_run(records, out, baselines, title=run_dir.name)
        paths += plot_models_and_checks(records, out, baselines)
        html = write_report_html(records, out, paths, baselines, title=run_dir.name)
        rows = summary_table(records, baselines)
        if as_json:
            typer.echo(json.dumps({"plots": [str(p) for p in paths], "html": str(html), "table": rows},
                                  default=str))
            return
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{run_dir}")
        for col in ("", "step", "accuracy", "halluc.", "I don't know", "out of turns", "format err.", "avg turns",
                    "reward", "n"):
            t.add_column(col)
        for r in rows:
            t.add_row(r["name"], fmt(r["step"]), fmt(r["accuracy"], True), fmt(r["hallucination_rate"], True),
                      fmt(r["dont_know_rate"], True), fmt(r["out_of_turns_rate"], True),
                      fmt(r["format_error_rate"], True), fmt(r["avg_turns"]), fmt(r["mean_reward"]),
                      fmt(r["n_scored"]))
        c = Console()
        c.print(t)
        for p in [*paths, html]:
            c.print(f"wrote {p}")

    @app.command("export")
    def export_cmd(
        adapter: Path = typer.Option(..., "--adapter", help="A LoRA adapter dir, e.g. RUN_DIR/final."),
        out: Path = typer.Option(..., "--out", help="Directory for the merged model."),
        base: str | None = typer.Option(None, "--base", help="Base model spec or dir (default: the one the "
                                                               "adapter was trained on)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    ) -> None:
        """Merge a LoRA adapter into its base model (a plain transformers model directory)."""
        from inboxrl.training.config import TrainConfigError
        from inboxrl.training.export import ExportError, export_merged

        try:
            r = export_merged(adapter, out, base=base, overwrite=overwrite)
        except (ExportError, TrainConfigError) as e:
            _fail(str(e), 1)
            return
        data = {"out": str(r.out_dir), "base": r.base, "adapter": str(r.adapter), "parameters": r.parameters,
                "model_spec": f"local/{r.out_dir}"}
        if as_json:
            typer.echo(json.dumps(data))
        else:
            from rich.console import Console

            Console().print(f"[green]merged[/green] {r.adapter} into {r.base} → {r.out_dir} "
                            f"({r.parameters / 1e6:.0f}M parameters); use it as --model local/{r.out_dir}")
