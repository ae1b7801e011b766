"""The app as an MCP server, opt-in: ``MASKDEPTH_MCP=1 python app.py`` (or Gradio's own
``GRADIO_MCP_SERVER=true``) serves ``/gradio_api/mcp/`` with prediction as its only tool.

Needs ``pip install "gradio[mcp]"``. Gradio makes every public endpoint a tool; training, pushing
and comparisons are long or change state, so :func:`keep_tools` narrows the server to
:data:`MCP_TOOLS` (listing and calling). The HTTP API is unchanged.
"""

from __future__ import annotations

import importlib.util
import os

import gradio as gr

MCP_TOOLS = ("/predict",)
_TRUE = ("1", "true", "yes")


def mcp_requested() -> bool:
    """Whether ``MASKDEPTH_MCP`` (or ``GRADIO_MCP_SERVER``) asks for the MCP server."""
    return any(os.environ.get(name, "").lower() in _TRUE for name in ("MASKDEPTH_MCP", "GRADIO_MCP_SERVER"))


def check_installed() -> None:
    """Fail at start-up, naming the fix, when the MCP server is asked for but ``mcp`` is missing."""
    if importlib.util.find_spec("mcp") is None:
        raise SystemExit('MASKDEPTH_MCP is set but the MCP extra is missing: pip install "gradio[mcp]"')


def keep_tools(demo: gr.Blocks, endpoints: tuple[str, ...] = MCP_TOOLS) -> list[str]:
    """Narrow a launched app's MCP server to the tools of ``endpoints``; returns the tool names kept."""
    server = getattr(demo, "mcp_server_obj", None)
    if server is None:
        raise RuntimeError("the app was launched without mcp_server=True: there is no MCP server to narrow")
    server.tool_to_endpoint = {t: e for t, e in server.tool_to_endpoint.items() if e in endpoints}
    return list(server.tool_to_endpoint)
