"""``RemoteMemory`` / ``AsyncRemoteMemory``: the ``Memory`` API of a memvault server, over HTTP.

Why subclasses of ``Memory`` / ``AsyncMemory`` whose engine speaks HTTP: every public
method of ``memory.py`` is ``self._run(self._engine.<op>(...))``, so a stand-in engine
that turns each operation into an HTTP request, and a ``_run`` that sends it, give the
remote classes the very same methods, signatures and docstrings — they cannot drift
from the library's. And since they *are* ``Memory`` / ``AsyncMemory``, every adapter
(LangGraph store, LlamaIndex memory, CrewAI storage and tools) takes one unchanged.

The server answers errors as ``{"error": {"type", "message"}}``; they are raised here
as the same classes the library raises (``NotFoundError``, ``ScopeError``, ...), plus
``PermissionDenied`` for what the API key may not do and ``RateLimitError`` (with
``retry_after`` seconds) when the key used up its calls per minute. ``get`` of a memory the key
cannot see returns ``None``, as for a missing one.

Not over HTTP: ``reset`` and ``stats`` (whole-store operations no tenant key may run),
``pending`` / ``retry_pending`` (the server's own queue) and ``ingest(dry_run=True)``.
Needs ``httpx`` (the ``remote`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np

from memvault import errors as E
from memvault.ingest import IngestReport
from memvault.memory import AsyncMemory, Memory

__all__ = ["AsyncRemoteMemory", "PermissionDenied", "RemoteEmbedder", "RemoteMemory"]

_MISSING = object()


class PermissionDenied(E.MemvaultError, PermissionError):
    """The server refused the API key (401: unknown or revoked; 403: not allowed to do this)."""


class RemoteUnsupported(E.MemvaultError, NotImplementedError):
    """An operation that a memvault server does not offer to API keys."""


_ERRORS: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        E.ConfigError,
        E.DimensionMismatchError,
        E.ValidationError,
        E.ScopeError,
        E.FilterError,
        E.NotFoundError,
        E.StorageError,
        E.EmbeddingError,
        E.LLMError,
        E.MemvaultError,
    )
}
_ERRORS.update(
    Forbidden=PermissionDenied, Unauthorized=PermissionDenied, RequestTooLarge=E.ValidationError
)


def _jsonable(value: Any) -> Any:
    """Arguments as JSON: datetimes as ISO text, arrays and tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


#: Body fields the library stores as JSON and refuses when they are not JSON (a set, an
#: object): sent as given, so a value ``Memory`` would refuse is refused here too, with the
#: library's error, instead of being quietly turned into a list.
_STRICT_JSON = ("metadata", "value")


def _strict_json(value: Any, what: str) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise E.ValidationError(f"{what} must be JSON-serialisable: {e}") from e
    return value


def _body(body: Any) -> Any:
    if not isinstance(body, dict):
        return _jsonable(body)
    return {
        str(k): _strict_json(v, k) if k in _STRICT_JSON else _jsonable(v) for k, v in body.items()
    }


def _error(response: httpx.Response) -> Exception:
    try:
        err = response.json()["error"]
        kind, message = str(err["type"]), str(err["message"])
    except Exception:
        err, kind = {}, "MemvaultError"
        message = f"HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code == 429:  # the key's rate limit: say when to come back
        wait = err.get("retry_after", response.headers.get("retry-after"))
        try:
            retry_after = float(wait) if wait is not None else None
        except (TypeError, ValueError):
            retry_after = None
        return E.RateLimitError(message, retry_after=retry_after)
    cls = _ERRORS.get(kind, E.MemvaultError)
    if cls is E.MemvaultError and response.status_code == 404:
        cls = E.NotFoundError
    if cls is E.DimensionMismatchError:  # its constructor takes the numbers, not a message
        err = E.DimensionMismatchError.__new__(E.DimensionMismatchError)
        Exception.__init__(err, message)
        return err
    return cls(message)


@dataclass(slots=True)
class _HttpCall:
    """One operation as a request: what ``_run`` sends, and how its answer becomes a result."""

    method: str
    path: str
    body: Any = None
    params: dict[str, Any] | None = None
    decode: Callable[[Any], Any] = lambda data: data
    on_404: Any = _MISSING  # returned instead of raising NotFoundError

    def request(self, client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        params = {k: _jsonable(v) for k, v in (self.params or {}).items() if v is not None}
        body = None if self.body is None else _body(self.body)
        return client.build_request(self.method, self.path, json=body, params=params)

    def result(self, response: httpx.Response) -> Any:
        if response.status_code == 404 and self.on_404 is not _MISSING:
            return self.on_404
        if response.status_code >= 400:
            raise _error(response)
        return self.decode(response.json())


def _scope(user_id: Any, agent_id: Any, run_id: Any) -> dict[str, Any]:
    return {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}


def _in_scope(record: Any, scope: dict[str, Any]) -> Any:
    """The library's rule for a by-id read with a scope: outside it, the memory is missing."""
    if record is None:
        return None
    for f, v in scope.items():
        if v is not None and record.get(f) != str(v):
            return None
    return record


def _unsupported(name: str) -> Any:
    raise RemoteUnsupported(f"{name}() is not available through a memvault server")


def _mid(memory_id: Any) -> str:
    return quote(str(memory_id), safe="")


class _RemoteEngine:
    """The engine's operations (as ``memory.py`` calls them), each made an HTTP request."""

    def add(
        self,
        messages: Any,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        **opts: Any,
    ) -> _HttpCall:
        body = {"messages": messages, **_scope(user_id, agent_id, run_id), **opts}
        return _HttpCall("POST", "/memories", body)

    def search(
        self,
        query: Any = None,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        **opts: Any,
    ) -> _HttpCall:
        body = {"query": query, **_scope(user_id, agent_id, run_id), **opts}
        return _HttpCall("POST", "/search", body)

    def get(self, memory_id: Any, *, include_vectors: bool = False, **scope: Any) -> _HttpCall:
        return _HttpCall(
            "GET",
            f"/memories/{_mid(memory_id)}",
            params={"include_vectors": include_vectors or None},
            decode=lambda record: _in_scope(record, scope),
            on_404=None,
        )

    def get_all(
        self, *, user_id: Any = None, agent_id: Any = None, run_id: Any = None, **opts: Any
    ) -> _HttpCall:
        return _HttpCall("POST", "/memories/list", {**_scope(user_id, agent_id, run_id), **opts})

    def count(
        self, *, user_id: Any = None, agent_id: Any = None, run_id: Any = None, **opts: Any
    ) -> _HttpCall:
        body = {**_scope(user_id, agent_id, run_id), **opts}
        return _HttpCall("POST", "/memories/count", body, decode=lambda d: d["count"])

    def update(
        self, memory_id: Any, text: Any = None, metadata: Any = None, **opts: Any
    ) -> _HttpCall:
        body = {"text": text, "metadata": metadata, **opts}
        return _HttpCall("PUT", f"/memories/{_mid(memory_id)}", body)

    def delete(self, memory_id: Any, *, changed_by: Any = None, **scope: Any) -> _HttpCall:
        return _HttpCall(
            "DELETE", f"/memories/{_mid(memory_id)}", params={"changed_by": changed_by, **scope}
        )

    def delete_all(
        self, *, user_id: Any = None, agent_id: Any = None, run_id: Any = None, **opts: Any
    ) -> _HttpCall:
        return _HttpCall("POST", "/memories/delete", {**_scope(user_id, agent_id, run_id), **opts})

    def history(self, memory_id: Any) -> _HttpCall:
        return _HttpCall("GET", f"/memories/{_mid(memory_id)}/history", on_404=[])

    def put(self, namespace: Any, key: Any, value: Any = None, **opts: Any) -> _HttpCall:
        return _HttpCall(
            "PUT", "/records", {"namespace": namespace, "key": key, "value": value, **opts}
        )

    def get_key(self, namespace: Any, key: Any, **opts: Any) -> _HttpCall:
        return _HttpCall("POST", "/records/get", {"namespace": namespace, "key": key, **opts})

    def delete_key(self, namespace: Any, key: Any, **opts: Any) -> _HttpCall:
        body = {"namespace": namespace, "key": key, **opts}
        return _HttpCall("POST", "/records/delete", body, decode=lambda d: d["deleted"])

    def namespaces(self, **opts: Any) -> _HttpCall:
        return _HttpCall(
            "POST",
            "/records/namespaces",
            opts,
            decode=lambda d: [tuple(ns) for ns in d["namespaces"]],
        )

    def touch(self, memory_ids: Sequence[str]) -> _HttpCall:
        body = {"memory_ids": list(memory_ids)}
        return _HttpCall("POST", "/memories/touch", body, decode=lambda d: d["touched"])

    def purge_expired(self, **scope: Any) -> _HttpCall:
        return _HttpCall("POST", "/memories/purge_expired", scope, decode=lambda d: d["purged"])

    def flush(self) -> _HttpCall:
        # The server embeds its own queue; a search embeds its scope's queued memories first.
        return _HttpCall("GET", "/health", decode=lambda _: 0)

    def pending(self) -> Any:
        return _unsupported("pending")

    def retry_pending(self) -> Any:
        return _unsupported("retry_pending")

    def reset(self) -> Any:
        return _unsupported("reset")

    def stats(self) -> Any:
        return _unsupported("stats")

    def close(self) -> None:
        pass


@dataclass
class RemoteEmbedder:
    """The server's embedder, as an ``Embedder``: its name and dims, and ``embed`` over HTTP."""

    name: str
    _dims: int
    _client: httpx.Client = field(repr=False)

    @property
    def dims(self) -> int:
        return self._dims

    def embed(self, texts: list[str], *, kind: str = "passage") -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dims), dtype=np.float32)
        rows = _send_sync(
            self._client, _HttpCall("POST", "/embed", {"texts": list(texts), "kind": kind})
        )
        return np.asarray(rows["vectors"], dtype=np.float32)


def _send_sync(client: httpx.Client, call: _HttpCall) -> Any:
    try:
        response = client.send(call.request(client))
    except httpx.TransportError as e:
        raise E.StorageError(f"cannot reach the memvault server at {client.base_url}: {e}") from e
    return call.result(response)


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's default TLS context, made once: httpx builds one per client otherwise (tens of
    milliseconds of CPU each), and adapters and per-loop async clients make many clients."""
    return httpx.create_ssl_context()


class _Twins:
    """What a remote handle shares with its twins (``as_sync`` / ``as_async``): one embedder.

    As with a local ``Memory`` and its twin (one engine, one loaded model), both handles
    answer ``embedder`` with the same object. It embeds through a sync client of its own,
    closed when the last handle of the family closes.
    """

    def __init__(self, client_args: dict[str, Any], transport: Any = None) -> None:
        self._client_args = client_args
        self._transport = transport
        self._lock = threading.Lock()
        self._embedder: RemoteEmbedder | None = None
        self._users = 0

    def join(self) -> _Twins:
        with self._lock:
            self._users += 1
        return self

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._users <= 0
            embedder, self._embedder = (self._embedder, None) if last else (None, self._embedder)
        if embedder is not None:
            embedder._client.close()

    def embedder(self) -> RemoteEmbedder:
        with self._lock:
            if self._embedder is None:
                client = httpx.Client(**self._client_args, transport=self._transport)
                try:
                    info = _send_sync(client, _HttpCall("GET", "/info"))["embedder"]
                except BaseException:
                    client.close()
                    raise
                self._embedder = RemoteEmbedder(info["name"], int(info["dims"]), client)
            return self._embedder


class _RemoteBase:
    """What both remote classes share: the connection settings and the engine stand-in."""

    url: str
    api_key: str | None
    timeout: float
    _engine: Any
    _twins: _Twins

    def _setup(
        self, url: str | None, api_key: str | None, timeout: float, twins: _Twins | None = None
    ) -> dict[str, Any]:
        url = url or os.environ.get("MEMVAULT_URL") or "http://127.0.0.1:8000"
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("MEMVAULT_API_KEY")
        self.timeout = timeout
        self.config = None  # type: ignore[assignment]
        self._engine = _RemoteEngine()
        self._owns_engine = False
        self._closed = False
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        args = {"base_url": self.url, "headers": headers, "timeout": timeout, "verify": _tls()}
        self._twins = (twins or _Twins(args)).join()
        return args

    @property
    def path(self) -> str:
        """The server's URL (a local ``Memory``'s path is its store file)."""
        return self.url

    @property
    def embedder(self) -> RemoteEmbedder:  # type: ignore[override]
        """The server's embedder (the same object for this handle and its twins)."""
        return self._twins.embedder()

    @classmethod
    def from_config(cls, config_dict: dict[str, Any]) -> Any:
        """``{"url": ..., "api_key": ..., "timeout": ...}``."""
        return cls(**config_dict)

    def _report(self, status: dict[str, Any]) -> IngestReport:
        names = {f.name for f in dataclasses.fields(IngestReport)}
        report = IngestReport(**{k: v for k, v in status["report"].items() if k in names})
        if status.get("status") == "failed":
            raise E.MemvaultError(f"ingest job {status['job_id']} failed: {status.get('error')}")
        return report


def _ingest_call(
    rows: Iterable[dict[str, Any]], concurrency: int, mode: str, dry_run: bool, row_retries: int
) -> _HttpCall:
    if dry_run:
        _unsupported("ingest(dry_run=True)")
    body = {
        "rows": list(rows),
        "concurrency": concurrency,
        "mode": mode,
        "row_retries": row_retries,
    }
    return _HttpCall("POST", "/ingest", body)


class RemoteMemory(_RemoteBase, Memory):
    """``Memory`` over HTTP: ``RemoteMemory("http://127.0.0.1:8000", api_key="mvk_...")``.

    ``url`` / ``api_key`` default to ``$MEMVAULT_URL`` / ``$MEMVAULT_API_KEY``.
    Thread-safe (one ``httpx.Client`` with a connection pool); a context manager.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        _twins: _Twins | None = None,
    ) -> None:
        args = self._setup(url, api_key, timeout, _twins)
        if _twins is None:
            self._twins._transport = transport
        self._client = httpx.Client(**args, transport=transport)

    def _send(self, call: _HttpCall) -> Any:
        return _send_sync(self._client, call)

    def _run(self, op: Any) -> Any:
        return self._send(op)

    def info(self) -> dict[str, Any]:
        """The server's version and embedder, and what this key allows."""
        return self._send(_HttpCall("GET", "/info"))  # type: ignore[no-any-return]

    def ingest(  # type: ignore[override]
        self,
        rows: Iterable[dict[str, Any]],
        *,
        concurrency: int = 8,
        mode: str = "live",
        dry_run: bool = False,
        progress: bool = False,
        prices: Any = None,
        poll_interval: float = 30.0,
        row_retries: int = 5,
    ) -> IngestReport:
        """Run an ingest job on the server and wait for it (its progress: ``GET /ingest/{id}``)."""
        status = self._send(_ingest_call(rows, concurrency, mode, dry_run, row_retries))
        while status["status"] == "running":
            status = self._send(
                _HttpCall("GET", f"/ingest/{status['job_id']}", params={"wait": 10})
            )
        return self._report(status)

    def as_async(self, max_workers: int = 4) -> AsyncRemoteMemory:
        """An ``AsyncRemoteMemory`` to the same server with the same key (and embedder)."""
        return AsyncRemoteMemory(self.url, self.api_key, timeout=self.timeout, _twins=self._twins)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._client.close()
        self._twins.leave()


class AsyncRemoteMemory(_RemoteBase, AsyncMemory):
    """``AsyncMemory`` over HTTP; an async context manager.

    One ``httpx.AsyncClient`` per event loop that uses it: an async client's connections
    belong to the loop that opened them, and adapters call one handle from several loops
    (``asyncio.run`` per call from sync code, a framework's worker threads, pytest's loop
    per test). A client whose loop has closed is dropped with it.
    """

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        _twins: _Twins | None = None,
    ) -> None:
        self._client_args = self._setup(url, api_key, timeout, _twins)
        self._transport = transport
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._clients_lock = threading.Lock()

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            with self._clients_lock:
                if self._closed:
                    raise E.MemvaultError("this AsyncRemoteMemory is closed")
                for gone in [lp for lp in self._clients if lp.is_closed()]:
                    del self._clients[gone]  # its connections died with their loop
                client = self._clients[loop] = httpx.AsyncClient(
                    **self._client_args, transport=self._transport
                )
        return client

    async def _send(self, call: _HttpCall) -> Any:
        client = self._client()
        try:
            response = await client.send(call.request(client))
        except httpx.TransportError as e:
            raise E.StorageError(f"cannot reach the memvault server at {self.url}: {e}") from e
        return call.result(response)

    def _run(self, op: Any) -> Any:
        return self._send(op)

    async def info(self) -> dict[str, Any]:
        return await self._send(_HttpCall("GET", "/info"))  # type: ignore[no-any-return]

    async def ingest(  # type: ignore[override]
        self,
        rows: Iterable[dict[str, Any]],
        *,
        concurrency: int = 8,
        mode: str = "live",
        dry_run: bool = False,
        progress: bool = False,
        prices: Any = None,
        poll_interval: float = 30.0,
        row_retries: int = 5,
    ) -> IngestReport:
        status = await self._send(_ingest_call(rows, concurrency, mode, dry_run, row_retries))
        while status["status"] == "running":
            status = await self._send(
                _HttpCall("GET", f"/ingest/{status['job_id']}", params={"wait": 10})
            )
        return self._report(status)

    def as_sync(self) -> RemoteMemory:
        """A ``RemoteMemory`` to the same server with the same key (and embedder)."""
        return RemoteMemory(self.url, self.api_key, timeout=self.timeout, _twins=self._twins)

    async def close(self) -> None:
        with self._clients_lock:
            if self._closed:
                return
            self._closed = True
            clients, self._clients = self._clients, {}
        current = asyncio.get_running_loop()
        for loop, client in clients.items():
            if loop is current:
                await client.aclose()
            elif loop.is_running():  # another thread's loop: close it there
                done = asyncio.run_coroutine_threadsafe(client.aclose(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(done), timeout=5)
            # a closed (or stopped) loop's connections went with it
        self._twins.leave()
