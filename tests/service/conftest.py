"""The service's tests, split by the venv that can run them.

``server/`` needs the server extra in this interpreter (FastAPI, the ``mcp`` 2.x client):
it runs in ``.venv-server``. ``remote/`` drives a server from the main venv (RemoteMemory,
the adapters), starting it from ``.venv-server``. Each folder is skipped at collection in
the other venv; ``make test`` runs both.
"""

from __future__ import annotations

import importlib.util


def _has_server_extra() -> bool:
    try:
        return importlib.util.find_spec("fastapi") is not None and (
            importlib.util.find_spec("mcp.server.mcpserver") is not None
        )
    except ImportError:
        return False


collect_ignore_glob = ["remote/*"] if _has_server_extra() else ["server/*"]
