"""The cold path: bulk-ingest historical transcripts cheaply, safely and resumably.

Why it is built this way:
- Every row gets an idempotency key (content hash + scope) and a journal row in
  the store. A row's writes and its journal mark ``done`` commit in ONE
  transaction, so re-running after a crash, Ctrl-C or ``kill -9`` skips exactly
  the rows that were applied — none twice, none lost.
- Live mode runs rows concurrently on the native async LLM client, bounded by a
  semaphore; the openai client retries 429/5xx/timeouts honouring ``Retry-After``,
  and rows that still fail are retried with exponential backoff + jitter, then
  recorded as failed — one bad row never stops the run.
- Batch mode uses the OpenAI Batch API (half price): see ``memvault.batch_api``.
- Without an LLM, rows are stored raw with batched embeddings at full local speed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memvault.costs import Estimate, price, token_counter
from memvault.effects import run_async, run_sync
from memvault.errors import LLMError, MemvaultError, ValidationError
from memvault.inputs import clean_metadata, parse_messages, parse_time
from memvault.llm.coverage import statements
from memvault.llm.prompts import build_extraction_input
from memvault.scope import resolve_scope, scoped_key
from memvault.write.add import journal_key
from memvault.write.second_pass import second_pass_prompt

if TYPE_CHECKING:
    from memvault.engine import Engine

MODES = ("live", "batch")


@dataclass(slots=True)
class Prepared:
    """A validated row: its key and the ``add`` arguments (or why it is unusable)."""

    line: Any
    key: str | None
    kwargs: dict[str, Any]
    error: str | None = None


@dataclass
class IngestReport:
    """What an ingest run did (also what ``--dry-run`` estimates)."""

    mode: str = "live"
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    llm_calls: int = 0
    #: Of ``llm_calls``, those whose tokens are estimated (a streamed answer cut by
    #: ``stop_repeats`` or with no usage report; see ``memvault.llm.client.Usage``).
    estimated_llm_calls: int = 0
    seconds: float = 0.0
    cost_usd: float | None = None
    #: Dry run only: the cost if every row also took the second pass (asked again about
    #: every stated sentence) — the bound to budget for with a small model.
    cost_usd_max: float | None = None
    dry_run: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    batch_ids: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rows_per_second"] = round(self.rows_per_second, 2)
        return out

    def add_usage(self, usage: dict[str, int] | None) -> None:
        if usage:
            self.prompt_tokens += usage.get("prompt_tokens", 0)
            self.completion_tokens += usage.get("completion_tokens", 0)
            self.cached_tokens += usage.get("cached_tokens", 0)
            self.llm_calls += usage.get("calls", 0)
            self.estimated_llm_calls += usage.get("estimated_calls", 0)


def prepare(rows: Iterable[dict[str, Any]], default_user: str | None = None) -> list[Prepared]:
    """Validate rows up front; bad rows become errors, never exceptions."""
    out = []
    for i, row in enumerate(rows, 1):
        line = row.get("_line", i) if isinstance(row, dict) else i
        if not isinstance(row, dict):
            out.append(Prepared(line, None, {}, f"row {i}: expected a dict"))
            continue
        if "_error" in row:
            out.append(Prepared(line, None, {}, str(row["_error"])))
            continue
        try:
            content = row.get("messages", row.get("text"))
            if content is None:
                raise ValidationError("a row needs 'messages' or 'text'")
            user = row.get(
                "user_id", default_user if not (row.get("agent_id") or row.get("run_id")) else None
            )
            scope, _ = resolve_scope(user, row.get("agent_id"), row.get("run_id"))
            msgs = [m for m in parse_messages(content) if m.role != "system"]
            if not msgs:
                raise ValidationError("the row holds only system messages")
            meta = clean_metadata(row.get("metadata"))
            ts = parse_time(row.get("timestamp"))
        except MemvaultError as e:
            out.append(Prepared(line, None, {}, f"line {line}: {e}"))
            continue
        kwargs = {
            "messages": content,
            **{k: v for k, v in scope.as_dict().items() if v},
            "metadata": meta or None,
            "timestamp": ts,
        }
        out.append(Prepared(line, scoped_key(scope, journal_key(scope, msgs, ts or "")), kwargs))
    return out


def _retry_after(e: BaseException) -> float | None:
    response = getattr(e, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


def _retryable(e: LLMError) -> bool:
    import openai

    cause = e.__cause__
    if isinstance(cause, openai.RateLimitError):
        return getattr(cause, "code", None) != "insufficient_quota"
    return isinstance(
        cause, openai.APITimeoutError | openai.APIConnectionError | openai.InternalServerError
    ) or (isinstance(cause, openai.APIStatusError) and cause.status_code >= 500)


class Ingestor:
    """Runs one ingest: live (concurrent calls), batch (Batch API) or raw (no LLM)."""

    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int = 8,
        mode: str = "live",
        row_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 60.0,
        progress: bool = False,
        prices: dict[str, tuple[float, float, float]] | None = None,
        poll_interval: float = 30.0,
        raw_chunk: int = 64,
    ) -> None:
        if mode not in MODES:
            raise ValidationError(f"unknown ingest mode {mode!r}; use one of {', '.join(MODES)}")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValidationError("concurrency must be a positive integer")
        if mode == "batch" and engine.llm is None:
            raise ValidationError("batch mode needs an LLM: configure llm in the config")
        self.engine = engine
        self.concurrency = concurrency
        self.mode = mode
        self.row_retries = row_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.progress = progress
        self.prices = prices
        self.poll_interval = poll_interval
        self.raw_chunk = raw_chunk
        self.report = IngestReport(mode=mode if engine.llm else "raw")

    # -- entry points -----------------------------------------------------------------------------
    def estimate(self, rows: Iterable[dict[str, Any]]) -> IngestReport:
        """Dry run: rows, estimated tokens and cost; no LLM call, no write."""
        prepared = prepare(rows)
        r = self.report
        r.dry_run, r.total = True, len(prepared)
        count = token_counter()
        llm = self.engine.llm
        if llm is None:
            r.done = sum(1 for p in prepared if p.error is None)
            r.cost_usd = 0.0
            return r
        cfg = self.engine.config
        system_tokens = count(cfg.extraction_prompt)
        est, again = Estimate(), Estimate()
        for p in prepared:
            if p.error:
                r.errors.append({"line": p.line, "error": p.error})
                continue
            msgs = parse_messages(p.kwargs["messages"])
            user = build_extraction_input(
                messages=[(m.speaker, m.content) for m in msgs],
                existing=[],
                observed=p.kwargs.get("timestamp") or "",
                custom=cfg.custom_instructions,
            )
            # Existing memories shown to the model: ~10 of ~25 tokens, once the store has some.
            est.prompt_tokens += system_tokens + count(user) + 250 + 12
            # The answer restates the facts: about a third of the input text, plus JSON.
            est.completion_tokens += 20 + sum(count(m.content) for m in msgs) // 3
            est.rows += 1
            # At worst the second pass asks again about every stated sentence, alone.
            said = statements([(m.role, m.speaker, m.content) for m in msgs])
            if said:
                again.prompt_tokens += sum(
                    count(part)
                    for part in second_pass_prompt(
                        said,
                        p.kwargs.get("timestamp") or "",
                        cfg.custom_instructions,
                        cfg.custom_fact_extraction_prompt,
                    )
                )
                again.completion_tokens += 20 + sum(count(t) for _, t in said) // 3
        r.done = est.rows
        r.failed = len(r.errors)
        r.prompt_tokens, r.completion_tokens = est.prompt_tokens, est.completion_tokens
        tier = "batch" if self.mode == "batch" else llm.settings.service_tier
        r.cost_usd = price(
            llm.settings.model,
            est.prompt_tokens,
            est.completion_tokens,
            tier=tier,
            prices=self.prices,
        )
        r.cost_usd_max = price(
            llm.settings.model,
            est.prompt_tokens + again.prompt_tokens,
            est.completion_tokens + again.completion_tokens,
            tier=tier,
            prices=self.prices,
        )
        return r

    async def arun(self, rows: Iterable[dict[str, Any]]) -> IngestReport:
        prepared = prepare(rows)
        r = self.report
        r.total = len(prepared)
        t0 = time.perf_counter()
        todo = self._skip_done(prepared)
        with _Progress(self.progress, r) as bar:
            if self.engine.llm is None:
                await asyncio.to_thread(self._run_raw, todo, bar)
            elif self.mode == "batch":
                from memvault.batch_api import run_batch

                await run_batch(self, todo, bar)
            else:
                await self._run_live(todo, bar)
        r.seconds = time.perf_counter() - t0
        if self.engine.llm is None:
            r.cost_usd = 0.0
        else:
            tier = "batch" if self.mode == "batch" else self.engine.llm.settings.service_tier
            r.cost_usd = price(
                self.engine.llm.settings.model,
                r.prompt_tokens,
                r.completion_tokens,
                r.cached_tokens,
                tier=tier,
                prices=self.prices,
            )
        return r

    def run(self, rows: Iterable[dict[str, Any]]) -> IngestReport:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(rows))
        raise ValidationError(
            "Memory.ingest() was called inside a running event loop; use AsyncMemory.ingest() there"
        )

    # -- shared -------------------------------------------------------------------------------
    def _skip_done(self, prepared: list[Prepared]) -> list[Prepared]:
        r = self.report
        states = self.engine.store.journal_states([p.key for p in prepared if p.key])
        todo = []
        seen: set[str] = set()
        for p in prepared:
            if p.error is not None:
                self._fail(p, p.error)
            elif p.key in seen or states.get(p.key or "") == "done":
                r.skipped += 1  # applied by an earlier run (or a duplicate row in this one)
            else:
                seen.add(p.key or "")
                todo.append(p)
        return todo

    def _fail(self, p: Prepared, error: str) -> None:
        self.report.failed += 1
        self.report.errors.append({"line": p.line, "key": p.key, "error": error})

    # -- live -----------------------------------------------------------------------------------
    async def _run_live(self, todo: list[Prepared], bar: _Progress) -> None:
        sem = asyncio.Semaphore(self.concurrency)
        pool = ThreadPoolExecutor(
            max_workers=min(4, self.concurrency), thread_name_prefix="memvault-ingest"
        )
        try:
            await asyncio.gather(*(self._one(p, sem, pool, bar) for p in todo))
        finally:
            pool.shutdown(wait=True)

    async def _one(
        self, p: Prepared, sem: asyncio.Semaphore, pool: ThreadPoolExecutor, bar: _Progress
    ) -> None:
        r = self.report
        async with sem:
            for attempt in range(self.row_retries + 1):
                try:
                    res = await run_async(self.engine.add(**p.kwargs, idempotency_key=p.key), pool)
                except LLMError as e:
                    if _retryable(e) and attempt < self.row_retries:
                        r.retries += 1
                        bar.update()
                        delay = _retry_after(e.__cause__ or e) or min(
                            self.backoff_max, self.backoff_base * 2**attempt
                        )
                        await asyncio.sleep(delay * (0.5 + random.random()))  # jitter
                        continue
                    self._fail(p, str(e))
                except MemvaultError as e:
                    self._fail(p, str(e))
                    await run_async(_record_failure(self.engine, p, str(e)), pool)
                else:
                    r.done += 1
                    r.add_usage(res.get("usage"))
                break
            bar.update(advance=1)

    # -- raw (no LLM) -------------------------------------------------------------------------
    def _run_raw(self, todo: list[Prepared], bar: _Progress) -> None:
        """Batch the embedding of many rows, then commit each row with its journal mark."""
        chunk: list[tuple[Prepared, list[str]]] = []
        size = 0
        for p in todo:
            msgs = [m for m in parse_messages(p.kwargs["messages"]) if m.role != "system"]
            chunk.append((p, [m.content for m in msgs]))
            size += len(msgs)
            if size >= self.raw_chunk:
                self._raw_chunk(chunk, bar)
                chunk, size = [], 0
        if chunk:
            self._raw_chunk(chunk, bar)

    def _raw_chunk(self, chunk: list[tuple[Prepared, list[str]]], bar: _Progress) -> None:
        r = self.report
        vecs = self.engine.embedder.embed([t for _, texts in chunk for t in texts])
        start = 0
        for p, texts in chunk:
            try:
                run_sync(
                    self.engine.add(
                        **p.kwargs,
                        infer=False,
                        embeddings=list(vecs[start : start + len(texts)]),
                        idempotency_key=p.key,
                    )
                )
                r.done += 1
            except MemvaultError as e:
                self._fail(p, str(e))
            start += len(texts)
            bar.update(advance=1)


def _record_failure(engine: Engine, p: Prepared, error: str) -> Any:
    from memvault.effects import Blocking

    yield Blocking(
        engine.store.write_journal,
        (p.key, "failed"),
        {"error": error, "payload": p.kwargs, "kind": "add"},
    )


class _Progress:
    """A rich progress bar with rows/s, tokens, retries and errors (no-op when disabled)."""

    def __init__(self, enabled: bool, report: IngestReport) -> None:
        self.enabled = enabled
        self.report = report
        self._progress: Any = None
        self._task: Any = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]ingest[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} rows/s"),
                TextColumn("{task.fields[tokens]}"),
                TextColumn("retries {task.fields[retries]}"),
                TextColumn("errors {task.fields[errors]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            self._progress.start()
            r = self.report
            self._task = self._progress.add_task(
                "ingest",
                total=r.total,
                completed=r.skipped + r.failed,
                rate="0.0",
                tokens="0 tok",
                retries=0,
                errors=r.failed,
            )
        return self

    def update(self, advance: int = 0) -> None:
        if self._progress is None:
            return
        r = self.report
        elapsed = max(time.perf_counter() - self._t0, 1e-6)
        self._progress.update(
            self._task,
            advance=advance,
            rate=f"{r.done / elapsed:.1f}",
            tokens=f"{r.prompt_tokens + r.completion_tokens:,} tok",
            retries=r.retries,
            errors=r.failed,
        )

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self.update()
            self._progress.stop()


def summary_table(report: IngestReport) -> Any:
    """A rich table summarising a run (printed by the CLI)."""
    from rich.table import Table

    t = Table(title="memvault ingest" + (" (dry run)" if report.dry_run else ""))
    t.add_column("metric")
    t.add_column("value", justify="right")
    rows = [
        ("mode", report.mode),
        ("rows", report.total),
        ("estimated" if report.dry_run else "applied", report.done),
        ("skipped (already done)", report.skipped),
        ("failed", report.failed),
        ("retries", report.retries),
        ("LLM calls", report.llm_calls),
        ("prompt tokens", f"{report.prompt_tokens:,}"),
        ("completion tokens", f"{report.completion_tokens:,}"),
        ("cached tokens", f"{report.cached_tokens:,}"),
        ("cost (USD)", "unknown model" if report.cost_usd is None else f"{report.cost_usd:.4f}"),
    ]
    if report.dry_run and report.cost_usd_max is not None:
        rows.append(("cost if every row takes a second pass (USD)", f"{report.cost_usd_max:.4f}"))
    if report.estimated_llm_calls:  # shown only when some token counts are estimates
        rows.insert(7, ("of them with estimated tokens", report.estimated_llm_calls))
    if not report.dry_run:
        rows += [("seconds", f"{report.seconds:.1f}"), ("rows/s", f"{report.rows_per_second:.1f}")]
    for k, v in rows:
        t.add_row(k, str(v))
    return t
