"""Batch-API ingest: the cheapest tier for a backlog nobody waits on.

Steps, each recorded in the store's journal so a process restart resumes where
it stopped: (1) build one request per pending row — the similar memories shown
to the model are chosen now and their ids kept with the row; (2) upload the
JSONL file and create the batch, marking rows ``submitted`` with the batch id;
(3) poll until the batch ends; (4) download the output and apply each line in a
transaction that also marks its row ``done``. Re-running the same ingest finds
``submitted`` rows and goes back to polling their batch instead of paying twice.

The second pass, as in a live add (``memvault.write.second_pass``): when a row's answer
left stated sentences uncovered (a small model dropped a fact), the row is not
applied yet. Its first answer and those sentences are journaled with the row
(still ``submitted``, ``followup`` empty), and once every first-round batch is
collected, ONE follow-up batch asks about those sentences only. Its answers are
merged with the first ones exactly as a live add merges them, guarded, and
applied — first and second facts in one transaction with the ``done`` mark. A
follow-up batch rather than live calls: the rows already waited hours, and the
second request is as cheap at batch price as the first. A crash between rounds
loses nothing (the first answer is in the journal) and pays for no first
request twice; the next run submits (or resumes polling) the follow-up batch.

Rows of one scope in one batch see only memories stored before the batch (they
cannot see each other's results); reconciliation across them happens in later
adds. That is the price of the 50% discount.

One window is left open, as for the first round: a crash after the provider
created a batch but before the journal recorded its id makes the next run
submit those rows again (paid twice, applied once).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from memvault.effects import run_sync
from memvault.errors import LLMError, MemvaultError
from memvault.inputs import Message, parse_messages
from memvault.llm.client import Completion, completion_from_body
from memvault.llm.prompts import build_extraction_input
from memvault.models import MemoryRecord
from memvault.scope import resolve_scope
from memvault.write.apply import apply_decisions
from memvault.write.decisions import Decision, first_decisions
from memvault.write.guarding import guarded
from memvault.write.second_pass import merge_second_pass, read_answer, second_pass_prompt
from memvault.write.shown import prompt_memories, similar

if TYPE_CHECKING:
    from memvault.engine import Engine
    from memvault.ingest import Ingestor, Prepared, _Progress

TERMINAL = ("completed", "failed", "expired", "cancelled")


def _messages(add: dict[str, Any]) -> list[Message]:
    """The row's messages as the model saw them (system messages are never sent)."""
    return [m for m in parse_messages(add["messages"]) if m.role != "system"]


def _observed(msgs: list[Message], add: dict[str, Any]) -> str:
    """The observation date written into both rounds' prompts (the same for both)."""
    return (
        max((m.timestamp for m in msgs if m.timestamp), default=None)
        or add.get("timestamp")
        or "unknown"
    )


def _awaiting(payload: dict[str, Any]) -> bool:
    """Whether a row's first answer is collected and its follow-up not yet submitted."""
    return "first" in payload and not payload.get("followup")


def _request_for(ing: Ingestor, p: Prepared) -> tuple[dict[str, Any], dict[str, str]]:
    """The chat request for a row and the short-id -> memory-id map it showed."""
    engine = ing.engine
    assert engine.llm is not None
    scope, _ = resolve_scope(
        p.kwargs.get("user_id"), p.kwargs.get("agent_id"), p.kwargs.get("run_id")
    )
    msgs = _messages(p.kwargs)
    convo = [(m.speaker, m.content) for m in msgs]
    query = "\n".join(t for _, t in convo)
    qvec = engine.embedder.embed([query[:4000]], kind="query")[0]
    records = similar(engine, scope, query, qvec)
    shown = {k: r.id for k, r in records.items()}
    user = build_extraction_input(
        messages=convo,
        existing=prompt_memories(records),
        observed=_observed(msgs, p.kwargs),
        custom=engine.config.custom_instructions,
    )
    return engine.llm.request(engine.config.extraction_prompt, user), shown


def _create_batch(engine: Engine, lines: list[str]) -> str:
    """Upload the JSONL and create the batch; one clear ``LLMError`` if the provider refuses."""
    assert engine.llm is not None
    client = engine.llm.sync_client()
    data = ("\n".join(lines) + "\n").encode()
    try:
        f = client.files.create(file=("memvault-batch.jsonl", data), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id, endpoint=engine.llm.endpoint, completion_window="24h"
        )
    except Exception as e:  # surfaced as one clear error; nothing was marked submitted
        raise LLMError(f"could not submit the batch: {type(e).__name__}: {e}") from e
    return str(batch.id)


def _line(engine: Engine, key: str, body: dict[str, Any]) -> str:
    assert engine.llm is not None
    return json.dumps(
        {"custom_id": key, "method": "POST", "url": engine.llm.endpoint, "body": body}
    )


def _submit(ing: Ingestor, todo: list[Prepared]) -> str:
    """Round one: every pending row's extraction request, in one batch."""
    engine = ing.engine
    lines = []
    payloads = {}
    for p in todo:
        assert p.key is not None
        body, shown = _request_for(ing, p)
        lines.append(_line(engine, p.key, body))
        payloads[p.key] = {"add": p.kwargs, "shown": shown, "line": p.line}
    batch_id = _create_batch(engine, lines)
    with engine.store.write() as tx:
        for key, payload in payloads.items():
            tx.journal(key, "submitted", kind="add", payload=payload, batch_id=batch_id)
    return batch_id


def _submit_followup(ing: Ingestor, rows: list[dict[str, Any]]) -> str:
    """Round two: for each row awaiting it, the second-pass question (uncovered sentences only).

    The rows move to the new batch in one transaction (``followup`` and ``batch_id`` set), so
    a later run polls this batch instead of asking again.
    """
    engine = ing.engine
    assert engine.llm is not None
    lines = []
    for row in rows:
        payload = row["payload"]
        add = payload["add"]
        missed = [(str(who), str(s)) for who, s in payload["missed"]]
        prompt = second_pass_prompt(
            missed,
            _observed(_messages(add), add),
            engine.config.custom_instructions,
            engine.config.custom_fact_extraction_prompt,
        )
        lines.append(_line(engine, row["key"], engine.llm.request(*prompt)))
    batch_id = _create_batch(engine, lines)
    with engine.store.write() as tx:
        for row in rows:
            tx.journal(
                row["key"],
                "submitted",
                kind="add",
                payload={**row["payload"], "followup": batch_id},
                batch_id=batch_id,
            )
    return batch_id


def _shown_records(engine: Engine, payload: dict[str, Any]) -> dict[str, MemoryRecord]:
    return {
        s: rec for s, mid in payload["shown"].items() if (rec := engine.store.get(mid)) is not None
    }


def _apply_row(
    ing: Ingestor,
    key: str,
    row: dict[str, Any],
    decisions: list[Decision],
    completion: Completion,
    shown: dict[str, MemoryRecord],
) -> None:
    """Guard the row's decisions as a live add does, embed the new facts, apply, mark done."""
    engine = ing.engine
    payload = row["payload"]
    add = payload["add"]
    msgs = _messages(add)
    scope, _ = resolve_scope(add.get("user_id"), add.get("agent_id"), add.get("run_id"))
    decisions = run_sync(guarded(engine, decisions, shown, [m.content for m in msgs]))
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
        # The first raw answer is only needed between rounds; the done row keeps the rest.
        payload={k: v for k, v in payload.items() if k != "first"},
    )
    ing.report.done += 1
    ing.report.add_usage(res.get("usage"))


def _take_line(ing: Ingestor, key: str, row: dict[str, Any], body: dict[str, Any]) -> bool:
    """Use one output line for its row; False when the row now awaits its follow-up.

    A first-round answer that covers every stated sentence is applied at once. One that
    does not is journaled with the sentences it left out (no facts applied yet, so a crash
    here loses and duplicates nothing). A follow-up answer is merged with the journaled
    first answer — the same functions as a live add — and the row applied.
    """
    engine = ing.engine
    assert engine.llm is not None
    api = engine.llm.settings.api
    payload = row["payload"]
    msgs = _messages(payload["add"])
    shown = _shown_records(engine, payload)
    if "first" in payload:  # the follow-up's answer
        completion = completion_from_body(api, payload["first"])
        again = completion_from_body(api, body)
        decisions = first_decisions(completion.text, shown, msgs)
        missed = [(who, text) for who, text in payload["missed"]]
        decisions = run_sync(merge_second_pass(engine, again.text, decisions, shown, missed, msgs))
        completion.usage += again.usage
        _apply_row(ing, key, row, decisions, completion, shown)
        return True
    completion = completion_from_body(api, body)
    decisions, missed = run_sync(read_answer(engine, msgs, completion.text, shown))
    if missed:
        engine.store.write_journal(
            key,
            "submitted",
            kind="add",
            payload={**payload, "first": body, "missed": missed, "followup": None},
        )
        return False
    _apply_row(ing, key, row, decisions, completion, shown)
    return True


def _apply_output(ing: Ingestor, batch: Any, bar: _Progress) -> None:
    engine = ing.engine
    assert engine.llm is not None
    client = engine.llm.sync_client()
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
            if (
                row is None
                or key in seen
                or row["state"] != "submitted"
                or row["batch_id"] != batch.id  # moved on to a follow-up batch, or resubmitted
                or _awaiting(row["payload"])  # taken in an earlier run; waits for round two
            ):
                continue
            seen.add(key)
            payload = row["payload"]
            response = line.get("response") or {}
            try:
                if line.get("error") or response.get("status_code") != 200:
                    raise LLMError(f"batch line failed: {line.get('error') or response}")
                if not _take_line(ing, key, row, response.get("body") or {}):
                    continue  # the row is finished by the follow-up batch
            except MemvaultError as e:
                engine.store.write_journal(key, "failed", error=str(e), kind="add", payload=payload)
                ing._fail(_as_prepared(payload, key), str(e))
            bar.update(advance=1)
    # Rows of this batch with no output line at all are failures, kept for a re-run.
    for row in engine.store.journal_rows("add", ("submitted",)):
        if row["batch_id"] == batch.id and row["key"] not in seen and not _awaiting(row["payload"]):
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


async def _collect(ing: Ingestor, batch_id: str, bar: _Progress) -> None:
    """Poll one batch until it ends, then apply its output (or fail its rows)."""
    engine = ing.engine
    assert engine.llm is not None
    client = engine.llm.sync_client()
    while True:
        batch = await asyncio.to_thread(client.batches.retrieve, batch_id)
        if batch.status in TERMINAL:
            break
        bar.update()
        await asyncio.sleep(ing.poll_interval)
    if batch.status == "completed":
        await asyncio.to_thread(_apply_output, ing, batch, bar)
        return
    err = f"batch {batch_id} ended as {batch.status}"
    for row in engine.store.journal_rows("add", ("submitted",)):
        if row["batch_id"] == batch_id and not _awaiting(row["payload"]):
            engine.store.write_journal(
                row["key"], "failed", error=err, kind="add", payload=row["payload"]
            )
            ing._fail(_as_prepared(row["payload"], row["key"]), err)


async def run_batch(ing: Ingestor, todo: list[Prepared], bar: _Progress) -> None:
    """Submit (or resume) the first-round batches, collect them, then the follow-up batch."""
    engine = ing.engine
    keys = {p.key for p in todo}

    def mine() -> list[dict[str, Any]]:
        return [r for r in engine.store.journal_rows("add", ("submitted",)) if r["key"] in keys]

    submitted = mine()
    batch_ids = sorted(
        {r["batch_id"] for r in submitted if r["batch_id"] and not _awaiting(r["payload"])}
    )
    in_flight = {r["key"] for r in submitted}
    fresh = [p for p in todo if p.key not in in_flight]
    if fresh:
        batch_ids.append(await asyncio.to_thread(_submit, ing, fresh))
    ing.report.batch_ids = batch_ids
    for batch_id in list(batch_ids):
        await _collect(ing, batch_id, bar)
    waiting = [r for r in mine() if _awaiting(r["payload"])]
    if waiting:
        followup = await asyncio.to_thread(_submit_followup, ing, waiting)
        batch_ids.append(followup)
        await _collect(ing, followup, bar)
