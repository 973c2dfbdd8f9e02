"""The MCP door: an MCP (Model Context Protocol) server at ``/mcp/`` on both ports, so an AI
assistant can query and drive a local testbed as it does the real monitor's MCP endpoint.

``protocol`` is the JSON-RPC framing (no web framework), ``toolkit`` how a tool is declared and its
arguments checked, ``queries`` the reads tools share, ``records``/``overview``/``control`` the tools
(thin adapters over :class:`swf_lite.service.Service`), ``tools`` the registry and ``route`` the
bottle route. See docs/mcp.md.
"""
