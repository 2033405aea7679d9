"""Bad input: a typed error with an actionable message, and the store unchanged."""

from __future__ import annotations

import os
import subprocess
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from memvault import (
    ConfigError,
    DimensionMismatchError,
    Memory,
    MemvaultError,
    ScopeError,
    StorageError,
    ValidationError,
)
from memvault.embedding import LocalEmbedder
from memvault.errors import FilterError
from memvault.inputs import MAX_DEPTH, MAX_METADATA_BYTES
from memvault.text import MAX_TEXT_BYTES
from tests.core.digest import store_digest


def nested(depth: int, leaf: Any = 1) -> dict[str, Any]:
    """``{"a": {"a": ... leaf}}``, ``depth`` dicts deep (built without recursion)."""
    out: Any = leaf
    for _ in range(depth):
        out = {"a": out}
    return out


def nested_filter(depth: int, leaf: dict[str, Any] | None = None) -> dict[str, Any]:
    """``{"AND": [{"AND": [... {"k": 1}]}]}``: ``depth`` logical levels around ``leaf``."""
    out: dict[str, Any] = leaf or {"k": 1}
    for _ in range(depth):
        out = {"AND": [out]}
    return out


#: The latest aware datetime, five hours west of UTC: in UTC it is past year 9999.
WEST_MAX = datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))

BAD_ADDS: list[tuple[Any, dict[str, Any], type[Exception], str]] = [
    ("", {}, ValidationError, "empty"),
    ("   \n", {}, ValidationError, "empty"),
    (None, {}, ValidationError, "messages must be"),
    (42, {}, ValidationError, "messages must be"),
    ([], {}, ValidationError, "non-empty"),
    ([{"role": "user", "content": 5}], {}, ValidationError, "must be a string"),
    ([{"role": "user"}], {}, ValidationError, "must be a string"),
    ([{"role": 3, "content": "x"}], {}, ValidationError, "role"),
    (["ok", 7], {}, ValidationError, r"messages\[1\]"),
    (b"\xff\xfe bad bytes", {}, ValidationError, "not valid UTF-8"),
    ("lone \ud800 surrogate", {}, ValidationError, "not valid Unicode"),
    ("x" * (MAX_TEXT_BYTES + 1), {}, ValidationError, "limit"),
    ("ok", {"user_id": "has space"}, ScopeError, "whitespace"),
    ("ok", {"user_id": " lead"}, ScopeError, "whitespace"),
    ("ok", {"user_id": ""}, ScopeError, "empty"),
    ("ok", {"user_id": ["a"]}, ScopeError, "must be a string"),
    ("ok", {"user_id": "x" * 300}, ScopeError, "limit"),
    ("ok", {"metadata": "not a dict"}, ValidationError, "metadata must be a dict"),
    ("ok", {"metadata": {"f": object()}}, ValidationError, "JSON"),
    ("ok", {"metadata": {"f": float("nan")}}, ValidationError, "JSON"),
    ("ok", {"expiration_date": "next tuesday"}, ValidationError, "date"),
    ("ok", {"timestamp": "yesterday-ish"}, ValidationError, "date"),
    ("ok", {"importance": 3}, ValidationError, "importance"),
    ("ok", {"categories": "work"}, ValidationError, "categories"),
    # Issue 9, point 4: each of these raised a bare Python error (or was accepted) before.
    ("ok", {"metadata": {"\ud800": 1}}, ValidationError, "not valid Unicode"),
    ("ok", {"metadata": {"k": "\udfff"}}, ValidationError, r"metadata\['k'\].*not valid Unicode"),
    ("ok", {"metadata": {"k": ["x", {"y": "\ud800"}]}}, ValidationError, "not valid Unicode"),
    ("ok", {"user_id": "\ud800"}, ScopeError, "user_id.*not valid Unicode"),
    ("ok", {"agent_id": "a\udcff"}, ScopeError, "agent_id.*not valid Unicode"),
    ("ok", {"user_id": "a\x00b"}, ScopeError, "control character"),
    ("ok", {"run_id": "r\x07"}, ScopeError, "control character"),
    ("ok", {"user_id": 10**5000}, ScopeError, "digits"),
    ("ok", {"metadata": nested(2000)}, ValidationError, "nested more than"),
    ("ok", {"metadata": nested(MAX_DEPTH + 1)}, ValidationError, "nested more than"),
    ("ok", {"metadata": {"k": "a" * 10_000_000}}, ValidationError, "limit"),
    ("ok", {"metadata": {"k": "a" * MAX_METADATA_BYTES}}, ValidationError, "limit"),
    ("ok", {"metadata": {"k": {1: "int key"}}}, ValidationError, "non-string key"),
    ("ok", {"metadata": {"k\x00": 1}}, ValidationError, "NUL"),
    ("ok", {"metadata": {"k": 10**5000}}, ValidationError, "JSON"),
    ("ok", {"timestamp": -1e20}, ValidationError, "out of range"),
    ("ok", {"timestamp": 1e20}, ValidationError, "out of range"),
    ("ok", {"timestamp": float("inf")}, ValidationError, "out of range"),
    ("ok", {"timestamp": 10**400}, ValidationError, "out of range"),
    ("ok", {"timestamp": WEST_MAX}, ValidationError, "out of range"),
    ("ok", {"timestamp": "0001-01-01T00:00:00+05:00"}, ValidationError, "out of range"),
    ("ok", {"expiration_date": date.max}, ValidationError, "out of range"),
    ("ok", {"expiration_date": -1e20}, ValidationError, "out of range"),
    ([{"role": "user", "content": "x", "timestamp": -1e20}], {}, ValidationError, "range"),
    ([{"role": "\ud800", "content": "x"}], {}, ValidationError, "role"),
    ([{"role": "user", "content": "x", "name": "\ud800"}], {}, ValidationError, "name"),
    ([{"role": "user", "content": "x", "name": 7}], {}, ValidationError, "name"),
    ("ok", {"categories": ["\ud800"]}, ValidationError, "category"),
    ("ok", {"categories": ["a\x00"]}, ValidationError, "NUL"),
    ("ok", {"changed_by": "\ud800"}, ValidationError, "changed_by"),
    ("ok", {"changed_by": 5}, ValidationError, "changed_by must be a string"),
    ("ok", {"embeddings": [[1.0, 0.0]], "vector_space": "\ud800"}, ValidationError, "vector_space"),
    ("ok", {"embeddings": [[1.0, 0.0]], "vector_space": "v\x00"}, ValidationError, "NUL"),
    ("ok", {"embeddings": [[1.0, 0.0]], "vector_space": 5}, ValidationError, "vector_space"),
    (
        "ok",
        {"embeddings": [[1.0, 0.0]], "vector_space": "v", "metadata": {"\ud800": 1}},
        ValidationError,
        "not valid Unicode",
    ),
    (
        "ok",
        {"embeddings": [[1.0, 0.0]], "vector_space": "v", "timestamp": -1e20},
        ValidationError,
        "out of range",
    ),
    (
        "ok",
        {
            "embeddings": [[0.1, 0.2]],
            "vector_space": "v",
            "metadata": None,
            "infer": False,
            "user_id": "u",
            "timestamp": None,
        },
        None,
        "",
    ),
]


@pytest.mark.parametrize(
    ("messages", "kwargs", "exc", "needle"), [c for c in BAD_ADDS if c[2] is not None]
)
def test_bad_add_is_refused_and_store_unchanged(
    memory: Memory, messages: Any, kwargs: dict[str, Any], exc: type[Exception], needle: str
) -> None:
    memory.add("pre-existing", user_id="u")
    before = store_digest(memory)
    kwargs = {"user_id": "u", **kwargs}
    with pytest.raises(exc, match=needle) as info:
        memory.add(messages, **kwargs)
    assert isinstance(info.value, MemvaultError)
    assert store_digest(memory) == before


@pytest.mark.parametrize(
    ("call", "exc", "needle"),
    [
        (lambda m: m.search("", user_id="u"), ValidationError, "empty"),
        (lambda m: m.search(None, user_id="u"), ValidationError, "query"),
        (lambda m: m.search("x", user_id="u", top_k=0), ValidationError, "positive"),
        (lambda m: m.search("x", user_id="u", top_k="5"), ValidationError, "positive"),
        (lambda m: m.get("id with space"), ScopeError, "whitespace"),
        (lambda m: m.update("nope-id", "x"), MemvaultError, "no memory"),
        (lambda m: m.update("nope-id"), ValidationError, "needs text"),
        (lambda m: m.delete("nope-id"), MemvaultError, "no memory"),
        (lambda m: m.search("x", user_id="u", vector=[0.0, 0.0]), ValidationError, "zero"),
        (lambda m: m.search("x", user_id="u", as_of="not a date"), ValidationError, "date"),
        (lambda m: m.search("x", user_id="u", threshold=float("nan")), ValidationError, "finite"),
        (lambda m: m.search("x", user_id="u", threshold=float("inf")), ValidationError, "finite"),
        (lambda m: m.search("x", user_id="u", threshold=True), ValidationError, "finite"),
        # Issue 9, point 4: every entry that takes ids, metadata, filters or times.
        (lambda m: m.search("x", user_id="\ud800"), ScopeError, "not valid Unicode"),
        (lambda m: m.search("x", filters={"user_id": "\ud800"}), ScopeError, "Unicode"),
        (lambda m: m.search("x", user_id="u", as_of=-1e20), ValidationError, "out of range"),
        (lambda m: m.search("x", user_id="u", filters=nested_filter(5000)), FilterError, "nested"),
        (lambda m: m.search("x", user_id="u", filters={"k": "\ud800"}), FilterError, "Unicode"),
        (lambda m: m.search("x", user_id="u", filters={"\ud800": 1}), FilterError, "Unicode"),
        (
            lambda m: m.search("x", user_id="u", filters={"k": {"eq": nested(5000)}}),
            FilterError,
            "nested",
        ),
        (
            lambda m: m.search("x", user_id="u", vector=[1.0, 0.0], vector_space="\ud800"),
            ValidationError,
            "vector_space",
        ),
        (lambda m: m.get_all(user_id="u", filters=nested_filter(5000)), FilterError, "nested"),
        (lambda m: m.get_all(user_id="u", as_of=1e20), ValidationError, "out of range"),
        (lambda m: m.get_all(user_id="u", namespace_prefix=5), FilterError, "namespace_prefix"),
        (lambda m: m.count(user_id="u", filters=nested_filter(5000)), FilterError, "nested"),
        (lambda m: m.delete_all(user_id="u", filters=nested_filter(5000)), FilterError, "nested"),
        (lambda m: m.delete_all(user_id="u", changed_by="\ud800"), ValidationError, "changed_by"),
        (lambda m: m.get("\ud800"), ScopeError, "memory_id.*Unicode"),
        (lambda m: m.get("id\x00"), ScopeError, "control character"),
        (lambda m: m.history("\ud800"), ScopeError, "memory_id.*Unicode"),
        (lambda m: m.delete("\ud800"), ScopeError, "memory_id"),
        (lambda m: m.touch(["\ud800"]), ScopeError, "memory_id"),
        (lambda m: m.put(("a\ud800",), "k", {"v": 1}, user_id="u"), ValidationError, "label"),
        (lambda m: m.put(("a\x00",), "k", {"v": 1}, user_id="u"), ValidationError, "NUL"),
        (lambda m: m.put(("a",), "k\ud800", {"v": 1}, user_id="u"), ValidationError, "key"),
        (lambda m: m.put(("a",), "k\x00", {"v": 1}, user_id="u"), ValidationError, "NUL"),
        (lambda m: m.put(("a",), "k", {"v": "\ud800"}, user_id="u"), ValidationError, "value"),
        (lambda m: m.put(("a",), "k", nested(2000), user_id="u"), ValidationError, "nested"),
        (
            lambda m: m.put(("a",), "k", {"v": "a" * 2_000_000}, text="short", user_id="u"),
            ValidationError,
            "limit",
        ),
        (
            lambda m: m.put(("a",), "k", {"v": 1}, metadata=nested(2000), user_id="u"),
            ValidationError,
            "nested",
        ),
        (
            lambda m: m.put(("a",), "k", {"v": 1}, timestamp=-1e20, user_id="u"),
            ValidationError,
            "out of range",
        ),
        (
            lambda m: m.put(("a",), "k", {"v": 1}, ttl_seconds=float("inf"), user_id="u"),
            ValidationError,
            "ttl",
        ),
        (
            lambda m: m.put(("a",), "k", {"v": 1}, ttl_seconds=1e300, user_id="u"),
            ValidationError,
            "ttl",
        ),
        (
            lambda m: m.put(("a",), "k", {"v": 1}, vector_space=7, embeddings=[1.0], user_id="u"),
            ValidationError,
            "vector_space",
        ),
        (lambda m: m.get_key(("a",), "k\ud800", user_id="u"), ValidationError, "key"),
        (lambda m: m.delete_key(("a",), "k\x00", user_id="u"), ValidationError, "NUL"),
        (lambda m: m.add("x", user_id="u", idempotency_key="k\x00"), ValidationError, "NUL"),
        (lambda m: m.add("x", user_id="u", idempotency_key="\ud800"), ValidationError, "Unicode"),
    ],
)
def test_bad_calls_raise_typed_errors(
    memory: Memory, call: Any, exc: type[Exception], needle: str
) -> None:
    memory.add("pre-existing", user_id="u")
    before = store_digest(memory)
    with pytest.raises(exc, match=needle) as info:
        call(memory)
    assert isinstance(info.value, MemvaultError)
    assert store_digest(memory) == before


@pytest.mark.parametrize(
    ("update", "exc", "needle"),
    [
        ({"text": "lone \ud800"}, ValidationError, "not valid Unicode"),
        ({"metadata": {"\ud800": 1}}, ValidationError, "not valid Unicode"),
        ({"metadata": {"k": "\udfff"}}, ValidationError, "not valid Unicode"),
        ({"metadata": nested(2000)}, ValidationError, "nested more than"),
        ({"metadata": {"k": "a" * 10_000_000}}, ValidationError, "limit"),
        ({"expiration_date": -1e20}, ValidationError, "out of range"),
        ({"text": "new", "changed_by": "\ud800"}, ValidationError, "changed_by"),
    ],
)
def test_bad_update_is_refused_and_store_unchanged(
    memory: Memory, update: dict[str, Any], exc: type[Exception], needle: str
) -> None:
    mid = memory.add("pre-existing", user_id="u", metadata={"k": "v"})["results"][0]["id"]
    before = store_digest(memory)
    with pytest.raises(exc, match=needle):
        memory.update(mid, **update)
    assert store_digest(memory) == before
    assert memory.get(mid)["metadata"] == {"k": "v"}


def test_limits_are_inclusive(memory: Memory) -> None:
    """Metadata at exactly the size and depth limits is stored and read back unchanged."""
    deep = nested(MAX_DEPTH - 1, leaf="leaf")  # MAX_DEPTH dicts counting the outer one
    r = memory.add("deep", user_id="u", metadata={"d": deep})["results"][0]
    assert memory.get(r["id"])["metadata"] == {"d": deep}
    filler = "a" * (MAX_METADATA_BYTES - len('{"k": ""}'))
    r = memory.add("big", user_id="u", metadata={"k": filler})["results"][0]
    assert memory.get(r["id"])["metadata"]["k"] == filler
    found = memory.get_all(user_id="u", filters=nested_filter(MAX_DEPTH - 1, {"k": "*"}))
    assert [x["memory"] for x in found["results"]] == ["big"]


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.add("tea\x00time", user_id="u"),
        lambda m: m.add(b"tea\x00time", user_id="u"),
        lambda m: m.add([{"role": "user", "content": "tea\x00time"}], user_id="u"),
        lambda m: m.add("tea", user_id="u", metadata={"note": "a\x00b"}),
        lambda m: m.add("tea", user_id="u", metadata={"n": [{"deep": "\x00"}]}),
        lambda m: m.search("tea\x00", user_id="u"),
        lambda m: m.get_all(user_id="u", filters={"no\x00te": 1}),
        lambda m: m.update(m.get_all(user_id="u")["results"][0]["id"], "tea\x00time"),
        lambda m: m.put(("ns",), "k", {"v": "a\x00"}, user_id="u"),
        lambda m: m.put(("ns",), "k", {"v": 1}, text="a\x00", user_id="u"),
    ],
)
def test_nul_is_refused_in_content_too(memory: Memory, call: Any) -> None:
    """NUL is refused in every string memvault keeps (PostgreSQL text and jsonb cannot
    hold it), so a store can always be copied to any backend."""
    memory.add("pre-existing", user_id="u")
    before = store_digest(memory)
    with pytest.raises(ValidationError, match="NUL"):
        call(memory)
    assert store_digest(memory) == before


def test_nul_in_a_filter_value_matches_nothing(memory: Memory) -> None:
    """A filter operand is only compared, never kept: NUL in it is no error, it just
    matches nothing (no stored string holds NUL). LangGraph's store suite asks this."""
    memory.add("tea", user_id="u", metadata={"note": "a"})
    assert memory.get_all(user_id="u", filters={"note": "a\x00' OR '1'='1"})["results"] == []
    assert len(memory.get_all(user_id="u", filters={"note": {"ne": "a\x00"}})["results"]) == 1


def test_bad_ingest_rows_are_reported_not_raised(memory: Memory) -> None:
    """Each bad row becomes a per-row error naming its line; the good row is stored."""
    rows = [
        {"user_id": "\ud800", "text": "bad id"},
        {"user_id": "u", "text": "bad meta", "metadata": nested(2000)},
        {"user_id": "u", "text": "bad time", "timestamp": -1e20},
        {"user_id": "u", "text": "bad meta size", "metadata": {"k": "a" * 10_000_000}},
        {"user_id": "u", "text": "bad text \ud800"},
        {"user_id": "u", "text": "good row"},
    ]
    report = memory.ingest(rows)
    assert (report.done, report.failed) == (1, 5)
    assert [e["line"] for e in report.errors] == [1, 2, 3, 4, 5]
    assert [r["memory"] for r in memory.get_all(user_id="u")["results"]] == ["good row"]


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("a\x00b.db", "NUL"),
        ("\ud800.db", "cannot be encoded"),
        (5, "must be a file path"),
        (["a.db"], "must be a file path"),
        (b"a.db", "not bytes"),
    ],
)
def test_bad_store_path_is_a_config_error(
    tmp_path: Path, embedder: LocalEmbedder, path: Any, needle: str
) -> None:
    """A NUL, an unencodable name or a non-path: ``ConfigError``, and no file is created."""
    full = str(tmp_path / path) if isinstance(path, str) else path
    with pytest.raises(ConfigError, match=needle):
        Memory(path=full, embedder=embedder)
    if isinstance(path, str):
        with pytest.raises(ConfigError, match=needle):
            Memory({"path": full}, embedder=embedder)
        with pytest.raises(ConfigError, match=needle):
            Memory({"history_db_path": full}, embedder=embedder)
    assert list(tmp_path.iterdir()) == []


def test_surrogate_escaped_path_is_a_valid_store(tmp_path: Path, embedder: LocalEmbedder) -> None:
    """A file name from undecodable bytes (``os.fsdecode(b"\\xff")``) is a real path: accepted."""
    p = tmp_path / (os.fsdecode(b"\xff") + ".db")
    with Memory(path=p, embedder=embedder) as m:
        m.add("kept", user_id="u")
    assert b"\xff.db" in os.listdir(os.fsencode(tmp_path))


def test_unknown_id_is_a_lookup_error(memory: Memory) -> None:
    with pytest.raises(LookupError):
        memory.delete("does-not-exist")


def test_store_path_that_is_a_directory(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        Memory(path=tmp_path, embedder=embedder)


def test_read_only_store_file(tmp_path: Path, embedder: LocalEmbedder) -> None:
    p = tmp_path / "ro.db"
    with Memory(path=p, embedder=embedder) as m:
        m.add("kept", user_id="u")
    p.chmod(0o444)
    # Root ignores file modes; the immutable attribute binds root too.
    as_root = os.geteuid() == 0
    if as_root:
        subprocess.run(["chattr", "+i", str(p)], check=True)
    try:
        with pytest.raises(StorageError, match="read-only"):
            Memory(path=p, embedder=embedder)
    finally:
        if as_root:
            subprocess.run(["chattr", "-i", str(p)], check=True)
        p.chmod(0o644)
    with Memory(path=p, embedder=embedder) as m:
        assert [r["memory"] for r in m.get_all(user_id="u")["results"]] == ["kept"]


def test_read_only_directory_as_root_still_refuses_garbage_file(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    p = tmp_path / "garbage.db"
    p.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(StorageError, match=r"not a usable memvault store|cannot"):
        Memory(path=p, embedder=embedder)
    assert p.read_bytes().startswith(b"this is not")  # nothing was overwritten


def test_dimension_mismatch_names_both_dimensions(memory: Memory) -> None:
    memory.add("first", user_id="u", embeddings=[[1.0, 0.0, 0.0]], vector_space="tiny", infer=False)
    with pytest.raises(DimensionMismatchError, match=r"3-dimensional.*2-dimensional"):
        memory.add("second", user_id="u", embeddings=[[1.0, 0.0]], vector_space="tiny")
    with pytest.raises(DimensionMismatchError, match="384"):
        memory.search("x", user_id="u", vector=[1.0, 0.0])
    assert memory.stats()["memories"] == 1


def test_store_path_the_file_system_refuses(tmp_path: Path, embedder: LocalEmbedder) -> None:
    """A file name longer than the file system allows: ``StorageError``, not ``OSError``."""
    with pytest.raises(StorageError, match="cannot use store path"):
        Memory(path=tmp_path / ("a" * 300), embedder=embedder)
    assert list(tmp_path.iterdir()) == []
