"""The `inboxrl` command. Each part of the system registers its own commands; heavy imports stay inside them
so that `inboxrl --help` and the mail commands start fast."""

from __future__ import annotations

import typer

from inboxrl import __version__

app = typer.Typer(
    name="inboxrl",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Build, measure and train email research agents on real mail.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


def _register() -> None:
    from inboxrl.agent import cli as agent_cli
    from inboxrl.checks import cli as checks_cli
    from inboxrl.evaluation import cli as eval_cli
    from inboxrl.judge import cli as judge_cli
    from inboxrl.models import cli as models_cli
    from inboxrl.questions import cli as questions_cli
    from inboxrl.serving import cli as serving_cli
    from inboxrl.store import cli as store_cli
    from inboxrl.tools import cli as tools_cli
    from inboxrl.training import cli as training_cli
    from inboxrl.viewer import cli as viewer_cli

    for part in (store_cli, tools_cli, agent_cli, judge_cli, eval_cli, questions_cli, training_cli, models_cli,
                 serving_cli, checks_cli, viewer_cli):
        part.register(app)


_register()
