"""Ingest jobs: a bulk ingest started by one request and watched by the next ones.

Why jobs live in the server process only: an ingest is already exactly-once through
the store's journal (each row's key is bound to its scope), so a job lost with its
process is resumed by submitting the same rows again; only the progress report is
in memory. A job is visible to the key that started it only (404 for any other: a
report names scope ids and errors of rows another key may not see).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from memvault.errors import NotFoundError
from memvault.ingest import Ingestor
from memvault.service.tenancy import Principal

#: Finished jobs kept for status queries (oldest dropped first).
KEEP_FINISHED = 1000


@dataclass
class Job:
    job_id: str
    key_id: str
    ingestor: Ingestor
    task: asyncio.Task[Any] | None = None
    error: str | None = None
    status: str = "running"
    done_event: asyncio.Event = field(default_factory=asyncio.Event)


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}

    def start(self, principal: Principal, ingestor: Ingestor, rows: list[dict[str, Any]]) -> Job:
        job = Job(job_id=secrets.token_hex(8), key_id=principal.key_id, ingestor=ingestor)

        async def run() -> None:
            try:
                await ingestor.arun(rows)
                job.status = "done"
            except Exception as e:  # reported to the caller through the status
                job.status, job.error = "failed", principal.clean_message(str(e))
            finally:
                job.done_event.set()

        job.task = asyncio.get_running_loop().create_task(run())
        self._jobs[job.job_id] = job
        self._trim()
        return job

    def get(self, principal: Principal, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None or job.key_id != principal.key_id:
            raise NotFoundError(f"no ingest job {job_id!r}")
        return job

    def status(self, principal: Principal, job: Job) -> dict[str, Any]:
        report = principal.strip(job.ingestor.report.as_dict())
        for err in report.get("errors", []):
            if isinstance(err.get("error"), str):
                err["error"] = principal.clean_message(err["error"])
        return {"job_id": job.job_id, "status": job.status, "error": job.error, "report": report}

    def _trim(self) -> None:
        finished = [j for j in self._jobs.values() if j.status != "running"]
        for job in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            self._jobs.pop(job.job_id, None)

    async def close(self) -> None:
        for job in self._jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
        tasks = [j.task for j in self._jobs.values() if j.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
