"""Keyed records: memories addressed by (namespace, key) — how the adapters store things.

Why in the core: LangGraph items (namespace tuple + key + JSON value), CrewAI
records (scope path + id) and similar must be real memvault memories — searchable,
audited in history, exported, scoped — so the adapters translate instead of
keeping storage of their own. A replace is an in-place UPDATE with history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from memvault.effects import Blocking, Embed, Op
from memvault.errors import ValidationError
from memvault.inputs import (
    as_vectors,
    check_changed_by,
    check_key,
    check_namespace,
    check_space,
    clean_categories,
    clean_importance,
    clean_metadata,
    clean_ttl,
    clean_value,
    parse_time,
)
from memvault.models import DEFAULT_SPACE, MemoryRecord, content_hash, to_iso, utcnow
from memvault.scope import check_id, resolve_scope
from memvault.store.contract import Visibility
from memvault.text import clean_text

if TYPE_CHECKING:
    from memvault.embedding.base import Embedder
    from memvault.store.contract import Store
    from memvault.store.vector_index import VectorIndex
    from memvault.views import ViewCache


def labels_match(labels: Sequence[str], pattern: Sequence[str]) -> bool:
    """Label-by-label equality where ``"*"`` in ``pattern`` matches any one label."""
    return len(labels) == len(pattern) and all(
        p == "*" or p == lab for lab, p in zip(labels, pattern, strict=True)
    )


class KeyedOps:
    """The keyed-record operations of ``Engine`` (a mixin: same store, same index)."""

    store: Store
    embedder: Embedder
    index: VectorIndex
    views: ViewCache

    def put(
        self,
        namespace: Sequence[str],
        key: Any,
        value: Any = None,
        *,
        text: str | None = None,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        index: Sequence[str] | bool | None = None,
        embeddings: Sequence[Any] | None = None,
        vector_space: str | None = None,
        metadata: Any = None,
        categories: Sequence[str] | None = None,
        importance: float | None = None,
        ttl_seconds: float | None = None,
        timestamp: Any = None,
        changed_by: str | None = None,
    ) -> Op[dict[str, Any]]:
        """Create or replace the memory stored under ``(namespace, key)`` in a scope.

        ``text`` is what keyword search sees (default: the JSON of ``value``);
        ``index`` lists the texts to embed (default ``[text]``; ``False``/``[]`` = no
        vectors); ``embeddings`` brings the vectors instead. A replace is an UPDATE
        in the history, so a keyed memory's past values stay auditable.
        """
        scope, _ = resolve_scope(user_id, agent_id, run_id)
        ns = check_namespace(namespace)
        key = check_key(key)
        value_json = clean_value(value)
        body = clean_text(text if text is not None else value_json, what="text")
        meta = clean_metadata(metadata)
        cats = clean_categories(categories)
        imp = clean_importance(importance)
        ttl_seconds = clean_ttl(ttl_seconds)
        observed = parse_time(timestamp)
        space = check_space(vector_space)
        changed_by = check_changed_by(changed_by)
        vectors: dict[str, np.ndarray] | None
        if embeddings is not None:
            vectors = {space: as_vectors(embeddings, "embeddings")}
        elif index is False or (
            index is not None and not isinstance(index, bool) and len(index) == 0
        ):
            vectors = None
        else:
            texts = (
                [body]
                if index is None or index is True
                else [clean_text(t, what="index text") for t in index]
            )
            vectors = {DEFAULT_SPACE: (yield Embed(self.embedder, texts))}

        def write() -> dict[str, Any]:
            now = utcnow()
            expires = None
            if ttl_seconds is not None:
                expires = to_iso(datetime.fromisoformat(now) + timedelta(seconds=ttl_seconds))
            with self.store.write() as tx:
                old = self.store.find_key(scope, ns, key)
                if old is None:
                    r = MemoryRecord(
                        id=str(uuid.uuid4()),
                        memory=body,
                        scope=scope,
                        hash=content_hash(body),
                        metadata=meta,
                        created_at=now,
                        updated_at=now,
                        categories=cats,
                        importance=imp,
                        value=value,
                        namespace=ns,
                        key=key,
                        valid_from=observed or now,
                        expiration_date=expires,
                        last_accessed_at=now,
                        ttl_seconds=ttl_seconds,
                    )
                    tx.insert(r, vectors)
                    tx.history("ADD", memory_id=r.id, old=None, new=r, changed_by=changed_by)
                    event = "ADD"
                else:
                    r = replace(
                        old,
                        memory=body,
                        hash=content_hash(body),
                        metadata=meta,
                        updated_at=now,
                        categories=cats,
                        importance=imp,
                        value=value,
                        expiration_date=expires,
                        last_accessed_at=now,
                        ttl_seconds=ttl_seconds,
                    )
                    if vectors is None:
                        tx.clear_vectors(r)
                    tx.update(r, text_changed=True, vectors=vectors)
                    tx.history("UPDATE", memory_id=r.id, old=old, new=r, changed_by=changed_by)
                    event = "UPDATE"
            self.index.sync(tx.touched, tx.removed)
            return {**r.to_dict(), "event": event}

        return (yield Blocking(write))

    def get_key(
        self,
        namespace: Sequence[str],
        key: Any,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        touch: bool = False,
        show_expired: bool = False,
        include_vectors: bool = False,
    ) -> Op[dict[str, Any] | None]:
        """The memory under ``(namespace, key)`` in exactly this scope, or ``None``."""
        scope, _ = resolve_scope(user_id, agent_id, run_id)
        ns, key = check_namespace(namespace), check_key(key)

        def read() -> dict[str, Any] | None:
            r = self.store.find_key(scope, ns, key)
            if r is None or not Visibility(show_expired=show_expired).visible(r, utcnow()):
                return None
            if touch:
                self._touch([r.id])
                r = self.store.get(r.id) or r
            return self._public(r, include_vectors)

        return (yield Blocking(read))

    def delete_key(
        self,
        namespace: Sequence[str],
        key: Any,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        changed_by: str | None = None,
    ) -> Op[bool]:
        """Delete the memory under ``(namespace, key)``; False when there was none."""
        scope, _ = resolve_scope(user_id, agent_id, run_id)
        ns, key = check_namespace(namespace), check_key(key)
        changed_by = check_changed_by(changed_by)

        def write() -> bool:
            with self.store.write() as tx:
                r = self.store.find_key(scope, ns, key)
                if r is not None:
                    tx.remove(r, changed_by)
            self.index.sync(tx.touched, tx.removed)
            return r is not None

        return (yield Blocking(write))

    def namespaces(
        self,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
        show_expired: bool = False,
    ) -> Op[list[tuple[str, ...]]]:
        """Distinct namespaces of live memories in a scope, sorted.

        ``prefix``/``suffix`` match label by label, ``"*"`` matching any one label;
        ``max_depth`` truncates longer namespaces (then de-duplicates).
        """
        scope, _ = resolve_scope(user_id, agent_id, run_id)
        if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 1):
            raise ValidationError("max_depth must be a positive integer")

        def read() -> list[tuple[str, ...]]:
            now = utcnow()
            vis = Visibility(show_expired=show_expired)
            found: set[tuple[str, ...]] = set()
            for r in self.views.view(scope).records:
                ns = r.namespace
                if ns is None or not vis.visible(r, now):
                    continue
                if prefix is not None and not labels_match(ns[: len(prefix)], prefix):
                    continue
                if suffix is not None and (
                    len(ns) < len(suffix) or not labels_match(ns[len(ns) - len(suffix) :], suffix)
                ):
                    continue
                found.add(ns[:max_depth] if max_depth is not None else ns)
            return sorted(found)[offset : offset + limit]

        return (yield Blocking(read))

    def _touch(self, ids: Sequence[str]) -> None:
        with self.store.write() as tx:
            recs = self.store.get_many(list(ids))
            tx.touch([r.seq for r in recs], utcnow())

    def touch(self, ids: Sequence[str]) -> Op[None]:
        """Mark memories as accessed now (refreshes a TTL; feeds recency)."""
        checked = [check_id(i, "memory_id") for i in ids]
        return (yield Blocking(self._touch, (checked,)))

    def purge_expired(
        self,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        changed_by: str | None = "expiry",
    ) -> Op[int]:
        """Delete memories whose expiration passed (history keeps a DELETE event).

        Without this, expired memories are only hidden; TTL users (LangGraph stores)
        sweep with it. With no scope it sweeps the whole store.
        """
        scope, _ = resolve_scope(user_id, agent_id, run_id, required=False)

        def write() -> int:
            now = utcnow()
            with self.store.write() as tx:
                expired = self.store.expired(now, scope)
                for r in expired:
                    tx.remove(r, changed_by)
            self.index.sync(tx.touched, tx.removed)
            return len(expired)

        return (yield Blocking(write))
