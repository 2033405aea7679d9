"""One caller's view of the store: every operation, checked against its key, on ``AsyncMemory``.

Why one class that both the HTTP routes and the MCP tools call: the checks are the
product here, so they are written once. Scoped calls get their scope from
``Principal.scope`` (the tenant enters the scope before the engine sees the call);
by-id calls first load the memory (or its history) and answer ``NotFoundError``
unless the key owns it, then act with the memory's own scope passed down too, so the
engine checks it again. Every result leaves through ``Principal.strip``.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from memvault.errors import NotFoundError, ValidationError
from memvault.memory import AsyncMemory
from memvault.scope import SCOPE_FIELDS
from memvault.service.tenancy import Forbidden, Principal

#: uuid5 namespace of import id remapping (see ``TenantMemory.import_lines``).
_IMPORT_NS = uuid.UUID("5b0e7c52-6f0a-4d1e-9a53-3e1f4c1d2b7a")


class TenantMemory:
    """``AsyncMemory``'s operations as one API key may perform them."""

    def __init__(self, memory: AsyncMemory, principal: Principal) -> None:
        self.memory = memory
        self.principal = principal

    # -- helpers ----------------------------------------------------------------------------------
    def _scope(
        self, ids: dict[str, Any], filters: dict[str, Any] | None = None, *, write: bool = False
    ) -> tuple[dict[str, str | None], dict[str, Any] | None]:
        return self.principal.scope(
            ids.get("user_id"), ids.get("agent_id"), ids.get("run_id"), filters, write=write
        )

    def _writable(self) -> None:
        if self.principal.read_only:
            raise Forbidden("this API key is read-only")

    def _no_llm_spend(self, retrieval: Any) -> None:
        """A read-only key may not make a search call the LLM.

        Why: query expansion (``retrieval.expansions``) spends LLM tokens per search, as an
        ``add`` with ``infer`` does; a key handed out to read (a dashboard, an agent's
        recall tool) must not run up the model bill. Expansion the server's own config
        turns on is the operator's choice and applies to every key.
        """
        if self.principal.read_only and isinstance(retrieval, dict) and retrieval.get("expansions"):
            raise Forbidden(
                "this API key is read-only: it may not ask for LLM query expansion "
                "(retrieval.expansions spends LLM tokens)"
            )

    def _changed_by(self, given: str | None) -> str:
        return given or f"api-key:{self.principal.key_id}"

    async def _owned(self, memory_id: str) -> dict[str, Any]:
        """The memory (internal ids) if this key owns it; NotFoundError otherwise."""
        if not isinstance(memory_id, str):
            raise NotFoundError("no memory with that id")
        record = await self.memory.get(memory_id)
        if not self.principal.owns(record):
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return record

    # -- writes -----------------------------------------------------------------------------------
    async def add(self, messages: Any, ids: dict[str, Any], **opts: Any) -> Any:
        scope, _ = self._scope(ids, write=True)
        opts["changed_by"] = self._changed_by(opts.get("changed_by"))
        opts["vector_space"] = self.principal.space(opts.get("vector_space"))
        return self.principal.strip(await self.memory.add(messages, **scope, **opts))

    async def update(self, memory_id: str, **opts: Any) -> Any:
        self._writable()
        record = await self._owned(memory_id)
        opts["changed_by"] = self._changed_by(opts.get("changed_by"))
        scope = self.principal.record_scope(record)
        return self.principal.strip(await self.memory.update(memory_id, **opts, **scope))

    async def delete(self, memory_id: str, changed_by: str | None = None) -> Any:
        self._writable()
        record = await self._owned(memory_id)
        scope = self.principal.record_scope(record)
        return await self.memory.delete(memory_id, changed_by=self._changed_by(changed_by), **scope)

    async def delete_all(
        self, ids: dict[str, Any], filters: dict[str, Any] | None = None, **opts: Any
    ) -> Any:
        scope, rest = self._scope(ids, filters, write=True)
        opts["changed_by"] = self._changed_by(opts.get("changed_by"))
        return await self.memory.delete_all(**scope, filters=rest, **opts)

    async def put(
        self, namespace: Sequence[str], key: str, value: Any, ids: dict[str, Any], **opts: Any
    ) -> Any:
        scope, _ = self._scope(ids, write=True)
        opts["changed_by"] = self._changed_by(opts.get("changed_by"))
        opts["vector_space"] = self.principal.space(opts.get("vector_space"))
        return self.principal.strip(await self.memory.put(namespace, key, value, **scope, **opts))

    async def delete_key(
        self, namespace: Sequence[str], key: str, ids: dict[str, Any], changed_by: str | None = None
    ) -> Any:
        scope, _ = self._scope(ids, write=True)
        return await self.memory.delete_key(
            namespace, key, **scope, changed_by=self._changed_by(changed_by)
        )

    async def touch(self, memory_ids: Sequence[str]) -> Any:
        self._writable()
        for memory_id in memory_ids:
            await self._owned(memory_id)
        return await self.memory.touch(list(memory_ids))

    async def purge_expired(self, ids: dict[str, Any]) -> Any:
        scope, _ = self._scope(ids, write=True)
        return await self.memory.purge_expired(**scope)

    # -- reads ------------------------------------------------------------------------------------
    async def search(
        self,
        query: str | None,
        ids: dict[str, Any],
        filters: dict[str, Any] | None = None,
        **opts: Any,
    ) -> Any:
        scope, rest = self._scope(ids, filters)
        self._no_llm_spend(opts.get("retrieval"))
        opts["vector_space"] = self.principal.space(opts.get("vector_space"))
        return self.principal.strip(await self.memory.search(query, **scope, filters=rest, **opts))

    async def get_all(
        self, ids: dict[str, Any], filters: dict[str, Any] | None = None, **opts: Any
    ) -> Any:
        scope, rest = self._scope(ids, filters)
        return self.principal.strip(await self.memory.get_all(**scope, filters=rest, **opts))

    async def count(
        self, ids: dict[str, Any], filters: dict[str, Any] | None = None, **opts: Any
    ) -> Any:
        scope, rest = self._scope(ids, filters)
        return await self.memory.count(**scope, filters=rest, **opts)

    async def get(self, memory_id: str, include_vectors: bool = False) -> Any:
        record = await self._owned(memory_id)
        if include_vectors:
            record = await self.memory.get(
                memory_id, include_vectors=True, **self.principal.record_scope(record)
            )
        return self.principal.strip(record)

    async def history(self, memory_id: str) -> Any:
        if not isinstance(memory_id, str):
            raise NotFoundError("no memory with that id")
        rows = await self.memory.history(memory_id)
        # History outlives its memory, so the rows themselves say whose it is.
        if not rows or not all(self.principal.owns(r) for r in rows):
            raise NotFoundError(f"no memory with id {memory_id!r}")
        return self.principal.strip(rows)

    async def get_key(
        self, namespace: Sequence[str], key: str, ids: dict[str, Any], **opts: Any
    ) -> Any:
        scope, _ = self._scope(ids)
        return self.principal.strip(await self.memory.get_key(namespace, key, **scope, **opts))

    async def namespaces(self, ids: dict[str, Any], **opts: Any) -> Any:
        scope, _ = self._scope(ids)
        return await self.memory.namespaces(**scope, **opts)

    # -- export / import ----------------------------------------------------------------------------
    async def export_lines(self, ids: dict[str, Any], include_vectors: bool = True) -> list[str]:
        """The scope as export JSONL lines (see ``memvault.transfer``), with the caller's ids."""
        from memvault.transfer import export_jsonl

        scope, _ = self._scope(ids)
        buf = io.StringIO()
        await asyncio.to_thread(
            export_jsonl, self.memory, buf, include_vectors=include_vectors, **scope
        )
        out = []
        for line in buf.getvalue().splitlines():
            obj = json.loads(line)
            if obj.get("type") == "memvault-export" and isinstance(obj.get("scope"), dict):
                obj["scope"] = self.principal.strip(obj["scope"])
            out.append(json.dumps(self.principal.strip(obj), ensure_ascii=False))
        return out

    async def import_lines(self, lines: Iterable[str]) -> dict[str, Any]:
        """Import export JSONL into this tenant.

        Why ids are remapped: ids are global in the store, so an imported line must not
        be able to name (and so probe, or append history to) another tenant's memory.
        Each id in the file becomes ``uuid5(tenant, id)``: links between the file's
        memories (``superseded_by``, history ``memory_id`` / ``related_id``) survive, the
        same file imported twice is still skipped the second time, and no file can
        produce another tenant's ids. History row numbers are not kept.
        """
        from memvault.transfer import import_jsonl

        ns = uuid.uuid5(_IMPORT_NS, self.principal.tenant)

        def remap(value: Any) -> Any:
            return str(uuid.uuid5(ns, str(value))) if value is not None else None

        out: list[str] = []
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValidationError(f"line {lineno}: not valid JSON ({e.msg})") from e
            if not isinstance(obj, dict):
                raise ValidationError(f"line {lineno}: expected a JSON object")
            kind = obj.get("type")
            if kind == "memvault-export":
                obj.pop("scope", None)
                for field in ("spaces", "space_models"):
                    if isinstance(obj.get(field), dict):
                        obj[field] = {self.principal.space(k): v for k, v in obj[field].items()}
            elif kind in ("memory", "history"):
                try:
                    scope, _ = self._scope({f: obj.get(f) for f in SCOPE_FIELDS}, write=True)
                except ValidationError as e:
                    raise ValidationError(f"line {lineno}: {e}") from e
                obj.update(scope)
                if kind == "memory":
                    if isinstance(obj.get("vectors"), dict):
                        obj["vectors"] = {
                            self.principal.space(k): v for k, v in obj["vectors"].items()
                        }
                    for field in ("id", "superseded_by"):
                        if obj.get(field) is not None:
                            obj[field] = remap(obj[field])
                else:
                    obj.pop("id", None)
                    for field in ("memory_id", "related_id"):
                        if obj.get(field) is not None:
                            obj[field] = remap(obj[field])
            out.append(json.dumps(obj))
        self._writable()
        return await asyncio.to_thread(import_jsonl, self.memory, out)
