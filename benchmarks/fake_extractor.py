"""Scripted extraction for the benchmark's fake LLM: one fact per new message.

Loaded by ``tests.support.fake_openai --script``; it restates each new message as
a fact so the write path does its full work (embedding, reconciliation, writes).
"""

from __future__ import annotations

from typing import Any


def chat_handler(req: dict[str, Any]) -> dict[str, Any]:
    user = req["messages"][-1]["content"]
    new = user.split("NEW MESSAGES:\n", 1)[-1]
    return {
        "memories": [
            {"event": "ADD", "text": line.split(": ", 1)[-1]}
            for line in new.splitlines()
            if line.strip()
        ]
    }
