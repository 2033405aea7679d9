"""Read back what an extraction prompt showed the model (for stand-in handlers and asserts)."""

from __future__ import annotations

import re

_LINE = re.compile(r"^\[(?P<id>[^\]]+)\] (?P<text>.*)$")


def shown_memories(user: str) -> dict[str, str]:
    """short id -> text of the EXISTING MEMORIES block of a user prompt ({} for "[]")."""
    block = user.split("EXISTING MEMORIES:\n", 1)[1].split("\n\n", 1)[0]
    if block == "[]":
        return {}
    out = {}
    for line in block.splitlines():
        m = _LINE.match(line)
        assert m is not None, f"not a shown-memory line: {line!r}"
        out[m["id"]] = m["text"]
    return out
