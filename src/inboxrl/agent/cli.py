"""CLI commands of this part (registered by inboxrl.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this part's commands to the main app."""
