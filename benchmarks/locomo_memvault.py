"""memvault as an adapter for ../shared/bench/locomo_retrieval.py.

Each LoCoMo conversation is one user; each session is one run, so adjacency
(the neighbour signal) stays within a session, as it would for a chat app that
uses run_id per conversation. Turns go in as messages with the speaker as
``name``, one ``add`` per session (the bulk path).

    python ../shared/bench/locomo_retrieval.py --adapter benchmarks.locomo_memvault:MemvaultAdapter \
        --mode turns ../shared/data/locomo/*.json

Options: ``--opt embedder=PROVIDER`` (e.g. ``minilm-l3``; default: memvault's default),
``--opt per_message=1`` (one add per turn instead of per session, as the docs describe for
a chat app), ``--opt timestamps=0`` (do not pass the session date as each turn's
``timestamp``; only the optional temporal signal reads it).
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import datetime
from typing import Any

from memvault import Memory


def session_time(date: str) -> str | None:
    """LoCoMo's "1:56 pm on 8 May, 2023" as ISO (when the session's turns were said)."""
    try:
        return datetime.strptime(date.strip(), "%I:%M %p on %d %B, %Y").isoformat()
    except ValueError:
        return None


class MemvaultAdapter:
    name = "memvault"

    def __init__(self, opts: dict[str, Any]) -> None:
        self.opts = opts
        self.per_message = opts.get("per_message", "0") == "1"
        self.timestamps = opts.get("timestamps", "1") == "1"
        config: dict[str, Any] = {"path": os.path.join(opts["workdir"], "memvault.db")}
        if opts.get("embedder"):  # e.g. --opt embedder=minilm-l3
            config["embedder"] = {"provider": opts["embedder"]}
        self.memory = Memory(config)
        self.ids: dict[str, str] = {}  # memory id -> harness item id (bulk path)

    def add_many(self, scope: str, items: list[Any]) -> None:
        by_session: dict[Any, list[Any]] = defaultdict(list)
        for it in items:
            by_session[it.metadata.get("session")].append(it)
        for session, group in by_session.items():
            run = f"s{session}"
            when = session_time(group[0].metadata.get("date", "")) if self.timestamps else None
            if self.per_message:
                for it in group:
                    self.memory.add(
                        [{"role": "user", "content": it.text, "name": it.metadata.get("speaker")}],
                        user_id=scope,
                        run_id=run,
                        infer=False,
                        timestamp=when,
                        metadata={"item_id": it.id},
                    )
                continue
            # One add per session; item ids map back through the returned order.
            res = self.memory.add(
                [
                    {"role": "user", "content": it.text, "name": it.metadata.get("speaker")}
                    for it in group
                ],
                user_id=scope,
                run_id=run,
                infer=False,
                timestamp=when,
            )
            for it, r in zip(group, res["results"], strict=True):
                self.ids[r["id"]] = it.id

    def search(self, scope: str, query: str, k: int) -> list[str]:
        res = self.memory.search(query, user_id=scope, top_k=k)["results"]
        return [self.ids.get(r["id"]) or r.get("metadata", {}).get("item_id") for r in res]

    def describe(self) -> dict[str, Any]:
        return {
            "memvault": self.memory.stats(),
            "per_message": self.per_message,
            "timestamps": self.timestamps,
            "embedder": getattr(self.memory.embedder, "name", None),
        }

    def close(self) -> None:
        self.memory.close()
