"""Property-based bad input (issue 9, point 5): random values into every public entry.

The invariant, for every call: it returns, or it raises a ``MemvaultError`` subclass, and
a call that raises leaves the store's file exactly as it was (every table's rows, compared
by ``tests.core.digest``). Any other exception (``UnicodeEncodeError``, ``RecursionError``,
``OverflowError``, ``TypeError``...) fails the test with the shrunk input.

Why one wild argument among valid ones: a call whose every argument is random fails at
its first check, so the later checks would rarely be reached; each argument is drawn
from "valid" or "anything" so every validator meets random input.

Deterministic (``derandomize``, no example database) and bounded (``EXAMPLES`` per test)
so CI sees the same inputs every run, in well under 30 s. Set
``MEMVAULT_BAD_INPUT_TALLY=<file>`` to write what was tried (docs/reliability.md).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memvault import Memory, MemvaultError
from memvault.embedding import LocalEmbedder
from memvault.filters import OPERATORS
from memvault.inputs import MAX_METADATA_BYTES
from memvault.text import MAX_TEXT_BYTES
from tests.core.digest import store_digest

#: Examples per test (one call each; ten tests).
EXAMPLES = 100

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # One store serves every example of a test: that is the point (failures must not touch it).
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

#: Calls made, by outcome ("ok" or the error class); written out when asked (see module doc).
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _write_tally() -> Iterator[None]:
    yield
    target = os.environ.get("MEMVAULT_BAD_INPUT_TALLY")
    if target:
        Path(target).write_text(json.dumps(dict(TALLY), indent=1, sort_keys=True))


def attempt(m: Memory, call: Callable[[], Any]) -> Any:
    """Run ``call``: success, or a ``MemvaultError`` with a message and the store unchanged."""
    before = store_digest(m)
    TALLY["tried"] += 1
    try:
        out = call()
    except MemvaultError as e:
        TALLY[type(e).__name__] += 1
        assert str(e), f"{type(e).__name__} without a message"
        assert store_digest(m) == before, f"a failing call changed the store: {e}"
        return e
    TALLY["ok"] += 1
    return out


# -- strategies ------------------------------------------------------------------------------
#: Characters that broke something once (lone surrogates, NUL, separators), half the time;
#: otherwise any character of any Unicode category (Cs and Cc included).
NASTY_CHARS = ["\ud800", "\udfff", "\udcff", "\x00", "\x1f", "\x7f", "\u2028", " ", ".", "$"]
ANY_CHAR = st.one_of(
    st.sampled_from(NASTY_CHARS),
    st.characters(categories=["L", "M", "N", "P", "S", "Z", "C"]),
)
#: Nesting depths: small ones, the limit's neighbours, and the ones that used to recurse out.
DEPTHS = st.one_of(st.integers(0, 40), st.sampled_from([31, 32, 33, 1000, 2000, 5000]))
#: Decimal exponents: ordinary numbers and ints past the 4,300-digit str() limit.
EXPONENTS = st.one_of(st.integers(0, 30), st.sampled_from([255, 256, 257, 400, 4300, 4301, 6000]))


def any_text(max_size: int) -> st.SearchStrategy[str]:
    """Strings of ``ANY_CHAR``, joined from a list so the nasty characters keep their weight
    (``st.text`` merges an alphabet into code point ranges, where they become rare)."""
    return st.lists(ANY_CHAR, max_size=max_size).map("".join)


ANY_TEXT = any_text(30)
VALID_TEXT = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30).filter(str.strip)


def repeated(pieces: list[str], counts: list[int]) -> st.SearchStrategy[str]:
    """Huge strings, built by repetition (drawing them char by char would be slow)."""
    return st.builds(lambda p, n: p * n, st.sampled_from(pieces), st.sampled_from(counts))


HUGE_TEXT = repeated(
    ["a", "é", "字 ", "\x00", "\ud800"], [MAX_TEXT_BYTES // 3, MAX_TEXT_BYTES + 1, 10**6]
)
NOT_TEXT = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=2),
)
MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant", "system", "", 3, "\ud800"]),
        "content": ANY_TEXT,
    },
    optional={
        "name": st.one_of(ANY_TEXT, st.integers()),
        "timestamp": st.one_of(st.integers(), ANY_TEXT),
    },
)
TEXTS = st.one_of(ANY_TEXT, VALID_TEXT, HUGE_TEXT, NOT_TEXT, MESSAGE, st.lists(MESSAGE, max_size=3))
MESSAGES = st.one_of(VALID_TEXT, TEXTS)

VALID_ID = st.sampled_from(["u", "u2", "agent-7", 42])
WILD_ID = st.one_of(
    any_text(10),
    st.integers(),
    st.builds(lambda k: 10**k, EXPONENTS),
    repeated(["x", " ", "\x00"], [256, 257, 10_000]),
    st.booleans(),
    st.floats(),
    st.lists(st.text(max_size=3), max_size=2),
    st.none(),
)
IDS = st.one_of(VALID_ID, WILD_ID)

KEYS = st.one_of(
    any_text(8),
    st.sampled_from(["user_id", "agent_id", "run_id", "", "a.b", "$and", "k"]),
    st.integers(),
    st.none(),
    st.booleans(),
    st.tuples(st.integers()),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.builds(lambda k: 10**k, EXPONENTS),
    st.floats(),  # NaN and infinities included
    ANY_TEXT,
    st.binary(max_size=4),
    st.datetimes(),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(KEYS, inner, max_size=3),
        st.tuples(inner, inner),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=12,
)


def deep(depth: int, kind: str) -> Any:
    """``depth`` levels of dicts or lists (built without recursion)."""
    out: Any = "leaf"
    for _ in range(depth):
        out = {"a": out} if kind == "dict" else [out]
    return out


def cyclic() -> dict[str, Any]:
    d: dict[str, Any] = {"k": 1}
    d["self"] = d
    return d


DEEP = st.builds(deep, DEPTHS, st.sampled_from(["dict", "list"]))
HUGE_METADATA = st.builds(
    lambda n, c: {"k": c * n},
    st.sampled_from([MAX_METADATA_BYTES - 12, MAX_METADATA_BYTES, 10**7]),
    st.sampled_from(["a", "é", "\x00"]),
)
METADATA = st.one_of(
    st.dictionaries(KEYS, TREES, max_size=4),
    st.builds(lambda v: {"k": v}, DEEP),
    HUGE_METADATA,
    st.builds(cyclic),
    TREES,
)
VALID_METADATA = st.one_of(st.none(), st.dictionaries(st.sampled_from(["k", "n"]), st.integers()))

FIELDS = st.one_of(
    st.sampled_from(
        [
            *("k", "n", "tags", "meta.x", "metadata.k", "value.v", "memory", "created_at"),
            *("importance", "categories", "role", "namespace", "user_id", "agent_id", "run_id"),
        ]
    ),
    any_text(6),
    st.integers(),
    st.none(),
)
OPS = st.one_of(
    st.sampled_from(OPERATORS),
    st.sampled_from([f"${op}" for op in OPERATORS]),
    st.sampled_from(["$foo", "AND", "", "EQ", "$", "exists"]),
    st.integers(),
)
CONDITIONS = st.one_of(
    SCALARS,
    st.just("*"),
    st.dictionaries(OPS, st.one_of(SCALARS, st.lists(SCALARS, max_size=3), TREES), max_size=2),
    TREES,
)
LEAF_FILTERS = st.dictionaries(FIELDS, CONDITIONS, max_size=2)
LOGICAL = st.sampled_from(["AND", "OR", "NOT", "and", "$or", "Not"])
FILTER_TREES = st.recursive(
    LEAF_FILTERS,
    lambda inner: st.dictionaries(
        LOGICAL, st.one_of(st.lists(inner, max_size=3), inner, SCALARS), max_size=2
    ),
    max_leaves=8,
)


def deep_filter(depth: int, op: str) -> dict[str, Any]:
    out: dict[str, Any] = {"k": 1}
    for _ in range(depth):
        out = {op: [out]}
    return out


FILTERS = st.one_of(
    FILTER_TREES,
    st.builds(deep_filter, DEPTHS, st.sampled_from(["AND", "OR", "NOT"])),
    st.builds(lambda c: {"k": c}, DEEP),
    st.lists(LEAF_FILTERS, max_size=2),
    ANY_TEXT,
    st.integers(),
)

OFFSETS = st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439))
TIMES = st.one_of(
    st.integers(),
    st.builds(lambda k, sign: sign * 10**k, EXPONENTS, st.sampled_from([1, -1])),
    st.sampled_from([-1e20, 1e20, float("inf"), float("-inf"), float("nan"), 253402300800]),
    st.floats(),  # any magnitude, NaN, infinities
    st.datetimes(timezones=st.one_of(st.none(), OFFSETS)),
    st.builds(
        lambda d, tz: d.replace(tzinfo=tz), st.sampled_from([datetime.min, datetime.max]), OFFSETS
    ),
    st.dates(),
    st.sampled_from([date.min, date.max]),
    st.datetimes(timezones=st.one_of(st.none(), OFFSETS)).map(datetime.isoformat),
    st.dates().map(date.isoformat),
    st.sampled_from(
        [
            *("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2024-02-30"),
            *("2024-01-01Z", "1e20", "2024-01-01\x00", "2024-01-01\ud800", "9999-12-31"),
        ]
    ),
    ANY_TEXT,
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)

NAMESPACES = st.one_of(
    st.just(("docs",)),
    st.lists(st.one_of(ANY_TEXT, st.integers(), st.none()), max_size=3).map(tuple),
    ANY_TEXT,
    st.integers(),
)
TTLS = st.one_of(st.none(), st.integers(), st.floats(), st.builds(lambda k: 10**k, EXPONENTS))


# -- the store every example of a test shares ----------------------------------------------------
@pytest.fixture
def vault(memory: Memory) -> tuple[Memory, str]:
    """A store with memories whose metadata gives filters something to evaluate."""
    rows = [
        ("likes tea", {"k": 1, "n": 2.5, "tags": ["a", "b"], "meta": {"x": "y"}}),
        ("lives in Lyon", {"k": "1", "n": None, "tags": "a"}),
        ("plays chess", {}),
    ]
    ids = [memory.add(text, user_id="u", metadata=meta)["results"][0]["id"] for text, meta in rows]
    memory.put(("docs",), "k", {"v": [1, {"w": "x"}]}, user_id="u", metadata={"k": 2})
    reseed_victim(memory)
    return memory, ids[0]


def reseed_victim(m: Memory) -> None:
    """``delete_all`` examples delete from user "victim": keep something there to filter."""
    if not m.count(user_id="victim"):
        m.add("victim note", user_id="victim", metadata={"k": 1})
        m.add("other victim note", user_id="victim", metadata={"k": 2})


# -- properties ----------------------------------------------------------------------------------
@SETTINGS
@given(
    messages=MESSAGES,
    user_id=IDS,
    metadata=st.one_of(VALID_METADATA, METADATA),
    timestamp=st.one_of(st.none(), TIMES),
    expiration=st.one_of(st.none(), TIMES),
    vectors=st.booleans(),
)
def test_add_takes_anything(
    vault: tuple[Memory, str],
    messages: Any,
    user_id: Any,
    metadata: Any,
    timestamp: Any,
    expiration: Any,
    vectors: bool,
) -> None:
    m, _ = vault
    byo = {"embeddings": [[1.0, 0.5]], "vector_space": "byo"} if vectors else {}
    attempt(
        m,
        lambda: m.add(
            messages,
            user_id=user_id,
            metadata=metadata,
            timestamp=timestamp,
            expiration_date=expiration,
            **byo,
        ),
    )


@SETTINGS
@given(value=IDS, field=st.sampled_from(["user_id", "agent_id", "run_id"]), op=st.integers(0, 9))
def test_ids_anywhere(vault: tuple[Memory, str], value: Any, field: str, op: int) -> None:
    m, _ = vault
    scoped = {field: value}
    calls: list[Callable[[], Any]] = [
        lambda: m.add("note", **scoped),
        lambda: m.search("tea", **scoped),
        lambda: m.get_all(**scoped),
        lambda: m.count(**scoped),
        lambda: m.delete_all(**scoped),
        lambda: m.get(value),
        lambda: m.history(value),
        lambda: m.delete(value),
        lambda: m.update(value, "new text"),
        lambda: m.touch([value]),
    ]
    attempt(m, calls[op])


@SETTINGS
@given(metadata=METADATA, op=st.integers(0, 4))
def test_metadata_anywhere(vault: tuple[Memory, str], metadata: Any, op: int) -> None:
    m, mid = vault
    calls: list[Callable[[], Any]] = [
        lambda: m.add("with metadata", user_id="u", metadata=metadata),
        lambda: m.update(mid, metadata=metadata),
        lambda: m.put(("docs",), "meta", {"v": 1}, user_id="u", metadata=metadata),
        lambda: m.put(("docs",), "value", metadata, user_id="u", text="a value"),
        lambda: m.add(
            "byo", user_id="u", metadata=metadata, embeddings=[[0.0, 1.0]], vector_space="byo"
        ),
    ]
    attempt(m, calls[op])


@SETTINGS
@given(filters=FILTERS, op=st.integers(0, 3))
def test_filters_anywhere(vault: tuple[Memory, str], filters: Any, op: int) -> None:
    m, _ = vault
    reseed_victim(m)
    calls: list[Callable[[], Any]] = [
        lambda: m.search("tea", user_id="u", filters=filters),
        lambda: m.get_all(user_id="u", filters=filters),
        lambda: m.count(user_id="u", filters=filters),
        lambda: m.delete_all(user_id="victim", filters=filters),
    ]
    attempt(m, calls[op])


@SETTINGS
@given(when=TIMES, op=st.integers(0, 8))
def test_times_anywhere(vault: tuple[Memory, str], when: Any, op: int) -> None:
    m, mid = vault
    calls: list[Callable[[], Any]] = [
        lambda: m.add("timed", user_id="u", timestamp=when),
        lambda: m.add("expiring", user_id="u", expiration_date=when),
        lambda: m.add([{"role": "user", "content": "said then", "timestamp": when}], user_id="u"),
        lambda: m.search("tea", user_id="u", as_of=when),
        lambda: m.get_all(user_id="u", as_of=when),
        lambda: m.put(("docs",), "timed", {"v": 1}, user_id="u", timestamp=when),
        lambda: m.update(mid, expiration_date=when),
        lambda: m.add(
            "byo timed", user_id="u", timestamp=when, embeddings=[[1.0, 1.0]], vector_space="byo"
        ),
        lambda: m.put(("docs",), "ttl", {"v": 1}, user_id="u", ttl_seconds=when),
    ]
    attempt(m, calls[op])


@SETTINGS
@given(text=TEXTS, op=st.integers(0, 4))
def test_text_anywhere(vault: tuple[Memory, str], text: Any, op: int) -> None:
    m, mid = vault
    calls: list[Callable[[], Any]] = [
        lambda: m.add(text, user_id="u"),
        lambda: m.search(text, user_id="u"),
        lambda: m.update(mid, text),
        lambda: m.put(("docs",), "text", {"v": 1}, user_id="u", text=text),
        lambda: m.put(("docs",), "index", {"v": 1}, user_id="u", index=[text]),
    ]
    attempt(m, calls[op])


@SETTINGS
@given(
    namespace=NAMESPACES,
    key=st.one_of(st.just("k"), WILD_ID),
    value=st.one_of(st.just({"v": 1}), TREES, DEEP),
    ttl=TTLS,
    op=st.integers(0, 2),
)
def test_keyed_records_take_anything(
    vault: tuple[Memory, str], namespace: Any, key: Any, value: Any, ttl: Any, op: int
) -> None:
    m, _ = vault
    calls: list[Callable[[], Any]] = [
        lambda: m.put(namespace, key, value, user_id="u", ttl_seconds=ttl),
        lambda: m.get_key(namespace, key, user_id="u"),
        lambda: m.delete_key(namespace, key, user_id="u"),
    ]
    attempt(m, calls[op])


ROWS = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "user_id": IDS,
            "text": TEXTS,
            "messages": st.lists(MESSAGE, max_size=2),
            "metadata": METADATA,
            "timestamp": TIMES,
        },
    ),
    min_size=1,
    max_size=3,
)


@SETTINGS
@given(rows=ROWS)
def test_ingest_rows_take_anything(vault: tuple[Memory, str], rows: list[dict[str, Any]]) -> None:
    """A bad row is a per-row error in the report; a run that stored nothing wrote nothing."""
    m, _ = vault
    before = store_digest(m)
    report = attempt(m, lambda: m.ingest(rows))
    if not isinstance(report, MemvaultError) and report.done == 0:
        assert store_digest(m) == before, report.errors


PATHS = st.one_of(
    any_text(12).map(lambda s: s.replace("/", "_")),  # stays inside tmp
    repeated(["a", "é"], [300]),  # longer than a file name may be
    st.integers(),
    st.binary(max_size=6),
    st.lists(st.text(max_size=3), max_size=2),
    st.floats(),
)


@SETTINGS
@given(path=PATHS)
def test_store_paths(tmp_path: Path, embedder: LocalEmbedder, path: Any) -> None:
    """Any ``path=``: a store opens, or a ``MemvaultError``; a refused path creates nothing."""
    where = str(tmp_path / path) if isinstance(path, str) else path
    before = sorted(os.listdir(os.fsencode(tmp_path)))
    TALLY["tried"] += 1
    try:
        m = Memory(path=where, embedder=embedder)
    except MemvaultError as e:
        TALLY[type(e).__name__] += 1
        assert sorted(os.listdir(os.fsencode(tmp_path))) == before, e
        return
    TALLY["ok"] += 1
    m.close()
