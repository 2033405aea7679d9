"""``add(infer=True)`` as one operation: prompt, answer, second pass, guard, apply."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from memvault.effects import Blocking, Embed, Op
from memvault.errors import LLMError
from memvault.inputs import Message
from memvault.llm.client import Completion
from memvault.llm.decode import decode_summary
from memvault.llm.prompts import PROCEDURAL_PROMPT, build_extraction_input, build_procedural_input
from memvault.models import utcnow
from memvault.scope import Scope, scoped_key
from memvault.write.apply import apply_decisions
from memvault.write.decisions import Decision
from memvault.write.guarding import guarded
from memvault.write.second_pass import merge_second_pass, read_answer, second_pass_prompt
from memvault.write.shown import all_if_few, prompt_memories, similar

if TYPE_CHECKING:
    from memvault.engine import Engine


def journal_key(scope: Scope, messages: list[Message], extra: str = "") -> str:
    """Idempotency key: content hash + scope (the same input in the same scope = same key)."""
    h = hashlib.sha256()
    h.update(json.dumps(scope.as_dict(), sort_keys=True).encode())
    for m in messages:
        h.update(f"\x1e{m.role}\x1f{m.name or ''}\x1f{m.timestamp or ''}\x1f{m.content}".encode())
    h.update(extra.encode())
    return h.hexdigest()


def infer_add(
    engine: Engine,
    *,
    scope: Scope,
    messages: list[Message],
    meta: dict[str, Any],
    observed: str | None,
    expires: str | None,
    categories: list[str],
    importance: float | None,
    changed_by: str | None,
    prompt: str | None,
    memory_type: str | None,
    key: str | None = None,
) -> Op[dict[str, Any]]:
    """The whole LLM add as one operation (see module docstring)."""
    llm = engine.llm
    assert llm is not None
    key = key or scoped_key(scope, journal_key(scope, messages, memory_type or ""))
    when = max((m.timestamp for m in messages if m.timestamp), default=None) or observed
    observed_at = when or utcnow()
    convo = [(m.speaker, m.content) for m in messages]
    payload = {
        "scope": scope.as_dict(),
        "messages": [
            {"role": m.role, "name": m.name, "content": m.content, "timestamp": m.timestamp}
            for m in messages
        ],
        "metadata": meta,
        "timestamp": observed,
        "memory_type": memory_type,
    }

    if memory_type == "procedural_memory":
        system, user, shown = PROCEDURAL_PROMPT, build_procedural_input(convo, observed_at), {}
    else:
        query = "\n".join(text for _, text in convo)
        shown = yield Blocking(all_if_few, (engine, scope))
        if shown is None:  # more than the prompt shows: rank them against the new messages
            yield from engine.index_queued(scope)
            qvec = (yield Embed(engine.embedder, [query[:4000]], kind="query"))[0]
            shown = yield Blocking(similar, (engine, scope, query, qvec))
        custom = prompt or engine.config.custom_instructions
        system = engine.config.extraction_prompt
        user = build_extraction_input(
            messages=convo,
            existing=prompt_memories(shown),
            observed=observed_at,
            custom=custom,
        )
    try:
        completion: Completion = yield from llm.call(system, user)
        if memory_type == "procedural_memory":
            decisions = [Decision("ADD", decode_summary(completion.text), None, None)]
        else:
            decisions, missed = yield from read_answer(engine, messages, completion.text, shown)
            if missed:  # a small model dropped them: ask once more, about them only
                again = yield from llm.call(
                    *second_pass_prompt(
                        missed, observed_at, custom, engine.config.custom_fact_extraction_prompt
                    )
                )
                decisions = yield from merge_second_pass(
                    engine, again.text, decisions, shown, missed, messages
                )
                completion.usage += again.usage
    except LLMError as e:
        # Keep the raw input so nothing is lost; retry_pending() replays it.
        yield Blocking(
            engine.store.write_journal,
            (key, "failed"),
            {"error": str(e), "payload": payload, "kind": "add"},
        )
        raise
    decisions = yield from guarded(engine, decisions, shown, [text for _, text in convo])
    texts = [d.text for d in decisions if d.event in ("ADD", "UPDATE") and d.text]
    # Queued like raw adds by default: the next search (or add) in the scope embeds them.
    vecs, defer_dims = yield from engine.embed_or_defer(texts)
    return (
        yield Blocking(
            apply_decisions,
            (engine, scope, decisions, vecs, completion),
            {
                "meta": meta if memory_type is None else {**meta, "memory_type": memory_type},
                "observed": observed_at,
                "expires": expires,
                "categories": categories,
                "importance": importance,
                "changed_by": changed_by or "llm",
                "journal_key": key,
                "payload": payload,
                "defer_dims": defer_dims,
            },
        )
    )
