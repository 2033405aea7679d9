"""The HTTP routes: mem0 server's (``/memories``, ``/search``, ...) and memvault's own.

Every route but ``/health`` authenticates its caller (``Authorization: Bearer <key>``
or mem0's ``X-API-Key``) and acts through a ``TenantMemory``, the one place where a
key is checked against the scope or the memory it touches. Handlers are async and
call ``AsyncMemory``; the event loop never blocks on SQLite or the embedder.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from memvault import __version__
from memvault.errors import (
    MemvaultError,
    NotFoundError,
    RateLimitError,
    ScopeError,
    ValidationError,
)
from memvault.service import schemas as S
from memvault.service.tenant import TenantMemory


class Unauthorized(Exception):
    """No key, or a key that is unknown, malformed or revoked (HTTP 401)."""


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        # mem0's server clients send "Token <key>"; OAuth-style clients "Bearer <key>".
        return value.strip() if scheme.lower() in ("bearer", "token") else None
    return request.headers.get("x-api-key")


async def caller(request: Request) -> TenantMemory:
    principal = await request.app.state.keys.verify(_token(request))
    if principal is None:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
    request.state.principal = principal
    request.app.state.limiter.acquire(principal)  # RateLimitError: 429
    return TenantMemory(request.app.state.memory, principal)


Caller = Annotated[TenantMemory, Depends(caller)]
router = APIRouter()


def _ids(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, Any]:
    return {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}


# -- service ------------------------------------------------------------------------------------
@router.get("/health", tags=["service"])
async def health() -> dict[str, str]:
    """Liveness: answers without a key (and says nothing about the store)."""
    return {"status": "ok"}


@router.get("/info", tags=["service"])
async def info(t: Caller, request: Request) -> dict[str, Any]:
    """The server's version and embedder, and what the caller's key allows."""
    embedder = request.app.state.memory.embedder
    p = t.principal
    return {
        "version": __version__,
        "embedder": {"name": embedder.name, "dims": embedder.dims},
        "key": {
            "key_id": p.key_id,
            "tenant": p.tenant,
            "user_ids": sorted(p.user_ids) if p.user_ids is not None else None,
            "agent_ids": sorted(p.agent_ids) if p.agent_ids is not None else None,
            "read_only": p.read_only,
            "rate_limit": request.app.state.limiter.limit_of(p),
        },
    }


@router.post("/embed", tags=["service"])
async def embed(body: S.EmbedRequest, t: Caller, request: Request) -> dict[str, Any]:
    """Embed texts with the server's model (what ``RemoteMemory.embedder`` uses)."""
    from memvault.embedding import aembed

    if body.kind not in ("passage", "query"):
        raise ValidationError("kind must be 'passage' or 'query'")
    vectors = await aembed(request.app.state.memory.embedder, body.texts, kind=body.kind)
    return {"vectors": [[float(x) for x in row] for row in vectors]}


# -- mem0 server routes ------------------------------------------------------------------------
@router.post("/memories", tags=["memories"])
async def add(body: S.AddRequest, t: Caller) -> Any:
    """Remember messages in a scope (raw, or extracted and reconciled by the LLM)."""
    return await t.add(body.messages, body.ids(), **body.options())


@router.get("/memories", tags=["memories"])
async def get_all(
    t: Caller,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    top_k: Annotated[int, Query(ge=0, le=10_000)] = 100,
    show_expired: bool = False,
) -> Any:
    """The scope's memories, newest first (``POST /memories/list`` takes every option)."""
    return await t.get_all(_ids(user_id, agent_id, run_id), top_k=top_k, show_expired=show_expired)


@router.delete("/memories", tags=["memories"])
async def delete_all(
    t: Caller, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
) -> Any:
    """Delete every memory of a scope (a scope is required)."""
    return await t.delete_all(_ids(user_id, agent_id, run_id))


@router.post("/search", tags=["memories"])
async def search(body: S.SearchRequest, t: Caller) -> Any:
    """Hybrid search in a scope: filters, ``as_of``, ``explain``, paging."""
    return await t.search(body.query, body.ids(), body.filters, **body.options())


@router.get("/memories/{memory_id}", tags=["memories"])
async def get(memory_id: str, t: Caller, include_vectors: bool = False) -> Any:
    """One memory (404 unless the key owns it)."""
    return await t.get(memory_id, include_vectors=include_vectors)


@router.put("/memories/{memory_id}", tags=["memories"])
async def update(memory_id: str, body: S.UpdateRequest, t: Caller) -> Any:
    """Edit a memory in place (metadata merged); history keeps the old version."""
    await _check_given_scope(t, memory_id, _ids(body.user_id, body.agent_id, body.run_id))
    return await t.update(
        memory_id,
        text=body.text,
        data=body.data,
        metadata=body.metadata,
        expiration_date=body.expiration_date,
        changed_by=body.changed_by,
    )


@router.delete("/memories/{memory_id}", tags=["memories"])
async def delete(
    memory_id: str,
    t: Caller,
    changed_by: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
) -> Any:
    """Delete a memory (its history stays)."""
    await _check_given_scope(t, memory_id, _ids(user_id, agent_id, run_id))
    return await t.delete(memory_id, changed_by=changed_by)


async def _check_given_scope(t: TenantMemory, memory_id: str, ids: dict[str, Any]) -> None:
    """A by-id call that also names a scope: outside it, the memory is missing (as in the library)."""
    if not any(v is not None for v in ids.values()):
        return
    record = await t.get(memory_id)
    for field, value in ids.items():
        if value is not None and str(value) != record.get(field):
            raise NotFoundError(f"no memory with id {memory_id!r} in that scope")


@router.get("/memories/{memory_id}/history", tags=["memories"])
async def history(memory_id: str, t: Caller) -> Any:
    """Every change of a memory, oldest first (also after it was deleted)."""
    return await t.history(memory_id)


# -- memvault's own -----------------------------------------------------------------------------
@router.post("/memories/list", tags=["memories"])
async def list_(body: S.ListRequest, t: Caller) -> Any:
    """``get_all`` with filters, ``as_of``, ordering, paging and vectors."""
    return await t.get_all(body.ids(), body.filters, **body.options())


@router.post("/memories/count", tags=["memories"])
async def count(body: S.CountRequest, t: Caller) -> Any:
    opts = body.model_dump(exclude={"filters", "user_id", "agent_id", "run_id"})
    return {"count": await t.count(body.ids(), body.filters, **opts)}


@router.post("/memories/delete", tags=["memories"])
async def delete_where(body: S.DeleteAllRequest, t: Caller) -> Any:
    """``delete_all`` with filters and a namespace prefix."""
    return await t.delete_all(
        body.ids(), body.filters, namespace_prefix=body.namespace_prefix, changed_by=body.changed_by
    )


@router.post("/memories/touch", tags=["memories"])
async def touch(body: S.TouchRequest, t: Caller) -> Any:
    return {"touched": await t.touch(body.memory_ids)}


@router.post("/memories/purge_expired", tags=["memories"])
async def purge_expired(body: S.Scoped, t: Caller) -> Any:
    return {"purged": await t.purge_expired(body.ids())}


@router.put("/records", tags=["records"])
async def put_record(body: S.PutRecord, t: Caller) -> Any:
    """Create or replace the memory under ``(namespace, key)`` in a scope."""
    return await t.put(body.namespace, body.key, body.value, body.ids(), **body.options())


@router.post("/records/get", tags=["records"])
async def get_record(body: S.RecordRef, t: Caller) -> Any:
    return await t.get_key(
        body.namespace,
        body.key,
        body.ids(),
        touch=body.touch,
        show_expired=body.show_expired,
        include_vectors=body.include_vectors,
    )


@router.post("/records/delete", tags=["records"])
async def delete_record(body: S.RecordRef, t: Caller) -> Any:
    return {"deleted": await t.delete_key(body.namespace, body.key, body.ids(), body.changed_by)}


@router.post("/records/namespaces", tags=["records"])
async def namespaces(body: S.NamespacesRequest, t: Caller) -> Any:
    opts = body.model_dump(exclude={"user_id", "agent_id", "run_id"})
    return {"namespaces": await t.namespaces(body.ids(), **opts)}


@router.get("/export", tags=["transfer"])
async def export(
    t: Caller,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    include_vectors: bool = True,
) -> Response:
    """One scope as export JSONL (memories, every version, their history)."""
    lines = await t.export_lines(_ids(user_id, agent_id, run_id), include_vectors)
    return Response("".join(line + "\n" for line in lines), media_type="application/x-ndjson")


@router.post("/import", tags=["transfer"])
async def import_(request: Request, t: Caller) -> Any:
    """Export JSONL (the request body) into the caller's tenant; see ``import_lines``."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValidationError("the import body is not valid UTF-8") from e
    return await t.import_lines(text.splitlines())


@router.post("/ingest", tags=["ingest"], status_code=202)
async def ingest(body: S.IngestRequest, t: Caller, request: Request) -> Any:
    """Start a bulk ingest job; poll ``GET /ingest/{job_id}`` for its progress."""
    rows = []
    for row in body.rows:
        ids = {f: row.get(f) for f in ("user_id", "agent_id", "run_id")}
        try:
            scope, _ = t.principal.scope(**ids, write=True)
        except ScopeError as e:  # a bad row is reported in the job, as the library does
            rows.append({"_error": t.principal.clean_message(str(e))})
            continue
        rows.append({**row, **scope})
    ingestor = t.memory._ingestor(
        concurrency=body.concurrency,
        mode=body.mode,
        progress=False,
        prices=None,
        poll_interval=30.0,
        row_retries=body.row_retries,
    )
    job = request.app.state.jobs.start(t.principal, ingestor, rows)
    return request.app.state.jobs.status(t.principal, job)


@router.get("/ingest/{job_id}", tags=["ingest"])
async def ingest_status(job_id: str, t: Caller, request: Request, wait: float = 0.0) -> Any:
    """A job's progress (``wait`` seconds, at most 30, for it to finish first)."""
    jobs = request.app.state.jobs
    job = jobs.get(t.principal, job_id)
    if wait > 0 and job.status == "running":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(job.done_event.wait(), timeout=min(wait, 30.0))
    return jobs.status(t.principal, job)


def error_response(
    status: int,
    kind: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return JSONResponse(
        {"error": {"type": kind, "message": message, **extra}}, status_code=status, headers=headers
    )


def memvault_error(request: Request, error: MemvaultError) -> JSONResponse:
    from memvault.service.errors import status_of

    principal = getattr(request.state, "principal", None)
    message = str(error)
    if principal is not None:
        message = principal.clean_message(message)
    kind, status = type(error).__name__, status_of(error)
    if isinstance(error, RateLimitError) and error.retry_after is not None:
        # Retry-After is whole seconds (RFC 9110); the body keeps the exact figure.
        wait = {"Retry-After": str(max(1, math.ceil(error.retry_after)))}
        return error_response(status, kind, message, headers=wait, retry_after=error.retry_after)
    return error_response(status, kind, message)


__all__ = ["Unauthorized", "caller", "error_response", "memvault_error", "router"]
