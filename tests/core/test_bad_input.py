"""Bad input: a typed error with an actionable message, and the store unchanged."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from memvault import (
    DimensionMismatchError,
    Memory,
    MemvaultError,
    ScopeError,
    StorageError,
    ValidationError,
)
from memvault.embedding import LocalEmbedder
from memvault.text import MAX_TEXT_BYTES

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
    before = memory.stats()
    kwargs = {"user_id": "u", **kwargs}
    with pytest.raises(exc, match=needle) as info:
        memory.add(messages, **kwargs)
    assert isinstance(info.value, MemvaultError)
    after = memory.stats()
    assert (after["memories"], after["history_events"]) == (
        before["memories"],
        before["history_events"],
    )


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
    ],
)
def test_bad_calls_raise_typed_errors(
    memory: Memory, call: Any, exc: type[Exception], needle: str
) -> None:
    memory.add("pre-existing", user_id="u")
    with pytest.raises(exc, match=needle):
        call(memory)
    assert memory.stats()["memories"] == 1


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
