"""`python -m inboxrl` = the `inboxrl` command (what an MCP client config can launch without the script on PATH)."""

from inboxrl.cli import app

app(prog_name="inboxrl")
