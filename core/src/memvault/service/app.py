"""The ASGI application: the HTTP API and the MCP endpoint over one ``AsyncMemory``.

``create_app()`` returns an app that uvicorn serves (``memvault serve``). Requests to
``/mcp`` go to the MCP server (streamable HTTP, bearer-token auth by the SDK), every
other path to the FastAPI app; both sit behind one request-size limit and share the
store, the key verifier and the lifespan (which opens the store, runs the MCP session
manager, and closes both, in that order and its reverse).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memvault import __version__
from memvault.errors import MemvaultError
from memvault.memory import AsyncMemory
from memvault.service.jobs import Jobs
from memvault.service.keys import KeyVerifier
from memvault.service.ratelimit import RateLimiter
from memvault.service.routes import Unauthorized, error_response, memvault_error, router

log = logging.getLogger("memvault.service")

#: Largest request body accepted (bytes): an add is at most 64 KiB of text per message,
#: an ingest or import batch a few MiB; more is refused with 413 before it is read.
MAX_BODY_BYTES = 8 * 1024 * 1024
#: Threads of the server's ``AsyncMemory`` (storage reads and writes, searches, model runs).
#: The library's default (4) suits one application; a server's model runs (at most the
#: embedder's ``workers`` at once) would hold most of them, and every add and key check
#: queued behind a model run. Storage calls are short and SQLite serialises the writes.
POOL_SIZE = 16


class _TooLarge(Exception):
    pass


class ServiceApp:
    """Routes ``/mcp`` to the MCP app and the rest to FastAPI, under a body-size limit."""

    def __init__(self, api: FastAPI, mcp_app: ASGIApp | None, max_body_bytes: int) -> None:
        self.api = api
        self.mcp_app = mcp_app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.api(scope, receive, send)  # lifespan (and websockets, which we have none of)
            return
        path = scope["path"]
        target: ASGIApp = self.api
        if self.mcp_app is not None and (path == "/mcp" or path.startswith("/mcp/")):
            target = self.mcp_app
        limit = self.max_body_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _too_large(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await target(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "type": "RequestTooLarge",
                "message": f"the request body is larger than {limit} bytes",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    memory: AsyncMemory | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
    config: dict[str, Any] | None = None,
    mcp: bool = True,
    host: str = "127.0.0.1",
    base_url: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    pool_size: int = POOL_SIZE,
    rate_limit: int | None = None,
) -> ServiceApp:
    """The service over ``memory`` (or a store opened at start from ``path`` / ``config``).

    A ``memory`` passed in stays the caller's; one opened here is closed at shutdown, and
    runs its storage and model work on ``pool_size`` threads (see ``POOL_SIZE``).
    ``mcp=False`` leaves out the MCP endpoint (and the ``mcp`` SDK import).
    ``rate_limit``: calls per minute allowed to each key that has no limit of its own
    (``ratelimit``); None: such keys are not limited.
    """
    state: dict[str, Any] = {}
    limiter = RateLimiter(rate_limit)
    mcp_server = None
    if mcp:
        from memvault.service.mcp import build_mcp, http_principal

        def current_memory() -> AsyncMemory:
            return state["memory"]

        class _LazyVerifier(KeyVerifier):
            """The verifier exists before the store is open; it reads the store once it is."""

            def __init__(self) -> None:
                pass

            async def verify(self, token: str | None) -> Any:
                return await state["keys"].verify(token)

        lazy = _LazyVerifier()
        mcp_server = build_mcp(
            current_memory,
            http_principal(lazy),
            http=lazy,
            base_url=base_url or f"http://{host}:8000",
            limiter=limiter,
        )
        mcp_app = mcp_server.streamable_http_app(streamable_http_path="/mcp", host=host)
    else:
        mcp_app = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = memory is None
        opened = (
            memory if memory is not None else AsyncMemory(config, path=path, max_workers=pool_size)
        )
        load = getattr(opened.embedder, "load", None)  # a local model: now, not in a request
        if own and callable(load):
            await asyncio.to_thread(load)
        state["memory"] = opened
        state["keys"] = KeyVerifier(opened)
        app.state.memory, app.state.keys, app.state.jobs = opened, state["keys"], Jobs()
        app.state.limiter = limiter
        try:
            if mcp_server is not None:
                async with mcp_server.session_manager.run():
                    yield
            else:
                yield
        finally:
            await app.state.jobs.close()
            if own:
                await opened.close()

    api = FastAPI(
        title="memvault",
        version=__version__,
        description="Long-term memory for AI agents: mem0-compatible routes, tenant-bound API keys.",
        lifespan=lifespan,
        # No 307 to a slash-less twin: a memory id that decodes to "/" must get a
        # structured 404, not a redirect to another route.
        redirect_slashes=False,
    )
    api.include_router(router)
    _install_error_handlers(api)
    return ServiceApp(api, mcp_app, max_body_bytes)


def _install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(MemvaultError)
    async def _memvault(request: Request, error: MemvaultError) -> Any:
        return memvault_error(request, error)

    @api.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, error: Unauthorized) -> Any:
        return error_response(401, "Unauthorized", str(error))

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> Any:
        details = [
            {
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in error.errors()[:20]
        ]
        message = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details[:5])
        return error_response(422, "ValidationError", message or "invalid request", details=details)

    @api.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException) -> Any:
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status_code, "HTTPError")
        return error_response(error.status_code, kind, str(error.detail))

    @api.exception_handler(Exception)
    async def _crash(request: Request, error: Exception) -> Any:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "InternalError", "internal server error (see the server log)")
