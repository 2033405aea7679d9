"""``MemvaultSaver``: LangGraph's checkpointer over a memvault store.

Why: a graph's short-term memory (its threads' checkpoints: messages, state,
interrupts, the history ``get_state_history`` walks) and its long-term memory
(``MemvaultStore`` items, the tools' memories) then live in one file or database,
backed up, exported and deleted together. ``MemvaultSaver(memory=store)`` shares
the store's handles, so one engine serves both.

How it is stored, with memvault's keyed records only (no tables of its own, so
it works on every memvault backend):

* every record of thread ``T`` is in the memvault scope ``agent_id=<agent_id>``
  (default ``"langgraph-checkpoints"``), ``run_id=run_id_for(T)`` (``T`` itself
  when it is a valid memvault id, else a digest of it): a thread is a run;
* a checkpoint is the record ``("checkpoint", "ns:<checkpoint_ns>")`` / ``<id>``:
  the serialized checkpoint (``serde.dumps_typed``), its parent and its metadata
  as JSON (what ``list(filter=...)`` matches);
* the pending writes of one task are one record ``("writes", ...)`` /
  ``<checkpoint id>/<task id>``; a payload too large for one record value is
  split into ``("part", ...)`` records written before the record that needs them;
* records carry ``index=False`` (never embedded) and the category
  ``"langgraph-checkpoint"``, and their text is a one-line label, so history rows
  stay small.

Each operation is written once, as a plan (``memvault.adapterkit``): the sync
methods run it on ``Memory``, the async ones on ``AsyncMemory``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from memvault import AsyncMemory, Memory, MemoryConfig, ScopeError
from memvault.adapterkit import Call, HandlesMixin, MemoryHandles, Plan, twins
from memvault.embedding import Embedder
from memvault.scope import check_id
from memvault_langgraph.store import MemvaultStore

__all__ = ["CHECKPOINT_CATEGORY", "DEFAULT_CHECKPOINT_AGENT_ID", "MemvaultSaver", "run_id_for"]

#: The memvault ``agent_id`` checkpoint records live under (apart from store items).
DEFAULT_CHECKPOINT_AGENT_ID = "langgraph-checkpoints"
#: Category of every checkpoint record (filter them out of a run's memories with it).
CHECKPOINT_CATEGORY = "langgraph-checkpoint"
#: Largest serialized payload kept inline in a record value (base64 characters);
#: memvault caps a value at 1 MiB of JSON, so larger payloads go to part records.
_INLINE = 512 * 1024
_PART = 512 * 1024
#: memvault's largest page.
_PAGE = 10_000


def run_id_for(thread_id: Any) -> str:
    """The memvault ``run_id`` of a LangGraph thread: the id itself when valid, else a digest."""
    text = str(thread_id)
    try:
        return check_id(text, "thread_id")
    except ScopeError:  # whitespace, too long, ...: a stable id derived from it
        return "thread-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _label(checkpoint_ns: str) -> str:
    """A namespace label for a checkpoint namespace ("" is the root graph)."""
    return "ns:" + checkpoint_ns


def _configurable(config: RunnableConfig) -> tuple[str, str, str | None]:
    conf = config["configurable"]
    return str(conf["thread_id"]), str(conf.get("checkpoint_ns") or ""), get_checkpoint_id(config)


def _metadata_filter(filter: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``list(filter=...)`` as memvault filters on the stored metadata (dotted = nested)."""
    parts: list[dict[str, Any]] = []
    for key, value in (filter or {}).items():
        path = f"value.metadata.{key}"
        if value is None:  # as SqliteSaver's IS NULL: a null or a missing key
            parts.append({"OR": [{path: {"eq": None}}, {"NOT": [{path: "*"}]}]})
        else:  # explicit eq: a dict value is a value, not an operator dict
            parts.append({path: {"eq": value}})
    return parts


def _and(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    return {"AND": parts} if parts else None


class MemvaultSaver(HandlesMixin, BaseCheckpointSaver[str]):
    """A LangGraph checkpointer (``BaseCheckpointSaver``) whose threads live in memvault.

    Construct it as ``MemvaultSaver(path=...)``, ``MemvaultSaver(memory=<Memory or
    AsyncMemory>)`` or ``MemvaultSaver(memory=<MemvaultStore>)`` (one store for the
    graph's checkpoints and its long-term memory; the store keeps ownership).

    Args:
        memory: a ``memvault.Memory`` / ``AsyncMemory`` or a ``MemvaultStore`` to use
            (not closed by :meth:`close`).
        path, config, embedder: the store to open when no ``memory`` is given.
        serde: LangGraph serializer (default ``JsonPlusSerializer``).
        agent_id: memvault agent scope of the checkpoint records.
        delete_memories: make :meth:`delete_thread` also delete every memvault memory
            of the thread's run (``run_id=run_id_for(thread_id)``, any user or agent):
            what a tool or hook stored with that ``run_id`` goes with the thread.
    """

    def __init__(
        self,
        *,
        memory: Memory | AsyncMemory | MemvaultStore | None = None,
        path: Any = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        embedder: Embedder | None = None,
        serde: SerializerProtocol | None = None,
        agent_id: str = DEFAULT_CHECKPOINT_AGENT_ID,
        delete_memories: bool = False,
    ) -> None:
        super().__init__(serde=serde)
        self.agent_id = check_id(agent_id, "agent_id")
        self.delete_memories = delete_memories
        self._shared = isinstance(memory, MemvaultStore)
        if isinstance(memory, MemvaultStore):
            if path is not None or config is not None or embedder is not None:
                raise ValueError("pass either memory= or path=/config=/embedder=, not both")
            self.handles = memory.handles
        else:
            self.handles = MemoryHandles(memory, path=path, config=config, embedder=embedder)

    # -- lifecycle: a MemvaultStore's handles stay the store's ----------------------------------
    def close(self) -> None:
        """Close the memvault handles this saver opened (nothing shared is closed)."""
        if not self._shared:
            self.handles.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if not self._shared:
            await self.handles.aclose()

    # -- scopes and records ------------------------------------------------------------------
    def scope_for(self, thread_id: Any) -> dict[str, str]:
        """The memvault scope of a thread's checkpoint records."""
        return {"agent_id": self.agent_id, "run_id": run_id_for(thread_id)}

    def _pack(self, owner: str, type_: str, data: bytes) -> tuple[dict[str, Any], list[str]]:
        """A serialized payload as a record field, plus the parts it spills into."""
        packed = zlib.compress(data, 1) if len(data) > 1024 else data
        text = base64.b64encode(packed).decode("ascii")
        blob: dict[str, Any] = {"type": type_, "z": packed is not data, "owner": owner}
        if len(text) <= _INLINE:
            return {**blob, "data": text, "parts": 0}, []
        parts = [text[i : i + _PART] for i in range(0, len(text), _PART)]
        return {**blob, "data": None, "parts": len(parts)}, parts

    def _part_calls(
        self, thread: str, ns: str, cid: str, owner: str, parts: list[str]
    ) -> list[Call]:
        scope = self.scope_for(thread)
        ids = {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": cid}
        return [
            Call(
                "put",
                (("part", _label(ns)), f"{owner}#{i}", {**ids, "data": piece}),
                self._put_kwargs(scope, f"part {i} of {owner}"),
            )
            for i, piece in enumerate(parts)
        ]

    @staticmethod
    def _put_kwargs(scope: dict[str, str], text: str) -> dict[str, Any]:
        return {
            **scope,
            "text": text,
            "index": False,
            "categories": [CHECKPOINT_CATEGORY],
            "changed_by": "langgraph",
        }

    def _unpack(self, blob: dict[str, Any], parts: dict[str, str]) -> Any:
        if blob["parts"]:
            text = "".join(parts[f"{blob['owner']}#{i}"] for i in range(blob["parts"]))
        else:
            text = blob["data"]
        data = base64.b64decode(text)
        if blob.get("z"):
            data = zlib.decompress(data)
        return self.serde.loads_typed((blob["type"], data))

    def _all(
        self, scope: dict[str, str], prefix: tuple[str, ...] | None, filters: dict[str, Any] | None
    ) -> Plan[list[dict[str, Any]]]:
        """Every record matching, paged through memvault's page cap."""
        out: list[dict[str, Any]] = []
        while True:
            page = yield Call(
                "get_all",
                (),
                {
                    **scope,
                    "namespace_prefix": prefix,
                    "filters": filters,
                    "limit": _PAGE,
                    "offset": len(out),
                },
            )
            out.extend(page["results"])
            if len(page["results"]) < _PAGE:
                return out

    def _parts_of(
        self, scope: dict[str, str], ns: str, blobs: list[dict[str, Any]]
    ) -> Plan[dict[str, str]]:
        keys = [f"{b['owner']}#{i}" for b in blobs for i in range(b["parts"])]
        if not keys:
            return {}
        found = yield from self._all(scope, ("part", _label(ns)), {"key": {"in": keys}})
        return {r["key"]: r["value"]["data"] for r in found}

    def _writes_of(
        self, scope: dict[str, str], ns: str, checkpoint_ids: list[str]
    ) -> Plan[dict[str, list[PendingWrite]]]:
        """Pending writes per checkpoint id, each list in ``writes_sort_key`` order."""
        records = yield from self._all(
            scope,
            ("writes", _label(ns)),
            {"value.checkpoint_id": {"in": checkpoint_ids}},
        )
        entries = [(r["value"], w) for r in records for w in r["value"]["writes"]]
        parts = yield from self._parts_of(scope, ns, [w["value"] for _, w in entries])
        keyed: dict[str, list[tuple[tuple[str, str, int], PendingWrite]]] = {}
        for task, w in entries:
            write = (task["task_id"], w["channel"], self._unpack(w["value"], parts))
            sort = writes_sort_key(task["task_path"], task["task_id"], w["idx"])
            keyed.setdefault(task["checkpoint_id"], []).append((sort, write))
        return {cid: [w for _, w in sorted(ws, key=lambda x: x[0])] for cid, ws in keyed.items()}

    def _tuples(
        self, records: list[dict[str, Any]], config: RunnableConfig | None = None
    ) -> Plan[list[CheckpointTuple]]:
        """Checkpoint records (any threads) as ``CheckpointTuple``s, with their writes."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in records:
            v = r["value"]
            groups.setdefault((v["thread_id"], v["checkpoint_ns"]), []).append(v)
        writes: dict[tuple[str, str, str], list[PendingWrite]] = {}
        parts: dict[str, str] = {}
        for (thread, ns), values in groups.items():
            scope = self.scope_for(thread)
            found = yield from self._writes_of(scope, ns, [v["checkpoint_id"] for v in values])
            writes.update({(thread, ns, cid): ws for cid, ws in found.items()})
            parts.update((yield from self._parts_of(scope, ns, [v["checkpoint"] for v in values])))
        out = []
        for r in records:
            v = r["value"]
            thread, ns, cid = v["thread_id"], v["checkpoint_ns"], v["checkpoint_id"]
            own = {"configurable": {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": cid}}
            parent = v.get("parent_checkpoint_id")
            out.append(
                CheckpointTuple(
                    config if config is not None else cast(RunnableConfig, own),
                    self._unpack(v["checkpoint"], parts),
                    cast(CheckpointMetadata, v["metadata"]),
                    (
                        {
                            "configurable": {
                                "thread_id": thread,
                                "checkpoint_ns": ns,
                                "checkpoint_id": parent,
                            }
                        }
                        if parent
                        else None
                    ),
                    writes.get((thread, ns, cid), []),
                )
            )
        return out

    # -- the plans -------------------------------------------------------------------------------
    def _get_tuple_plan(self, config: RunnableConfig) -> Plan[CheckpointTuple | None]:
        """The checkpoint ``config`` names (its ``checkpoint_id``, else the thread's latest)."""
        thread, ns, cid = _configurable(config)
        scope = self.scope_for(thread)
        if cid:
            record = yield Call("get_key", (("checkpoint", _label(ns)), cid), scope)
        else:
            found = yield from self._all(scope, ("checkpoint", _label(ns)), None)
            record = max(found, key=lambda r: r["key"], default=None)
        if record is None:
            return None
        (tup,) = yield from self._tuples([record], config if cid else None)
        return tup

    def _list_plan(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Plan[list[CheckpointTuple]]:
        conditions = _metadata_filter(filter)
        scope: dict[str, str] = {"agent_id": self.agent_id}
        prefix: tuple[str, ...] = ("checkpoint",)
        if config is not None:
            conf = config["configurable"]
            scope = self.scope_for(conf["thread_id"])
            conditions.append({"value.thread_id": str(conf["thread_id"])})
            if conf.get("checkpoint_ns") is not None:
                prefix = ("checkpoint", _label(str(conf["checkpoint_ns"])))
            if cid := get_checkpoint_id(config):
                conditions.append({"key": cid})
        if before is not None and (before_id := get_checkpoint_id(before)):
            conditions.append({"key": {"lt": before_id}})
        found = yield from self._all(scope, prefix, _and(conditions))
        found.sort(key=lambda r: r["key"], reverse=True)  # newest checkpoint id first
        if limit is not None:
            found = found[:limit]
        return (yield from self._tuples(found))

    def _put_plan(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Plan[RunnableConfig]:
        """Store a checkpoint (child of ``config``'s checkpoint_id); returns its config."""
        conf = config["configurable"]
        thread, ns, parent = _configurable(config)
        scope = self.scope_for(thread)
        cid = checkpoint["id"]
        owner = f"checkpoint/{cid}"
        blob, parts = self._pack(owner, *self.serde.dumps_typed(checkpoint))
        meta = json.loads(json.dumps(get_checkpoint_metadata(config, metadata), default=str))
        # The parts first: a checkpoint is never visible without its data.
        for call in self._part_calls(thread, ns, cid, owner, parts):  # noqa: UP028 (see below)
            yield call
        value = {
            "thread_id": thread,
            "checkpoint_ns": ns,
            "checkpoint_id": cid,
            "parent_checkpoint_id": parent,
            "metadata": meta,
            "checkpoint": blob,
        }
        yield Call(
            "put",
            (("checkpoint", _label(ns)), cid, value),
            self._put_kwargs(scope, f"langgraph checkpoint {cid}"),
        )
        return {
            "configurable": {
                "thread_id": conf["thread_id"],
                "checkpoint_ns": ns,
                "checkpoint_id": cid,
            }
        }

    def _put_writes_plan(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> Plan[None]:
        """Store a task's pending writes on the checkpoint ``config`` names."""
        thread, ns, cid = _configurable(config)
        if not cid:
            raise ValueError("put_writes needs a config with a checkpoint_id")
        scope = self.scope_for(thread)
        namespace = ("writes", _label(ns))
        key = f"{cid}/{task_id}"
        old = yield Call("get_key", (namespace, key), scope)
        # Copies: a record read from memvault is shared with its read cache, never mutated.
        entries = {w["idx"]: dict(w) for w in (old["value"]["writes"] if old else [])}
        # As SqliteSaver: special writes (errors, interrupts, ...) replace, others never do.
        replace = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        spill: list[Call] = []
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            if idx in entries and not replace:
                continue
            owner = f"write/{cid}/{task_id}/{idx}"
            blob, parts = self._pack(owner, *self.serde.dumps_typed(value))
            spill += self._part_calls(thread, ns, cid, owner, parts)
            entries[idx] = {"idx": idx, "channel": channel, "value": blob}
        # Several inline payloads could outgrow one record: spill the largest until it fits.
        while sum(len(e["value"]["data"] or "") for e in entries.values()) > _INLINE:
            big = max(entries.values(), key=lambda e: len(e["value"]["data"] or ""))
            text, blob = big["value"]["data"], big["value"]
            parts = [text[j : j + _PART] for j in range(0, len(text), _PART)]
            spill += self._part_calls(thread, ns, cid, blob["owner"], parts)
            big["value"] = {**blob, "data": None, "parts": len(parts)}
        for call in spill:  # noqa: UP028 - the driver sends results, a list iterator cannot
            yield call
        value = {
            "thread_id": thread,
            "checkpoint_ns": ns,
            "checkpoint_id": cid,
            "task_id": task_id,
            "task_path": task_path,
            "writes": sorted(entries.values(), key=lambda e: e["idx"]),
        }
        yield Call("put", (namespace, key, value), self._put_kwargs(scope, f"writes of {key}"))
        return None

    def _delete_thread_plan(self, thread_id: str) -> Plan[None]:
        """Delete a thread's checkpoints and writes (and its run's memories, if asked)."""
        run_id = run_id_for(thread_id)
        if self.delete_memories:  # every memory of the run, checkpoints included
            yield Call("delete_all", (), {"run_id": run_id, "changed_by": "langgraph"})
        else:
            yield Call("delete_all", (), {**self.scope_for(thread_id), "changed_by": "langgraph"})
        return None

    def _delete_for_runs_plan(self, run_ids: Sequence[str]) -> Plan[None]:
        """Delete the checkpoints (with their writes) whose metadata ``run_id`` is listed."""
        if not run_ids:
            return None
        found = yield from self._all(
            {"agent_id": self.agent_id},
            ("checkpoint",),
            {"value.metadata.run_id": {"in": [str(r) for r in run_ids]}},
        )
        groups: dict[tuple[str, str], list[str]] = {}
        for r in found:
            v = r["value"]
            groups.setdefault((v["thread_id"], v["checkpoint_ns"]), []).append(v["checkpoint_id"])
        for (thread, ns), ids in groups.items():
            # A checkpoint, its writes and their parts: one transaction per thread namespace.
            yield Call(
                "delete_all",
                (),
                {
                    **self.scope_for(thread),
                    "filters": {"value.checkpoint_ns": ns, "value.checkpoint_id": {"in": ids}},
                    "changed_by": "langgraph",
                },
            )
        return None

    def _copy_thread_plan(self, source_thread_id: str, target_thread_id: str) -> Plan[None]:
        """Copy every checkpoint and write of one thread to another (the whole chain)."""
        records = yield from self._all(self.scope_for(source_thread_id), None, None)
        target = self.scope_for(target_thread_id)
        order = {"part": 0, "writes": 1, "checkpoint": 2}  # data before what refers to it
        for r in sorted(records, key=lambda r: (order.get(r["namespace"][0], 3), r["key"])):
            value = r["value"]
            if "thread_id" in value:
                value = {**value, "thread_id": str(target_thread_id)}
            yield Call(
                "put",
                (tuple(r["namespace"]), r["key"], value),
                self._put_kwargs(target, r["memory"]),
            )
        return None

    def _prune_plan(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
    ) -> Plan[None]:
        """``keep_latest``: per namespace, the latest checkpoint (and what its delta
        channels are rebuilt from); ``delete``: every checkpoint of the threads."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}; use 'keep_latest' or 'delete'")
        for thread in thread_ids:
            scope = self.scope_for(thread)
            if strategy == "delete":
                yield Call("delete_all", (), {**scope, "changed_by": "langgraph"})
                continue
            found = yield from self._all(scope, ("checkpoint",), None)
            latest: dict[str, str] = {}
            for r in found:
                ns = r["value"]["checkpoint_ns"]
                latest[ns] = max(latest.get(ns, ""), r["key"])
            for ns, cid in latest.items():
                keep = yield from self._kept_chain(str(thread), ns, cid)
                yield Call(
                    "delete_all",
                    (),
                    {
                        **scope,
                        "filters": {
                            "value.checkpoint_ns": ns,
                            "value.checkpoint_id": {"nin": sorted(keep)},
                        },
                        "changed_by": "langgraph",
                    },
                )
        return None

    def _kept_chain(self, thread: str, ns: str, cid: str) -> Plan[set[str]]:
        """The latest checkpoint and the ancestors its ``DeltaChannel``s are rebuilt from.

        A channel with a version but no stored value is reconstructed from its
        ancestors' writes back to the nearest stored value, so ``keep_latest`` keeps
        that stretch of the chain (and its writes) instead of silently emptying it.
        """
        keep = {cid}
        conf = {"thread_id": thread, "checkpoint_ns": ns, "checkpoint_id": cid}
        tup = yield from self._get_tuple_plan({"configurable": conf})
        if tup is None:
            return keep
        missing = set(tup.checkpoint["channel_versions"]) - set(tup.checkpoint["channel_values"])
        cursor = tup.parent_config
        while missing and cursor is not None:
            parent_id = cursor["configurable"]["checkpoint_id"]
            if parent_id in keep:
                break
            keep.add(parent_id)
            tup = yield from self._get_tuple_plan(cursor)
            if tup is None:
                break
            missing -= set(tup.checkpoint["channel_values"])
            cursor = tup.parent_config
        return keep

    def _delta_history_plan(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Plan[Mapping[str, DeltaChannelHistory]]:
        """``BaseCheckpointSaver.get_delta_channel_history``'s walk, guarded against cycles.

        The same contract (ancestors' writes oldest first, the nearest stored value as
        ``seed``); a parent chain that loops (a checkpoint re-put under its own
        descendant) ends the walk instead of spinning forever.
        """
        if not channels:
            return {}
        collected: dict[str, list[PendingWrite]] = {c: [] for c in channels}
        seeds: dict[str, Any] = {}
        remaining = set(channels)
        target = yield from self._get_tuple_plan(config)
        seen = {target.config["configurable"]["checkpoint_id"]} if target else set()
        cursor = target.parent_config if target else None
        while cursor is not None and remaining:
            cid = cursor["configurable"]["checkpoint_id"]
            if cid in seen:
                break
            seen.add(cid)
            tup = yield from self._get_tuple_plan(cursor)
            if tup is None:
                break
            for write in reversed(tup.pending_writes or []):
                if write[1] in remaining:
                    collected[write[1]].append(write)
            for ch in list(remaining):
                if ch in tup.checkpoint["channel_values"]:
                    seeds[ch] = tup.checkpoint["channel_values"][ch]
                    remaining.discard(ch)
            cursor = tup.parent_config
        out: dict[str, DeltaChannelHistory] = {}
        for ch in channels:
            entry: DeltaChannelHistory = {"writes": list(reversed(collected[ch]))}
            if ch in seeds:
                entry["seed"] = seeds[ch]
            out[ch] = entry
        return out

    # -- BaseCheckpointSaver: each method runs a plan above on Memory (or AsyncMemory) --------
    get_tuple, aget_tuple = twins(_get_tuple_plan)
    put, aput = twins(_put_plan)
    put_writes, aput_writes = twins(_put_writes_plan)
    delete_thread, adelete_thread = twins(_delete_thread_plan)
    delete_for_runs, adelete_for_runs = twins(_delete_for_runs_plan)
    copy_thread, acopy_thread = twins(_copy_thread_plan)
    prune, aprune = twins(_prune_plan)
    get_delta_channel_history, aget_delta_channel_history = twins(_delta_history_plan)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by checkpoint id), of a thread or, with ``None``, all.

        ``filter`` matches metadata keys (a dotted key is a nested path), ``before``
        keeps checkpoint ids below its own, ``limit`` caps the count.
        """
        plan = self._list_plan(config, filter=filter, before=before, limit=limit)
        yield from self.handles.run(plan)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        plan = self._list_plan(config, filter=filter, before=before, limit=limit)
        for tup in await self.handles.arun(plan):
            yield tup

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Monotonic versions with a random tie-breaker, as LangGraph's own savers make them.

        The random part keeps versions written on two forks of one thread distinct.
        """
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"
