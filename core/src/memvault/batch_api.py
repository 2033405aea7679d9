"""Batch-API ingest: the cheapest tier for a backlog nobody waits on.

Steps, each recorded in the store's journal so a process restart resumes where
it stopped: (1) build one request per pending row — the similar memories shown
to the model are chosen now and their ids kept with the row; (2) upload the
JSONL file and create the batch, marking rows ``submitted`` with the batch id;
(3) poll until the batch ends; (4) download the output and apply each line in a
transaction that also marks its row ``done``. Re-running the same ingest finds
``submitted`` rows and goes back to polling their batch instead of paying twice.

Rows of one scope in one batch see only memories stored before the batch (they
cannot see each other's results); reconciliation across them happens in later
adds. That is the price of the 50% discount.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from memvault.errors import LLMError, MemvaultError
from memvault.inference import (
    apply_decisions,
    guard_decisions,
    guard_texts,
    parse_decisions,
    speaker,
)
from memvault.inputs import parse_messages
from memvault.llm.client import completion_from_body
from memvault.llm.prompts import EXTRACTION_PROMPT, Existing, build_extraction_input
from memvault.scope import resolve_scope
from memvault.store.sqlite import Visibility

if TYPE_CHECKING:
    from memvault.ingest import Ingestor, Prepared, _Progress

TERMINAL = ("completed", "failed", "expired", "cancelled")


def _request_for(ing: Ingestor, p: Prepared) -> tuple[dict[str, Any], dict[str, str]]:
    """The chat request for a row and the short-id -> memory-id map it showed."""
    engine = ing.engine
    assert engine.llm is not None
    scope, _ = resolve_scope(
        p.kwargs.get("user_id"), p.kwargs.get("agent_id"), p.kwargs.get("run_id")
    )
    msgs = [m for m in parse_messages(p.kwargs["messages"]) if m.role != "system"]
    convo = [(speaker(m), m.content) for m in msgs]
    query = "\n".join(t for _, t in convo)
    qvec = engine.embedder.embed([query[:4000]], kind="query")[0]
    hits = engine._search(query, qvec, "default", scope, None, Visibility(), 10, None, False)[
        "results"
    ]
    shown = {str(i): h["id"] for i, h in enumerate(hits)}
    observed = (
        max((m.timestamp for m in msgs if m.timestamp), default=None)
        or p.kwargs.get("timestamp")
        or ""
    )
    user = build_extraction_input(
        messages=convo,
        existing=[Existing(str(i), h["memory"]) for i, h in enumerate(hits)],
        observed=observed or "unknown",
        custom=engine.config.custom_instructions,
    )
    system = engine.config.custom_fact_extraction_prompt or EXTRACTION_PROMPT
    return engine.llm.request(system, user), shown


def _submit(ing: Ingestor, todo: list[Prepared]) -> str:
    engine = ing.engine
    assert engine.llm is not None
    client = engine.llm.sync_client()
    lines = []
    payloads = {}
    for p in todo:
        body, shown = _request_for(ing, p)
        lines.append(
            json.dumps(
                {"custom_id": p.key, "method": "POST", "url": engine.llm.endpoint, "body": body}
            )
        )
        payloads[p.key] = {"add": p.kwargs, "shown": shown, "line": p.line}
    data = ("\n".join(lines) + "\n").encode()
    try:
        f = client.files.create(file=("memvault-batch.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id, endpoint=engine.llm.endpoint, completion_window="24h"
        )
    except Exception as e:  # surfaced as one clear error; nothing was marked submitted
        raise LLMError(f"could not submit the batch: {type(e).__name__}: {e}") from e
    with engine.store.write() as tx:
        for key, payload in payloads.items():
            tx.journal(key, "submitted", kind="add", payload=payload, batch_id=batch.id)
    return str(batch.id)


def _apply_output(ing: Ingestor, batch: Any, bar: _Progress) -> None:
    engine = ing.engine
    assert engine.llm is not None
    client = engine.llm.sync_client()
    r = ing.report
    api = engine.llm.settings.api
    seen: set[str] = set()
    for file_id in (batch.output_file_id, getattr(batch, "error_file_id", None)):
        if not file_id:
            continue
        content = client.files.content(file_id)
        text = content.text if hasattr(content, "text") else content.read().decode()
        for raw in text.splitlines():
            if not raw.strip():
                continue
            line = json.loads(raw)
            key = line.get("custom_id")
            row = engine.store.journal_get(key) if key else None
            if row is None or row["state"] == "done" or key in seen:
                continue
            seen.add(key)
            payload = row["payload"]
            response = line.get("response") or {}
            try:
                if line.get("error") or response.get("status_code") != 200:
                    raise LLMError(f"batch line failed: {line.get('error') or response}")
                completion = completion_from_body(api, response.get("body") or {})
                shown_recs = {
                    s: rec
                    for s, mid in payload["shown"].items()
                    if (rec := engine.store.get(mid)) is not None
                }
                decisions = parse_decisions(completion.text, shown_recs)
                add = payload["add"]
                scope, _ = resolve_scope(add.get("user_id"), add.get("agent_id"), add.get("run_id"))
                msgs = parse_messages(add["messages"])
                said = [m.content for m in msgs]
                if need := guard_texts(decisions, shown_recs, said):  # as for a live add
                    guard_vecs = dict(zip(need, engine.embedder.embed(need), strict=True))
                    decisions = guard_decisions(decisions, guard_vecs, shown_recs, said)
                texts = [d.text for d in decisions if d.event in ("ADD", "UPDATE") and d.text]
                vecs = engine.embedder.embed(texts) if texts else np.zeros((0, 0))
                observed = (
                    max((m.timestamp for m in msgs if m.timestamp), default=None)
                    or add.get("timestamp")
                    or row["created_at"]
                )
                res = apply_decisions(
                    engine,
                    scope,
                    decisions,
                    vecs,
                    completion,
                    meta=add.get("metadata") or {},
                    observed=observed,
                    expires=None,
                    categories=[],
                    importance=None,
                    changed_by="llm-batch",
                    journal_key=key,
                    payload=payload,
                )
                r.done += 1
                r.add_usage(res.get("usage"))
            except MemvaultError as e:
                engine.store.write_journal(key, "failed", error=str(e), kind="add", payload=payload)
                ing._fail(_as_prepared(payload, key), str(e))
            bar.update(advance=1)
    # Rows of this batch with no output line at all are failures, kept for a re-run.
    for row in engine.store.journal_rows("add", ("submitted",)):
        if row["batch_id"] == batch.id and row["key"] not in seen:
            engine.store.write_journal(
                row["key"],
                "failed",
                error="no output for this row",
                kind="add",
                payload=row["payload"],
            )
            ing._fail(_as_prepared(row["payload"], row["key"]), "no output for this row")


def _as_prepared(payload: dict[str, Any], key: str) -> Prepared:
    from memvault.ingest import Prepared

    return Prepared(payload.get("line"), key, payload.get("add", {}))


async def run_batch(ing: Ingestor, todo: list[Prepared], bar: _Progress) -> None:
    """Submit (or resume) batches and apply their results."""
    engine = ing.engine
    assert engine.llm is not None
    submitted = engine.store.journal_rows("add", ("submitted",))
    todo_keys = {p.key for p in todo}
    batch_ids = sorted(
        {row["batch_id"] for row in submitted if row["batch_id"] and row["key"] in todo_keys}
    )
    resumed = {row["key"] for row in submitted if row["batch_id"] in batch_ids}
    fresh = [p for p in todo if p.key not in resumed]
    if fresh:
        batch_ids.append(await asyncio.to_thread(_submit, ing, fresh))
    ing.report.batch_ids = batch_ids
    client = engine.llm.sync_client()
    for batch_id in batch_ids:
        while True:
            batch = await asyncio.to_thread(client.batches.retrieve, batch_id)
            if batch.status in TERMINAL:
                break
            bar.update()
            await asyncio.sleep(ing.poll_interval)
        if batch.status != "completed":
            for row in engine.store.journal_rows("add", ("submitted",)):
                if row["batch_id"] == batch_id:
                    err = f"batch {batch_id} ended as {batch.status}"
                    engine.store.write_journal(
                        row["key"], "failed", error=err, kind="add", payload=row["payload"]
                    )
                    ing._fail(_as_prepared(row["payload"], row["key"]), err)
            continue
        await asyncio.to_thread(_apply_output, ing, batch, bar)
