"""`inboxrl models list|prepare|check`: see which models are available, pay the one-time conversion of the bundled
models up front (e.g. in an install script, instead of inside the first evaluation), and find out in seconds
whether a model spec or endpoint works before starting a long run."""

from __future__ import annotations

import json
import time
from typing import Any, NoReturn

import typer


def _fail(message: str, code: int = 1) -> NoReturn:
    from rich.console import Console

    Console(stderr=True).print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _bundled_rows() -> list[dict[str, Any]]:
    from inboxrl.models import bundled
    from inboxrl.models.base import BackendError

    rows = []
    for key, m in bundled.BUNDLED.items():
        try:
            bundled.part_paths(m)
            installed, hint = True, ""
        except BackendError:
            installed, hint = False, m.install_hint
        rows.append({"spec": f"local/{key}", "model": m.display, "installed": installed,
                     "converted": bundled.is_converted(key), "cache": str(bundled.converted_dir(key)),
                     "install": hint})
    return rows


def register(app: typer.Typer) -> None:
    models = typer.Typer(name="models", no_args_is_help=True, help="Bundled models, conversion, endpoint checks.")
    app.add_typer(models, name="models")

    @models.command("list")
    def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """The bundled offline models: installed? converted to the fast-loading cache?"""
        rows = _bundled_rows()
        if as_json:
            typer.echo(json.dumps(rows, indent=1))
            return
        from rich.console import Console
        from rich.table import Table

        t = Table("spec", "model", "installed", "converted", "cache / install")
        for r in rows:
            t.add_row(r["spec"], r["model"], "yes" if r["installed"] else "[red]no[/red]",
                      "yes" if r["converted"] else "no", r["cache"] if r["installed"] else r["install"])
        Console().print(t)

    @models.command("prepare")
    def prepare(
        names: list[str] = typer.Argument(None, help="Bundled models (default: all installed)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Converts bundled models to the safetensors cache now (about a minute each, once per machine)."""
        from inboxrl.models import bundled
        from inboxrl.models.base import BackendError
        from inboxrl.models.spec import bundled_key

        keys = []
        for n in names or [r["spec"][len("local/"):] for r in _bundled_rows() if r["installed"]]:
            key = bundled_key(n.removeprefix("local/"))
            if key is None:
                _fail(f"not a bundled model: {n} (bundled: {', '.join(bundled.BUNDLED)})", 2)
            keys.append(key)
        out = []
        for key in keys:
            t0 = time.perf_counter()
            try:
                path = bundled.ensure_converted(key, progress=not as_json)
            except BackendError as e:
                _fail(str(e))
            out.append({"spec": f"local/{key}", "path": str(path), "seconds": round(time.perf_counter() - t0, 1)})
        if as_json:
            typer.echo(json.dumps(out, indent=1))
        else:
            for o in out:
                typer.echo(f"{o['spec']}: ready in {o['path']} ({o['seconds']} s)")

    @models.command("check")
    def check(
        model: str = typer.Option(..., "--model", help="Model spec (local/... or an endpoint model name)."),
        base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint."),
        api_key_env: str = typer.Option("OPENAI_API_KEY", "--api-key-env", help="Environment variable with the key."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Loads a local model, or reaches an endpoint, and says what it found; fails with one line if it cannot."""
        from inboxrl.models.base import BackendError
        from inboxrl.models.registry import load_backend

        t0 = time.perf_counter()
        try:
            b = load_backend(model, base_url=base_url, api_key_env=api_key_env)
            if hasattr(b, "check"):
                b.check()
        except BackendError as e:
            _fail(str(e))
        info: dict[str, Any] = {"spec": b.name, "native_tools": b.native_tools,
                                "seconds": round(time.perf_counter() - t0, 2)}
        for attr in ("template_tools", "max_context", "base_url"):
            if hasattr(b, attr):
                info[attr] = getattr(b, attr)
        if as_json:
            typer.echo(json.dumps(info, indent=1))
        else:
            typer.echo("ok: " + ", ".join(f"{k}={v}" for k, v in info.items()))
