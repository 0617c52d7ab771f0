"""Putting the agent in people's hands: an HTTP API (`inboxrl serve`) and an MCP server (`inboxrl mcp`).

The top layer: it uses the agent, the tools and the trajectory record, and nothing below imports it.
"""
