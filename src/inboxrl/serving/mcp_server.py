"""`inboxrl mcp`: search_inbox and read_email for one inbox, as an MCP server (the official `mcp` SDK) on stdio.

The tools are the agent's own (`inboxrl.tools.InboxTools`), so scoping (one inbox, mail before a date), query
escaping and result limits are the very code the agent runs under; nothing here re-implements them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inboxrl.tools.base import READ_TOOL, SEARCH_TOOL, BadArgumentsError, Scope


def build_server(db: Path, inbox: str, before: str | None = None) -> Any:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from inboxrl.tools.inbox import InboxTools

    scope = Scope(inbox, before=before)
    with InboxTools(db, scope):  # a bad store or date fails now, at startup, in one line
        pass
    seen = f"mail to or from {inbox}" + (f" sent before {before}" if before else "")
    server: Any = MCPServer("inboxrl", instructions=f"Search and read the emails of one inbox: {seen}.")

    def call(name: str, arguments: dict[str, Any]) -> str:
        # One connection per call: the SDK may run sync tools on worker threads, and calls are milliseconds.
        with InboxTools(db, scope) as tools:
            try:
                result = tools.call(name, {k: v for k, v in arguments.items() if v is not None})
            except BadArgumentsError as e:
                raise ToolError(str(e)) from None
        if not result.ok:
            raise ToolError(result.content)
        return result.content

    @server.tool(name=SEARCH_TOOL, description=f"Search {seen} by keywords (1-3 words work best). Returns "
                                               "message ids, dates, senders, subjects and snippets.")
    def search_inbox(keywords: list[str], from_addr: str | None = None, to_addr: str | None = None,
                     sent_after: str | None = None, sent_before: str | None = None,
                     max_results: int | None = None) -> str:
        return call(SEARCH_TOOL, {"keywords": keywords, "from_addr": from_addr, "to_addr": to_addr,
                                  "sent_after": sent_after, "sent_before": sent_before, "max_results": max_results})

    @server.tool(name=READ_TOOL, description="Read one email by a message_id from search results; long bodies "
                                             "are cut, and offset pages through them.")
    def read_email(message_id: str, offset: int = 0) -> str:
        return call(READ_TOOL, {"message_id": message_id, "offset": offset})

    return server
