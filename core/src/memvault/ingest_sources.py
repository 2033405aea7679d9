"""Readers for the cold path: JSONL, CSV and LoCoMo JSON into ingest rows.

Why normalise early: every row becomes ``{scope ids, messages, timestamp,
metadata}`` before anything runs, so a malformed line is reported with its line
number as that row's error and never stops the run.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from memvault.errors import ValidationError

FORMATS = ("jsonl", "csv", "locomo")


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "locomo"
    raise ValidationError(
        f"cannot tell the format of {path.name!r}; pass --format ({', '.join(FORMATS)})"
    )


def read_rows(path: str | Path, fmt: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows from a file; a row that cannot be read is yielded as ``{"_error": ...}``."""
    p = Path(path)
    if not p.is_file():
        raise ValidationError(f"no such file: {str(p)!r}")
    fmt = fmt or detect_format(p)
    if fmt == "jsonl":
        yield from _jsonl(p)
    elif fmt == "csv":
        yield from _csv(p)
    elif fmt == "locomo":
        yield from locomo_rows(json.loads(p.read_text(encoding="utf-8")), default_id=p.stem)
    else:
        raise ValidationError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def _jsonl(p: Path) -> Iterator[dict[str, Any]]:
    with p.open(encoding="utf-8", errors="strict") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                yield {"_line": n, "_error": f"line {n}: invalid JSON ({e.msg})"}
                continue
            if not isinstance(row, dict):
                yield {"_line": n, "_error": f"line {n}: expected a JSON object"}
                continue
            yield {**row, "_line": n}


def _csv(p: Path) -> Iterator[dict[str, Any]]:
    with p.open(encoding="utf-8", newline="") as f:
        for n, rec in enumerate(csv.DictReader(f), 2):
            row: dict[str, Any] = {k: v for k, v in rec.items() if k and v not in (None, "")}
            if "messages" in row:
                try:
                    row["messages"] = json.loads(row["messages"])
                except json.JSONDecodeError as e:
                    yield {"_line": n, "_error": f"line {n}: messages is not JSON ({e.msg})"}
                    continue
            if "metadata" in row:
                try:
                    row["metadata"] = json.loads(row["metadata"])
                except json.JSONDecodeError as e:
                    yield {"_line": n, "_error": f"line {n}: metadata is not JSON ({e.msg})"}
                    continue
            yield {**row, "_line": n}


_SESSION = re.compile(r"session_(\d+)$")
_LOCOMO_DATE = re.compile(
    r"(\d{1,2}):(\d{2})\s*(am|pm)\s+on\s+(\d{1,2})\s+(\w+),?\s+(\d{4})", re.IGNORECASE
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        [
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ],
        1,
    )
}


def parse_locomo_date(text: str) -> str | None:
    """'1:56 pm on 8 May, 2023' -> '2023-05-08T13:56:00+00:00' (None if unreadable)."""
    m = _LOCOMO_DATE.search(text or "")
    if not m:
        return None
    hour, minute, ampm, day, month, year = m.groups()
    mon = _MONTHS.get(month.lower())
    if mon is None:
        return None
    h = int(hour) % 12 + (12 if ampm.lower() == "pm" else 0)
    return f"{int(year):04d}-{mon:02d}-{int(day):02d}T{h:02d}:{int(minute):02d}:00+00:00"


def locomo_rows(doc: dict[str, Any], *, default_id: str) -> Iterator[dict[str, Any]]:
    """One row per LoCoMo session: the turns as named messages at the session's date."""
    conv = doc.get("conversation", doc)
    user = str(doc.get("sample_id") or default_id).replace(" ", "_")
    sessions = sorted(
        int(m.group(1)) for k in conv if (m := _SESSION.match(k)) and isinstance(conv[k], list)
    )
    for s in sessions:
        date = conv.get(f"session_{s}_date_time", "")
        messages = []
        for turn in conv[f"session_{s}"]:
            text = turn.get("text", "")
            if turn.get("blip_caption"):
                text += f" [shares image: {turn['blip_caption']}]"
            messages.append({"role": "user", "name": turn.get("speaker"), "content": text})
        if messages:
            yield {
                "user_id": user,
                "run_id": f"session_{s}",
                "messages": messages,
                "timestamp": parse_locomo_date(date),
                "metadata": {"session": s},
                "_line": s,
            }
