"""The mem0-shaped public API: shapes, events, history, lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import ConfigError, Memory, NotFoundError
from memvault.embedding import LocalEmbedder

# The `memory` fixture of this module: every test runs on the sqlite and postgres stores.
from tests.core.backends import memory_per_store  # noqa: F401

MEM0_FIELDS = {
    "id",
    "memory",
    "hash",
    "metadata",
    "created_at",
    "updated_at",
    "user_id",
    "agent_id",
    "run_id",
}


def test_add_returns_mem0_shape_and_search_finds_it(memory: Memory) -> None:
    res = memory.add("I am allergic to peanuts", user_id="alice", metadata={"src": "chat"})
    (item,) = res["results"]
    assert item["event"] == "ADD" and item["memory"] == "I am allergic to peanuts"
    hits = memory.search("what food allergies do I have", user_id="alice")["results"]
    assert hits[0]["id"] == item["id"]
    assert MEM0_FIELDS | {"score"} <= hits[0].keys()
    assert 0 < hits[0]["score"] <= 1
    assert hits[0]["metadata"] == {"src": "chat"}
    assert hits[0]["user_id"] == "alice" and hits[0]["agent_id"] is None


def test_message_list_keeps_role_and_name_and_skips_system(memory: Memory) -> None:
    res = memory.add(
        [
            {"role": "system", "content": "You are helpful"},
            {"role": "user", "content": "My cat is named Miso", "name": "Dana"},
            {"role": "assistant", "content": "Miso is a lovely name"},
        ],
        user_id="dana",
        infer=False,
    )
    events = res["results"]
    assert [e["memory"] for e in events] == ["My cat is named Miso", "Miso is a lovely name"]
    got = memory.get(events[0]["id"])
    assert got is not None and got["role"] == "user" and got["actor_id"] == "Dana"
    assert memory.get(events[1]["id"])["role"] == "assistant"  # type: ignore[index]


def test_exact_duplicate_in_scope_is_not_stored_twice(memory: Memory) -> None:
    first = memory.add("likes green tea", user_id="u1")["results"][0]
    again = memory.add("likes green tea", user_id="u1")["results"][0]
    assert again == {"id": first["id"], "memory": "likes green tea", "event": "NONE"}
    other = memory.add("likes green tea", user_id="u2")["results"][0]
    assert other["event"] == "ADD" and other["id"] != first["id"]
    batch = memory.add(["plays piano", "plays piano"], user_id="u1")["results"]
    assert [e["event"] for e in batch] == ["ADD", "NONE"] and batch[0]["id"] == batch[1]["id"]
    assert len(memory.get_all(user_id="u1")["results"]) == 2


def test_get_all_newest_first_and_limit(memory: Memory) -> None:
    for i in range(5):
        memory.add(f"fact number {i}", user_id="u")
    got = memory.get_all(user_id="u")["results"]
    assert [g["memory"] for g in got] == [f"fact number {i}" for i in reversed(range(5))]
    assert len(memory.get_all(user_id="u", top_k=2)["results"]) == 2
    assert len(memory.get_all(filters={"user_id": "u"}, limit=3)["results"]) == 3
    assert all("score" not in g for g in got)


def test_update_history_and_delete_trail(memory: Memory) -> None:
    mid = memory.add("works at Acme", user_id="u", metadata={"k": 1})["results"][0]["id"]
    memory.update(mid, "works at Globex", metadata={"k": 2, "extra": True})
    got = memory.get(mid)
    assert got is not None and got["memory"] == "works at Globex"
    assert got["metadata"] == {"k": 2, "extra": True}
    assert memory.search("Globex employer", user_id="u")["results"][0]["id"] == mid
    assert memory.delete(mid)["message"] == "Memory deleted successfully!"
    assert memory.get(mid) is None
    trail = memory.history(mid)
    assert [h["event"] for h in trail] == ["ADD", "UPDATE", "DELETE"]
    assert trail[1]["old_memory"] == "works at Acme" and trail[1]["new_memory"] == "works at Globex"
    assert trail[2]["old_memory"] == "works at Globex" and trail[2]["is_deleted"] is True
    assert trail[0]["created_at"] <= trail[1]["created_at"] <= trail[2]["created_at"]


def test_changed_by_is_recorded_as_actor_of_the_change(memory: Memory) -> None:
    mid = memory.add("x1", user_id="u", changed_by="importer")["results"][0]["id"]
    memory.update(mid, "x2", changed_by="admin")
    assert [h["changed_by"] for h in memory.history(mid)] == ["importer", "admin"]


def test_by_id_ops_respect_a_given_scope(memory: Memory) -> None:
    mid = memory.add("secret of alice", user_id="alice")["results"][0]["id"]
    assert memory.get(mid, user_id="bob") is None
    with pytest.raises(NotFoundError):
        memory.update(mid, "hacked", user_id="bob")
    with pytest.raises(NotFoundError):
        memory.delete(mid, user_id="bob")
    assert memory.get(mid, user_id="alice")["memory"] == "secret of alice"  # type: ignore[index]


def test_reset_empties_everything(memory: Memory) -> None:
    memory.add("a", user_id="u")
    memory.reset()
    assert memory.get_all(user_id="u")["results"] == []
    assert memory.stats()["memories"] == 0


def test_persistence_across_instances(store_path: Path, embedder: LocalEmbedder) -> None:
    with Memory(path=store_path, embedder=embedder) as m:
        mid = m.add("persisted fact about volcanoes", user_id="u")["results"][0]["id"]
    with Memory(path=store_path, embedder=embedder) as m:
        assert m.search("volcano", user_id="u")["results"][0]["id"] == mid


def test_default_home_is_used_without_arguments(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with Memory(embedder=embedder) as m:
        m.add("in the default home", user_id="u")
        assert Path(m.path) == tmp_path / "memvault-home" / "memvault.db"
        assert Path(m.path).exists()


def test_from_config_accepts_mem0_shape(tmp_path: Path) -> None:
    cfg = {
        "version": "v1.1",
        "vector_store": {"provider": "sqlite", "config": {}},
        "embedder": {"provider": "local", "config": {}},
        "history_db_path": str(tmp_path / "h.db"),
    }
    with Memory.from_config(cfg) as m:
        assert m.path == str(tmp_path / "h.db")


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [
        ({"vector_store": {"provider": "qdrant", "config": {}}}, "qdrant"),
        ({"embedder": {"provider": "cohere", "config": {}}}, "cohere"),
        ({"llm": {"provider": "anthropic", "config": {}}}, "anthropic"),
        ({"graph_store": {"provider": "neo4j"}}, "graph_store"),
        ({"vector_stor": {}}, "vector_stor"),
        ("not a dict", "dict"),
    ],
)
def test_from_config_rejects_unknown_providers_clearly(cfg: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Memory.from_config(cfg)  # type: ignore[arg-type]


def test_stats_counts(memory: Memory) -> None:
    memory.add(["one", "two"], user_id="u")
    s = memory.stats()
    assert s["memories"] == 2 and s["active"] == 2 and s["history_events"] == 2
    assert s["spaces"]["default"][0] == 384


def test_mem0_embedder_config_is_translated(tmp_path: Path) -> None:
    from tests.support.fake_openai import FakeOpenAI

    with FakeOpenAI(embedding_dim=64) as srv:
        cfg = {
            "path": str(tmp_path / "e.db"),
            "embedder": {
                "provider": "openai",
                "config": {
                    "model": "text-embedding-3-small",
                    "openai_base_url": srv.base_url,
                    "api_key": "sk-test",
                    "embedding_dims": 64,
                },
            },
        }
        with Memory.from_config(cfg) as m:
            m.add("remote embeddings work", user_id="u")
            assert m.search("remote embeddings", user_id="u")["results"][0]["score"] > 0
            assert m.stats()["spaces"]["default"][0] == 64
        assert srv.count("embeddings") >= 2
    with pytest.raises(ConfigError, match="bad options"):
        Memory.from_config({"embedder": {"provider": "local", "config": {"model": "x"}}})


def test_a_store_refuses_a_different_embedder(store_path: Path, embedder: LocalEmbedder) -> None:
    from memvault.embedding import CallableEmbedder

    with Memory(path=store_path, embedder=embedder) as m:
        m.add("made with MiniLM", user_id="u")
    other = CallableEmbedder(lambda texts: [[1.0] + [0.0] * 383 for _ in texts], 384, name="x")
    with pytest.raises(ConfigError, match="minilm"):
        Memory(path=store_path, embedder=other)
    with Memory(path=store_path, embedder=embedder) as m:  # the right one still opens
        assert m.count(user_id="u") == 1
