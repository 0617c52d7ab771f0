"""`inboxrl check RUN_DIR...`: the reward-hacking detectors over an eval run or a training run's last validation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer


def summary_line(counts: dict[str, int]) -> str:
    """One line of detector counts, for the end of `inboxrl eval` and the training console."""
    return "checks: " + ", ".join(f"{name} {n}" for name, n in counts.items())


def register(app: typer.Typer) -> None:
    @app.command("check")
    def check_cmd(
        run_dirs: list[Path] = typer.Argument(..., help="Eval run directories (trajectories.jsonl) or training "
                                                        "run directories (validation/step-N.jsonl)."),
        as_json: bool = typer.Option(False, "--json", help="Print each run's report as one JSON object per line."),
    ) -> None:
        """Reward-hacking detectors: shotgun and unsupported answers, answer and abstention collapse, repeated
        calls, reward/accuracy divergence (docs/detectors.md)."""
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from inboxrl.checks.run import CheckError, check_run_dir

        reports = []
        for d in run_dirs:
            try:
                reports.append((d, check_run_dir(d)))
            except (CheckError, OSError) as e:
                Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {escape(str(e))}")
                raise typer.Exit(2) from None
        if as_json:
            for _, rep in reports:
                sys.stdout.write(json.dumps(rep.model_dump()) + "\n")
            return
        out = Console()
        for d, rep in reports:
            table = Table(title=f"{escape(str(d))} · {rep.n_episodes} episodes", title_justify="left")
            table.add_column("detector")
            table.add_column("count", justify="right")
            table.add_column("flagged")
            table.add_column("detail", overflow="fold")
            for name, res in rep.detectors.items():
                shown = ", ".join(res.flagged[:5]) + (f" (+{len(res.flagged) - 5})" if len(res.flagged) > 5 else "")
                table.add_row(name, f"[red]{res.count}[/red]" if res.count else "0", escape(shown), escape(res.detail))
            out.print(table)
