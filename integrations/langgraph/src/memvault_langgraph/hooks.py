"""Memory without tool calls: inject what is known, record what was said.

Why hooks as well as tools: a model only calls ``recall`` when it thinks of it,
and only calls ``remember`` for what it judges worth keeping. The hot path here
puts the user's most relevant memories into the system prompt before every
model call (one hybrid search, no LLM); the cold path hands each finished turn
to ``Memory.add(infer=True)`` on a background thread, debounced, so fact
extraction (an LLM call when one is configured) never delays the reply. The
turns wait in the store's durable queue (``memvault.deferred``), not in process
memory: a crash or exit loses no turn.

- :class:`MemoryWriter`: the cold path. ``writer.post_model_hook`` for
  ``create_react_agent(post_model_hook=...)``, ``writer.node`` for a
  ``StateGraph``, or ``writer.record(messages, config)`` from anywhere.
- :func:`create_memory_hook`: the hot path as a ``pre_model_hook`` for
  ``langgraph.prebuilt.create_react_agent``.
- :class:`memvault_langgraph.middleware.MemvaultMiddleware`: both, for
  ``langchain.agents.create_agent``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda

from memvault import Memory, MemvaultError, ScopeError
from memvault.deferred import DeferredAdds
from memvault_langgraph._scope import (
    MemorySource,
    Scope,
    acall,
    resolve_memory,
    resolve_scope,
    runtime_of_run,
    sync_memory,
)
from memvault_langgraph.store import MemvaultStore

__all__ = [
    "DEFAULT_HEADER",
    "MemoryWriter",
    "create_memory_hook",
    "last_user_text",
    "memory_block",
    "with_memories",
]

log = logging.getLogger("memvault_langgraph")

DEFAULT_HEADER = (
    "What you remember about the user from earlier conversations "
    "(use it when relevant; it may be incomplete):"
)


# -- messages -----------------------------------------------------------------------------------
def _text(message: BaseMessage) -> str:
    return str(message.text).strip()


def last_user_text(messages: Sequence[AnyMessage]) -> str | None:
    """The text of the latest human message (the query the memories should answer)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return _text(message) or None
    return None


def _as_turn(message: BaseMessage, roles: Sequence[str]) -> dict[str, str] | None:
    if isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    else:  # system prompts and tool results are not what the user said or was told
        return None
    text = _text(message)
    if role not in roles or not text:
        return None
    return {"role": role, "content": text}


def _message_key(message: BaseMessage) -> str:
    if message.id:
        return message.id
    raw = f"{message.type}\x00{_text(message)}".encode()
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


def memory_block(results: Sequence[dict[str, Any]], header: str = DEFAULT_HEADER) -> str:
    """Memories as the text appended to a system prompt (empty when there are none)."""
    if not results:
        return ""
    return header + "\n" + "\n".join(f"- {r['memory']}" for r in results)


def with_memories(system: SystemMessage | str | None, block: str) -> SystemMessage:
    base = str(system.text) if isinstance(system, SystemMessage) else (system or "")
    return SystemMessage(f"{base}\n\n{block}" if base else block)


# -- the hot path: search before the model call ---------------------------------------------
@dataclass
class Injector:
    memory: MemorySource | None
    defaults: Scope
    limit: int
    threshold: float | None
    header: str

    def _kwargs(self, config: RunnableConfig | None, runtime: Any) -> dict[str, Any]:
        scope = resolve_scope(config, self.defaults, runtime)
        return {"limit": self.limit, "threshold": self.threshold, **scope.kwargs()}

    def block(
        self, messages: Sequence[AnyMessage], config: RunnableConfig | None, runtime: Any = None
    ) -> str:
        query = last_user_text(messages)
        if not query:
            return ""
        runtime = runtime if runtime is not None else runtime_of_run()
        memory = sync_memory(resolve_memory(self.memory, runtime))
        found = memory.search(query, **self._kwargs(config, runtime))
        return memory_block(found["results"], self.header)

    async def ablock(
        self, messages: Sequence[AnyMessage], config: RunnableConfig | None, runtime: Any = None
    ) -> str:
        query = last_user_text(messages)
        if not query:
            return ""
        runtime = runtime if runtime is not None else runtime_of_run()
        found = await acall(
            resolve_memory(self.memory, runtime), "search", query, **self._kwargs(config, runtime)
        )
        return memory_block(found["results"], self.header)


def create_memory_hook(
    memory: MemorySource | None = None,
    *,
    limit: int = 5,
    threshold: float | None = None,
    system_prompt: str | None = None,
    header: str = DEFAULT_HEADER,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
) -> RunnableLambda:
    """A ``pre_model_hook`` for ``create_react_agent`` that puts memories in the prompt.

    Before each model call it searches the scope's memories with the latest user
    message and sends the model ``[SystemMessage(system_prompt + memories),
    *messages]`` as ``llm_input_messages`` (the graph state is not changed). Pass
    your system prompt here rather than as ``prompt=`` to get one system message.
    """
    injector = Injector(memory, Scope(user_id, agent_id, run_id), limit, threshold, header)

    def update(messages: list[AnyMessage], block: str) -> dict[str, Any]:
        if block or system_prompt:
            return {"llm_input_messages": [with_memories(system_prompt, block), *messages]}
        return {"llm_input_messages": messages}

    def hook(state: Any, config: RunnableConfig) -> dict[str, Any]:
        messages = state_messages(state)
        return update(messages, injector.block(messages, config))

    async def ahook(state: Any, config: RunnableConfig) -> dict[str, Any]:
        messages = state_messages(state)
        return update(messages, await injector.ablock(messages, config))

    return RunnableLambda(hook, afunc=ahook, name="memvault_memories")


def state_messages(state: Any) -> list[AnyMessage]:
    messages = state.get("messages") if isinstance(state, dict) else state.messages
    return list(messages or [])


# -- the cold path: record turns in the background --------------------------------------------
@dataclass
class _Pending:
    """A scope's turns waiting for their debounce: keys of rows in the durable queue."""

    queue: DeferredAdds
    scope: Scope
    keys: list[str] = field(default_factory=list)
    count: int = 0
    due: float = 0.0
    deadline: float = 0.0


class MemoryWriter:
    """Sends new conversation messages to ``Memory.add(infer=True)`` in the background.

    ``record`` commits the messages it has not seen before (per thread) to the
    store's durable queue (``memvault.deferred``: one journal row, about a
    millisecond) and returns; it never waits for an add. A daemon thread applies a
    scope's queued turns once no new message arrived for ``debounce_seconds`` (or
    ``max_delay_seconds`` after the first one), so a burst of turns becomes one
    ``add`` call (one LLM extraction), exactly once. Turns a stopped process left
    in a store's queue are applied when a writer first uses that store
    (:meth:`recover`). Failures are logged with their traceback (logger
    ``memvault_langgraph``) and counted in :attr:`errors`; they never reach the agent.

    Args:
        memory: memvault ``Memory`` or ``MemvaultStore`` (``None``: the run's store).
        debounce_seconds: quiet time before a scope's queue is flushed.
        max_delay_seconds: longest a message waits while turns keep arriving.
        infer: let memvault's LLM (when configured) extract and reconcile facts.
        roles: which speakers to record (``"user"``, ``"assistant"``).
        user_id, agent_id, run_id: default scope for ids the run does not set.
    """

    def __init__(
        self,
        memory: Memory | MemvaultStore | None = None,
        *,
        debounce_seconds: float = 2.0,
        max_delay_seconds: float = 30.0,
        infer: bool = True,
        roles: Sequence[str] = ("user", "assistant"),
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        max_threads_tracked: int = 4096,
    ) -> None:
        self.memory = memory
        self.debounce_seconds = debounce_seconds
        self.max_delay_seconds = max(max_delay_seconds, debounce_seconds)
        self.infer = infer
        self.roles = tuple(roles)
        self.defaults = Scope(user_id, agent_id, run_id)
        self.errors = 0
        self._max_threads = max_threads_tracked
        self._seen: OrderedDict[str, set[str]] = OrderedDict()
        self._pending: dict[tuple[int, Scope], _Pending] = {}
        self._queues: dict[int, DeferredAdds] = {}
        self._to_recover: list[DeferredAdds] = []
        self._busy = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    # public API ---------------------------------------------------------------------------------
    def record(
        self,
        messages: Sequence[BaseMessage],
        config: RunnableConfig | None = None,
        runtime: Any = None,
    ) -> int:
        """Queue the messages of this run's thread not recorded yet; returns how many.

        Never raises for a missing scope or memory: the run has already answered, so the
        problem is logged (with traceback) and counted in :attr:`errors` instead.
        """
        runtime = runtime if runtime is not None else runtime_of_run()
        try:
            scope = resolve_scope(config, self.defaults, runtime)
            memory = sync_memory(resolve_memory(self.memory, runtime))
        except (ScopeError, TypeError):
            # The reply must not fail because recording cannot happen: say so loudly instead.
            with self._cond:
                self.errors += 1
            log.exception("memvault: not recording this run's messages")
            return 0
        thread = str(
            ((config or {}).get("configurable") or {}).get("thread_id") or f"scope:{scope}"
        )
        fresh = []
        with self._cond:
            seen = self._seen.setdefault(thread, set())
            self._seen.move_to_end(thread)
            while len(self._seen) > self._max_threads:
                self._seen.popitem(last=False)
            for message in messages:
                key = _message_key(message)
                if key in seen:
                    continue
                seen.add(key)
                turn = _as_turn(message, self.roles)
                if turn is not None:
                    fresh.append(turn)
        if fresh:
            self.submit(fresh, scope, memory)
        return len(fresh)

    def submit(self, turns: Sequence[dict[str, str]], scope: Scope, memory: Memory) -> None:
        """Queue ``{"role", "content"}`` turns for ``scope`` (durably; never waits for an add)."""
        with self._cond:
            if self._stopping:
                raise RuntimeError("MemoryWriter is closed")
            queue = self._queue(memory)
        try:
            key = queue.enqueue(list(turns), **scope.kwargs(), infer=self.infer)
        except MemvaultError:
            with self._cond:
                self.errors += 1
            log.exception("memvault: could not record %d message(s) for %s", len(turns), scope)
            return
        now = time.monotonic()
        with self._cond:
            pending = self._pending.get((id(memory), scope))
            if pending is None:
                pending = self._pending[(id(memory), scope)] = _Pending(
                    queue, scope, deadline=now + self.max_delay_seconds
                )
            pending.keys.append(key)
            pending.count += len(turns)
            pending.due = min(now + self.debounce_seconds, pending.deadline)
            self._start()
            self._cond.notify_all()

    def recover(self, memory: Memory | MemvaultStore | None = None) -> int:
        """Apply the turns a stopped process left queued in a store; returns how many rows.

        Runs once by itself, in the background, the first time the writer uses a store;
        rows younger than ``max_delay_seconds`` are left to the process debouncing them.
        """
        source = memory if memory is not None else self.memory
        if source is None:
            raise TypeError("recover() needs a memory (this writer takes the run's store)")
        with self._cond:
            queue = self._queue(sync_memory(source), recover=False)
        return queue.recover(older_than=self.max_delay_seconds)

    def _queue(self, memory: Memory, *, recover: bool = True) -> DeferredAdds:
        """The durable queue of ``memory``'s store (call with ``self._cond`` held)."""
        queue = self._queues.get(id(memory))
        if queue is None:
            queue = self._queues[id(memory)] = DeferredAdds(memory)
            if recover:
                self._to_recover.append(queue)
                self._start()
        return queue

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, daemon=True, name="memvault-memory-writer"
            )
            self._thread.start()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued now and wait for it; False if ``timeout`` ran out."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            for pending in self._pending.values():
                pending.due = 0.0
            self._cond.notify_all()
            while self._pending or self._busy or self._to_recover:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush, then stop the background thread; False if it did not finish in time."""
        done = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            done = done and not thread.is_alive()
        return done

    @property
    def post_model_hook(self) -> RunnableLambda:
        """For ``create_react_agent(post_model_hook=...)``: records each finished turn."""

        def hook(state: Any, config: RunnableConfig) -> dict[str, Any]:
            messages = state_messages(state)
            if messages and isinstance(messages[-1], AIMessage) and not messages[-1].tool_calls:
                self.record(messages, config)
            return {}

        return RunnableLambda(hook, name="memvault_record")

    @property
    def node(self) -> RunnableLambda:
        """A ``StateGraph`` node recording the state's new messages (returns no update)."""

        def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
            self.record(state_messages(state), config)
            return {}

        return RunnableLambda(node, name="memvault_record")

    # background thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    due = [k for k, p in self._pending.items() if p.due <= now]
                    if due or self._to_recover or (self._stopping and not self._pending):
                        break
                    wake = min((p.due for p in self._pending.values()), default=None)
                    self._cond.wait(None if wake is None else max(0.0, wake - now))
                recover, self._to_recover = self._to_recover, []
                if not due and not recover:
                    return
                batch = [self._pending.pop(k) for k in due]
                self._busy += len(batch) + len(recover)
            for queue in recover:
                try:
                    n = queue.recover(older_than=self.max_delay_seconds)
                    if n:
                        log.info("memvault: recorded %d queued turn(s) left by a stopped run", n)
                except Exception:
                    with self._cond:
                        self.errors += 1
                    log.exception("memvault: could not recover queued turns")
                finally:
                    with self._cond:
                        self._busy -= 1
                        self._cond.notify_all()
            for pending in batch:
                try:
                    pending.queue.run(pending.keys)
                except Exception:
                    with self._cond:
                        self.errors += 1
                    log.exception(
                        "memvault: could not record %d message(s) for %s",
                        pending.count,
                        pending.scope,
                    )
                finally:
                    with self._cond:
                        self._busy -= 1
                        self._cond.notify_all()
