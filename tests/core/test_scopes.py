"""Strict scope isolation: explicit cases plus a property-based interleaving test."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvault import Memory, NotFoundError, ScopeError
from memvault.embedding import LocalEmbedder

# The `memory` fixture of this module: every test runs on the sqlite and postgres stores.
from tests.core.backends import memory_per_store  # noqa: F401


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.add("x"),
        lambda m: m.search("x"),
        lambda m: m.get_all(),
        lambda m: m.delete_all(),
        lambda m: m.search("x", filters={"category": "a"}),
    ],
)
def test_every_scoped_operation_requires_a_scope(memory: Memory, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScopeError, match="user_id, agent_id or run_id"):
        call(memory)


def test_scopes_combine_with_and(memory: Memory) -> None:
    memory.add("alice general", user_id="alice")
    memory.add("alice with agent", user_id="alice", agent_id="bot")
    memory.add("alice in run", user_id="alice", agent_id="bot", run_id="r1")
    memory.add("bot for bob", user_id="bob", agent_id="bot")

    def texts(**kw: str) -> set[str]:
        return {r["memory"] for r in memory.get_all(**kw)["results"]}

    assert texts(user_id="alice") == {"alice general", "alice with agent", "alice in run"}
    assert texts(user_id="alice", agent_id="bot") == {"alice with agent", "alice in run"}
    assert texts(agent_id="bot") == {"alice with agent", "alice in run", "bot for bob"}
    assert texts(run_id="r1") == {"alice in run"}
    assert texts(filters={"user_id": "alice", "run_id": "r1"}) == {"alice in run"}


def test_scope_given_both_ways_must_agree(memory: Memory) -> None:
    memory.add("x", user_id="a")
    assert memory.search("x", user_id="a", filters={"user_id": "a"})["results"]
    with pytest.raises(ScopeError, match="given twice"):
        memory.search("x", user_id="a", filters={"user_id": "b"})
    with pytest.raises(ScopeError, match="plain id"):
        memory.get_all(filters={"user_id": {"in": ["a", "b"]}})


def test_metadata_cannot_override_scope(memory: Memory) -> None:
    from memvault import ValidationError

    with pytest.raises(ValidationError, match="scope fields"):
        memory.add("x", user_id="a", metadata={"user_id": "b"})
    mid = memory.add("x", user_id="a")["results"][0]["id"]
    with pytest.raises(ValidationError, match="scope fields"):
        memory.update(mid, metadata={"user_id": "b"})
    assert memory.get(mid)["user_id"] == "a"  # type: ignore[index]


def test_delete_all_never_touches_another_scope(memory: Memory) -> None:
    memory.add(["a1", "a2"], user_id="a")
    memory.add(["b1"], user_id="b")
    memory.add(["a-bot"], user_id="a", agent_id="bot")
    assert memory.delete_all(user_id="a", agent_id="bot")["deleted"] == 1
    assert {r["memory"] for r in memory.get_all(user_id="a")["results"]} == {"a1", "a2"}
    assert memory.delete_all(user_id="a")["deleted"] == 2
    assert [r["memory"] for r in memory.get_all(user_id="b")["results"]] == ["b1"]


USERS = ["u1", "u2", "u3"]
AGENTS = [None, "ag1", "ag2"]
WORDS = ["apple", "river", "guitar", "mountain", "coffee", "python", "winter", "garden"]

op_strategy = st.one_of(
    st.tuples(
        st.just("add"),
        st.sampled_from(USERS),
        st.sampled_from(AGENTS),
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
    ),
    st.tuples(
        st.just("search"), st.sampled_from(USERS), st.sampled_from(AGENTS), st.sampled_from(WORDS)
    ),
    st.tuples(
        st.just("update"), st.sampled_from(USERS), st.integers(0, 50), st.sampled_from(WORDS)
    ),
    st.tuples(st.just("delete"), st.sampled_from(USERS), st.integers(0, 50)),
    st.tuples(st.just("delete_all"), st.sampled_from(USERS), st.sampled_from(AGENTS)),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op_strategy, min_size=5, max_size=25))
def test_property_no_operation_crosses_scopes(
    tmp_path: Path, embedder: LocalEmbedder, ops: list[tuple]
) -> None:  # type: ignore[type-arg]
    """A model of who owns what; every read must match it, every write stay inside."""
    path = tmp_path / f"p{abs(hash(tuple(map(str, ops))))}.db"
    owner: dict[str, tuple[str, str | None]] = {}  # memory id -> (user, agent)
    text: dict[str, str] = {}
    with Memory(path=path, embedder=embedder) as m:
        for op in ops:
            kind, user = op[0], op[1]
            mine = [i for i, (u, _) in owner.items() if u == user]
            if kind == "add":
                agent, words = op[2], op[3]
                content = " ".join(words) + f" ({user})"
                for r in m.add(content, user_id=user, agent_id=agent)["results"]:
                    if r["event"] == "ADD":
                        owner[r["id"]], text[r["id"]] = (user, agent), content
                    assert owner[r["id"]] == (user, agent)
            elif kind == "search":
                kw = {"user_id": user} | ({"agent_id": op[2]} if op[2] else {})
                for r in m.search(op[3], **kw)["results"]:
                    assert owner[r["id"]][0] == user
                    assert op[2] is None or owner[r["id"]][1] == op[2]
                    assert r["user_id"] == user
            elif kind == "update" and owner:
                target = sorted(owner)[op[2] % len(owner)]
                if owner[target][0] == user:
                    m.update(target, f"{op[3]} updated", user_id=user)
                    text[target] = f"{op[3]} updated"
                else:
                    with pytest.raises(NotFoundError):
                        m.update(target, "hijack", user_id=user)
            elif kind == "delete" and owner:
                target = sorted(owner)[op[2] % len(owner)]
                if owner[target][0] == user:
                    m.delete(target, user_id=user)
                    del owner[target], text[target]
                else:
                    with pytest.raises(NotFoundError):
                        m.delete(target, user_id=user)
            elif kind == "delete_all":
                agent = op[2]
                kw = {"user_id": user} | ({"agent_id": agent} if agent else {})
                m.delete_all(**kw)
                for i in mine:
                    if agent is None or owner[i][1] == agent:
                        del owner[i], text[i]
            # After every step the store equals the model, scope by scope.
            for u in USERS:
                got = {r["id"]: r["memory"] for r in m.get_all(user_id=u, top_k=1000)["results"]}
                assert got == {i: text[i] for i, (o, _) in owner.items() if o == u}
