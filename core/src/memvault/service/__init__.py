"""memvault as a service: an HTTP API (FastAPI) and an MCP server over one ``AsyncMemory``.

Why a package of its own: the service is a *caller* of the public API, like any
user; it adds what a shared server needs and a library does not: API keys bound to
a tenant (``keys``), the tenant turned into part of the scope before the engine sees
a call (``tenancy``), the routes (``routes``), the MCP tools (``mcp``) and typed
errors as HTTP bodies (``errors``). Importing this package imports nothing heavy:
FastAPI, uvicorn and the ``mcp`` SDK load only in ``app`` / ``mcp`` (the ``server``
extra), so ``memvault keys ...`` works from any install.
"""
