"""Real Enron messages for the store tests, taken from ../shared on the fly (never copied into the repo)."""

from __future__ import annotations

import email
import lzma
from email.policy import compat32
from pathlib import Path

from inboxrl.store.sources import split_mbox


def real_messages(kaminski_dir: Path, folder: str = "universities", n: int | None = None) -> list[bytes]:
    msgs, _ = split_mbox(lzma.decompress((kaminski_dir / f"{folder}.mbox.xz").read_bytes()))
    return msgs[:n] if n else msgs


def message_id(raw: bytes) -> str:
    return email.message_from_bytes(raw, policy=compat32)["Message-ID"].strip()


def to_mbox(msgs: list[bytes]) -> bytes:
    """An mbox the way the shared corpus writes it: 'From ' separators, body lines starting 'From ' quoted."""
    out = []
    for m in msgs:
        body = b"\n".join(b">" + line if line.startswith(b"From ") else line for line in m.split(b"\n"))
        out.append(b"From MAILER-DAEMON Mon Apr 18 14:19:09 2022\n" + body.rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def with_header(raw: bytes, name: str, value: bytes | None) -> bytes:
    """The message with header `name` replaced (or removed when value is None)."""
    head, sep, body = raw.partition(b"\n\n")
    lines = head.split(b"\n")
    out: list[bytes] = []
    skipping = False
    for line in lines:
        if line[:1] in (b" ", b"\t") and skipping:
            continue
        skipping = line.lower().startswith(name.lower().encode() + b":")
        if not skipping:
            out.append(line)
    if value is not None:
        out.insert(1, name.encode() + b": " + value)
    return b"\n".join(out) + sep + body


def store_app():
    """A Typer app with only the store's commands: these tests do not depend on other parts' CLI code."""
    import typer

    from inboxrl.store import cli as store_cli

    app = typer.Typer()
    store_cli.register(app)

    @app.callback()
    def _main() -> None:  # keeps `ingest`/`inboxes` as subcommands, as in the real `inboxrl` app
        pass

    return app
