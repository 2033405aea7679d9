"""JSONL export / import: every field, vector and history row survives a round trip."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from memvault import Memory
from memvault import transfer as transfer_mod
from memvault.embedding import LocalEmbedder
from memvault.errors import DimensionMismatchError, ValidationError
from memvault.models import SUPERSEDED, MemoryRecord, content_hash
from memvault.scope import Scope
from memvault.transfer import export_jsonl, import_jsonl


@pytest.fixture(scope="module")
def emb() -> LocalEmbedder:
    """One loaded model for the module: loading is the slow part."""
    e = LocalEmbedder()
    e.load()
    return e


@pytest.fixture
def mem(tmp_path: Path, emb: LocalEmbedder) -> Iterator[Memory]:
    with Memory(path=tmp_path / "src.db", embedder=emb) as m:
        yield m


@pytest.fixture
def fresh(tmp_path: Path, emb: LocalEmbedder) -> Iterator[Memory]:
    with Memory(path=tmp_path / "dst.db", embedder=emb) as m:
        yield m


def _populate(m: Memory) -> dict[str, str]:
    """A store with every kind of thing an export must carry. Returns named ids."""
    ids: dict[str, str] = {}
    ids["plain"] = m.add(
        "I love sushi and ramen", user_id="alice", metadata={"topic": "food", "ü": "ß"}
    )["results"][0]["id"]
    ids["updated"] = m.add("My sister lives in Porto", user_id="alice", agent_id="helper")[
        "results"
    ][0]["id"]
    m.update(
        ids["updated"],
        "My sister lives in Lisbon",
        metadata={"verified": True},
        changed_by="tester",
    )
    ids["deleted"] = m.add("I am allergic to cats", user_id="alice")["results"][0]["id"]
    m.delete(ids["deleted"], changed_by="tester")
    ids["bob"] = m.add("Bob plays the cello", user_id="bob", run_id="r1")["results"][0]["id"]
    # Fields the public API does not set: written through the store, as adapters do.
    rng = np.random.default_rng(7)
    custom = rng.standard_normal((2, 8)).astype(np.float32)
    custom /= np.linalg.norm(custom, axis=1, keepdims=True)
    default = m._engine.embedder.embed(["The deploy key is in the vault, version two"])
    old = MemoryRecord(
        id="rich-old",
        memory="The deploy key is in the vault",
        scope=Scope("alice", "ops", None),
        hash=content_hash("The deploy key is in the vault"),
        metadata={"nested": {"a": [1, 2]}},
        created_at="2024-01-01T00:00:00.000000+00:00",
        updated_at="2024-02-01T00:00:00.000000+00:00",
        role="assistant",
        actor_id="Ops Bot",
        categories=["secrets", "infra"],
        importance=0.75,
        value={"k": [1, "two", None]},
        namespace=("org", "team"),
        key=None,
        valid_from="2024-01-01T00:00:00.000000+00:00",
        valid_to="2024-02-01T00:00:00.000000+00:00",
        superseded_by="rich-new",
        expiration_date="2099-01-01T00:00:00.000000+00:00",
        last_accessed_at="2024-01-15T00:00:00.000000+00:00",
        state=SUPERSEDED,
    )
    new = dataclasses.replace(
        old,
        id="rich-new",
        memory="The deploy key is in the vault, version two",
        hash=content_hash("The deploy key is in the vault, version two"),
        key="deploy-key",
        valid_from="2024-02-01T00:00:00.000000+00:00",
        valid_to=None,
        superseded_by=None,
        state="active",
        value=7,
        categories=["infra"],
        importance=1.0,
        ttl_seconds=3600.5,
    )
    with m._engine.store.write() as tx:
        tx.insert(old, {"custom": custom})
        tx.history(
            "ADD", memory_id=old.id, old=None, new=old, changed_by="adapter", at=old.created_at
        )
        tx.insert(new, {"default": default, "custom": custom[:1]})
        tx.history(
            "SUPERSEDE",
            memory_id=old.id,
            old=old,
            new=new,
            changed_by="adapter",
            related_id=new.id,
            at=new.valid_from,
        )
    m._engine.index.sync(tx.touched, tx.removed)
    ids["rich_old"], ids["rich_new"] = "rich-old", "rich-new"
    return ids


def _dump(m: Memory) -> dict[str, Any]:
    """Everything in a store that an export must preserve, comparable with ==."""
    store = m._engine.store
    memories = {}
    for r in store.iter_all():
        d = dataclasses.asdict(r)
        d.pop("seq")  # storage order, not identity (relative order is checked separately)
        vecs = {k: v.tobytes() for k, v in store.all_vectors(r.seq).items()}
        memories[r.id] = (d, vecs)
    return {
        "memories": memories,
        "order": [r.id for r in store.iter_all()],
        "history": list(store.history_rows()),
        "spaces": store.spaces(),
    }


def _export(m: Memory, **kw: Any) -> str:
    buf = io.StringIO()
    export_jsonl(m, buf, **kw)
    return buf.getvalue()


def test_round_trip_every_field_vector_and_history(mem: Memory, fresh: Memory) -> None:
    _populate(mem)
    text = _export(mem)
    counts = import_jsonl(fresh, io.StringIO(text))
    assert counts == {
        "memories": 5,
        "skipped": 0,
        "history": 8,
        "history_skipped": 0,
        "embedded": 0,
    }
    assert _dump(fresh) == _dump(mem)
    # ... and the public views agree too.
    for r in mem.get_all(user_id="alice", include_superseded=True)["results"]:
        assert fresh.get(r["id"]) == r
        assert fresh.history(r["id"]) == mem.history(r["id"])
    # The imported store is searchable right away (FTS and vectors in place).
    hits = fresh.search("what does alice eat", user_id="alice")["results"]
    assert hits[0]["memory"] == "I love sushi and ramen"


def test_export_format(mem: Memory) -> None:
    ids = _populate(mem)
    lines = [json.loads(line) for line in _export(mem).splitlines()]
    header = lines[0]
    assert header["type"] == "memvault-export" and header["version"] == 1
    assert header["spaces"] == {"default": 384, "custom": 8}
    kinds = [x["type"] for x in lines[1:]]
    assert kinds.count("memory") == 5
    # Each memory line is followed by its own history; deleted memories' history comes last.
    rich = next(i for i, x in enumerate(lines) if x.get("id") == ids["rich_old"])
    assert lines[rich + 1]["memory_id"] == ids["rich_old"]
    assert lines[-1]["memory_id"] == ids["deleted"]
    assert lines[-1]["event"] == "DELETE" and lines[-1]["is_deleted"] is True
    memline = lines[rich]
    fields = {f.name for f in dataclasses.fields(MemoryRecord)} - {"scope", "seq"}
    assert set(memline) == fields | {"type", "user_id", "agent_id", "run_id", "vectors"}
    assert len(memline["vectors"]["custom"]) == 2 and len(memline["vectors"]["custom"][0]) == 8


def test_scoped_export_has_only_that_scope(mem: Memory, fresh: Memory) -> None:
    ids = _populate(mem)
    text = _export(mem, user_id="bob")
    import_jsonl(fresh, io.StringIO(text))
    assert [r.id for r in fresh._engine.store.iter_all()] == [ids["bob"]]
    assert {h["memory_id"] for h in fresh._engine.store.history_rows()} == {ids["bob"]}
    assert json.loads(text.splitlines()[0])["spaces"] == {"default": 384}

    # Alice's export includes the history of her deleted memory, and nobody else's.
    alice = [json.loads(x) for x in _export(mem, user_id="alice").splitlines()[1:]]
    assert ids["bob"] not in {x.get("memory_id", x.get("id")) for x in alice}
    assert any(x["type"] == "history" and x["memory_id"] == ids["deleted"] for x in alice)


def test_import_twice_is_idempotent(mem: Memory, fresh: Memory) -> None:
    _populate(mem)
    text = _export(mem)
    import_jsonl(fresh, io.StringIO(text))
    before = _dump(fresh)
    counts = import_jsonl(fresh, io.StringIO(text))
    assert counts == {
        "memories": 0,
        "skipped": 5,
        "history": 0,
        "history_skipped": 8,
        "embedded": 0,
    }
    assert _dump(fresh) == before


def test_import_into_a_non_empty_store_keeps_history_order(mem: Memory, fresh: Memory) -> None:
    ids = _populate(mem)
    fresh.add("something already here", user_id="carol")  # history ids 1.. are taken
    import_jsonl(fresh, io.StringIO(_export(mem)))
    got = [(h["event"], h["old_memory"], h["new_memory"]) for h in fresh.history(ids["updated"])]
    want = [(h["event"], h["old_memory"], h["new_memory"]) for h in mem.history(ids["updated"])]
    assert got == want


def test_export_without_vectors_reembeds(mem: Memory, fresh: Memory) -> None:
    ids = _populate(mem)
    text = _export(mem, include_vectors=False)
    assert '"vectors"' not in text
    assert json.loads(text.splitlines()[0])["spaces"] == {}
    counts = import_jsonl(fresh, io.StringIO(text))
    assert counts["embedded"] == 5
    src, dst = mem._engine.store, fresh._engine.store
    a = src.all_vectors(src.get(ids["plain"]).seq)["default"]
    b = dst.all_vectors(dst.get(ids["plain"]).seq)["default"]
    np.testing.assert_allclose(a, b, atol=1e-5)  # same model, same text


def test_minimal_hand_written_jsonl(fresh: Memory) -> None:
    text = (
        '{"type": "memory", "memory": "I moved to Berlin in 2021", "user_id": "u"}\n'
        "\n"
        '{"type": "memory", "memory": "My cat is called Miso", "user_id": "u", '
        '"metadata": {"pet": true}, "created_at": "2023-05-01"}\n'
    )
    counts = import_jsonl(fresh, io.StringIO(text))
    assert counts == {
        "memories": 2,
        "skipped": 0,
        "history": 2,
        "history_skipped": 0,
        "embedded": 2,
    }
    hits = fresh.search("where do I live", user_id="u")["results"]
    assert hits[0]["memory"] == "I moved to Berlin in 2021"
    cat = next(r for r in fresh.get_all(user_id="u")["results"] if "Miso" in r["memory"])
    assert cat["hash"] == content_hash("My cat is called Miso")
    assert cat["created_at"] == "2023-05-01T00:00:00.000000+00:00"
    assert cat["metadata"] == {"pet": True}
    hist = fresh.history(cat["id"])
    assert [(h["event"], h["changed_by"]) for h in hist] == [("ADD", "import")]
    # Same text in the same scope again: skipped, not duplicated.
    again = import_jsonl(fresh, io.StringIO(text))
    assert again["memories"] == 0 and again["skipped"] == 2
    assert len(fresh.get_all(user_id="u")["results"]) == 2


def test_bytes_lines_and_bom(fresh: Memory) -> None:
    raw = '\ufeff{"type": "memory", "id": "m1", "memory": "Grüße", "user_id": "u"}\n'
    counts = import_jsonl(fresh, io.BytesIO(raw.encode("utf-8")))
    assert counts["memories"] == 1
    assert fresh.get("m1")["memory"] == "Grüße"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type": "memroy", "memory": "x", "user_id": "u"}', "unknown type"),
        ('{"type": "memory", "memory": "x"}', "no scope given"),
        ('{"type": "memory", "memory": "", "user_id": "u"}', "memory is empty"),
        (
            '{"type": "memory", "memory": "x", "user_id": "u", "metdata": {}}',
            "unknown memory fields",
        ),
        (
            '{"type": "memory", "memory": "x", "user_id": "u", "created_at": "yesterday"}',
            "created_at",
        ),
        (
            '{"type": "memory", "memory": "x", "user_id": "u", "vectors": {"default": [0, 0]}}',
            "zero vector",
        ),
        ('{"type": "memory", "memory": "x", "user_id": "u", "state": "gone"}', "state must be"),
        ('{"type": "history", "event": "ADD"}', "memory_id"),
        ('{"type": "memvault-export", "version": 2, "spaces": {}}', "newer"),
    ],
)
def test_bad_line_names_its_number_and_writes_nothing(
    fresh: Memory, line: str, needle: str
) -> None:
    good = '{"type": "memory", "id": "ok", "memory": "fine", "user_id": "u", "vectors": {}}\n'
    with pytest.raises(ValidationError, match=f"line 3: .*{needle}"):
        import_jsonl(fresh, io.StringIO(good + "\n" + line + "\n"))
    assert fresh._engine.store.get("ok") is None  # the batch never reached the store


def test_dimension_mismatch(fresh: Memory) -> None:
    fresh.add("an existing 384-dimensional memory", user_id="u")
    header = '{"type": "memvault-export", "version": 1, "spaces": {"default": 8}}\n'
    with pytest.raises(DimensionMismatchError, match="line 1"):
        import_jsonl(fresh, io.StringIO(header))
    line = '{"type": "memory", "memory": "x", "user_id": "u", "vectors": {"default": [1, 0, 0]}}\n'
    with pytest.raises(DimensionMismatchError, match="line 2"):
        import_jsonl(fresh, io.StringIO("\n" + line))


def test_failed_batch_rolls_back_whole_memories(
    fresh: Memory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer_mod, "BATCH_LINES", 2)

    def mem_line(mid: str, dims: int = 4) -> str:
        vec = [1.0] + [0.0] * (dims - 1)
        return json.dumps(
            {
                "type": "memory",
                "id": mid,
                "memory": f"text {mid}",
                "user_id": "u",
                "vectors": {"default": [vec]},
            }
        )

    def hist_line(mid: str, n: int) -> str:
        return json.dumps(
            {
                "type": "history",
                "memory_id": mid,
                "event": "ADD",
                "new_memory": f"v{n}",
                "created_at": f"2024-01-0{n}",
            }
        )

    lines = [
        mem_line("a"),
        hist_line("a", 1),
        hist_line("a", 2),
        mem_line("b"),
        hist_line("b", 1),
        mem_line("c", dims=5),
        hist_line("c", 1),
    ]
    with pytest.raises(DimensionMismatchError, match="line 6"):
        import_jsonl(fresh, io.StringIO("\n".join(lines)))
    store = fresh._engine.store
    # Batches never split a memory from its history: a and b are whole, c is not there at all.
    assert [r.id for r in store.iter_all()] == ["a", "b"]
    assert [h["new_memory"] for h in fresh.history("a")] == ["v1", "v2"]
    assert fresh.history("c") == []
    # Fix the file and re-run: the import picks up where it failed.
    lines[5] = mem_line("c")
    counts = import_jsonl(fresh, io.StringIO("\n".join(lines)))
    assert counts == {
        "memories": 1,
        "skipped": 2,
        "history": 1,
        "history_skipped": 3,
        "embedded": 0,
    }
    assert [r.id for r in store.iter_all()] == ["a", "b", "c"]
    assert [h["new_memory"] for h in fresh.history("c")] == ["v1"]


def test_active_key_collision_is_a_validation_error(mem: Memory, fresh: Memory) -> None:
    _populate(mem)
    import_jsonl(fresh, io.StringIO(_export(mem)))
    clash = json.dumps(
        {
            "type": "memory",
            "id": "other",
            "memory": "another key holder",
            "user_id": "alice",
            "agent_id": "ops",
            "namespace": ["org", "team"],
            "key": "deploy-key",
            "vectors": {},
        }
    )
    with pytest.raises(ValidationError, match=r"line 1: .*namespace and key"):
        import_jsonl(fresh, io.StringIO(clash))
    assert fresh._engine.store.get("other") is None


def test_vectors_round_trip_bit_exact_through_text(mem: Memory, fresh: Memory) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((50, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    mem.add(
        [f"text {i}" for i in range(50)], user_id="u", embeddings=list(vecs), vector_space="byo"
    )
    import_jsonl(fresh, io.StringIO(_export(mem)))
    a = np.vstack(
        [mem._engine.store.all_vectors(r.seq)["byo"] for r in mem._engine.store.iter_all()]
    )
    b = np.vstack(
        [fresh._engine.store.all_vectors(r.seq)["byo"] for r in fresh._engine.store.iter_all()]
    )
    assert a.tobytes() == b.tobytes()


def test_awkward_text_round_trips_through_a_real_file(
    mem: Memory, fresh: Memory, tmp_path: Path
) -> None:
    text = 'Line one\nline two\u2028after a separator\r\nemoji 🎉, quote " and [bold]markup[/bold]'
    mid = mem.add(text, user_id="u", metadata={"note": "ünïcode\n"})["results"][0]["id"]
    path = tmp_path / "x.jsonl"
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        export_jsonl(mem, fh)
    with open(path, encoding="utf-8-sig") as fh:
        assert import_jsonl(fresh, fh)["memories"] == 1
    assert fresh.get(mid) == mem.get(mid)
    assert fresh.get(mid)["memory"] == text
