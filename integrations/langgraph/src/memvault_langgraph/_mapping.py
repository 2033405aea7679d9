"""Pure translations between LangGraph's store vocabulary and memvault's.

Why a separate module: the store's ``batch`` and ``abatch`` must agree exactly,
so everything that does not touch I/O (scope mapping, filter translation, the
texts an item is indexed by, record -> ``Item``) lives here once and both
drivers call it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from langgraph.store.base import Item, SearchItem, get_text_at_path, tokenize_path

from memvault.errors import ScopeError
from memvault.scope import check_id
from memvault.text import MAX_TEXT_BYTES

#: The comparison operators LangGraph's reference stores accept in ``filter``.
LANGGRAPH_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})


# -- scope ------------------------------------------------------------------------------------
def user_of(namespace: Sequence[str], user_label: int | None) -> str | None:
    """The memvault ``user_id`` a namespace maps to, or ``None``.

    Why: langmem and most LangGraph apps key memories by ``("memories", user_id)``;
    mapping that label to memvault's user scope makes the items show up in the
    core's per-user search, export and CLI. A label that is not a valid memvault
    id (whitespace, too long) simply maps to no user: the namespace still
    addresses the item exactly, because the mapping is a pure function of it.
    """
    if user_label is None or len(namespace) <= user_label:
        return None
    label = namespace[user_label]
    try:
        return check_id(label, "user_id")
    except ScopeError:
        return None


def prefix_user(prefix: Sequence[str], user_label: int | None) -> str | None:
    """The user a search/list prefix pins (``None`` when the prefix leaves it open).

    A ``"*"`` label in a ``list_namespaces`` prefix is a wildcard, so it pins nothing.
    """
    if user_label is None or len(prefix) <= user_label or prefix[user_label] == "*":
        return None
    return user_of(prefix, user_label)


# -- filters ----------------------------------------------------------------------------------
def translate_filter(flt: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """LangGraph ``filter`` (top-level keys of the value) -> memvault ``filters``.

    Semantics follow ``InMemoryStore``: a scalar means equality, a dict without
    ``$`` keys is a recursive partial match (flattened to dotted ``value.a.b``
    paths), a list/tuple is an exact element-wise match, and a dict of ``$eq $ne
    $gt $gte $lt $lte`` compares. Any other ``$`` operator raises ``ValueError``
    (as InMemoryStore does), before anything is read. Equality with ``None``
    also matches a missing key, as ``dict.get`` does in InMemoryStore.
    """
    if not flt:
        return None
    conds: list[dict[str, Any]] = []
    for key, cond in flt.items():
        _translate_field(f"value.{key}", cond, conds)
    if not conds:
        return None
    return conds[0] if len(conds) == 1 else {"AND": conds}


def _translate_field(field: str, cond: Any, out: list[dict[str, Any]]) -> None:
    if isinstance(cond, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in cond):
            for op, arg in cond.items():
                if op not in LANGGRAPH_OPERATORS:
                    raise ValueError(f"Unsupported operator: {op}")
                out.append(_compare(field, op, _plain(arg)))
            return
        if not cond:  # {} matches any dict value: "the field exists"
            out.append({field: "*"})
            return
        for sub, sub_cond in cond.items():
            _translate_field(f"{field}.{sub}", sub_cond, out)
        return
    out.append(_compare(field, "$eq", _plain(cond)))


def _compare(field: str, op: str, arg: Any) -> dict[str, Any]:
    # Always an operator dict: a bare "*" would mean "field exists" to memvault.
    if arg is None and op == "$eq":  # missing key == None in InMemoryStore
        return {"OR": [{field: {"$eq": None}}, {"NOT": [{field: "*"}]}]}
    if arg is None and op == "$ne":
        return {"AND": [{field: "*"}, {field: {"$ne": None}}]}
    return {field: {op: arg}}


def _plain(value: Any) -> Any:
    """Tuples compare equal to the JSON lists they were stored as."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# -- what an item is indexed by ----------------------------------------------------------------
def tokenized_fields(fields: Sequence[str] | None) -> list[tuple[str, Any]]:
    """IndexConfig ``fields`` (default ``["$"]``) tokenized once, as InMemoryStore does."""
    return [(p, tokenize_path(p)) if p != "$" else (p, p) for p in (fields or ["$"])]


def value_text(value: Mapping[str, Any]) -> str:
    """A readable rendering of a value: its scalar leaves, one per line.

    Why not JSON: this text is what memvault's keyword index, ``memvault search``,
    the history and exports show. ``{"content": "likes tea"}`` (langmem's shape)
    reads as ``likes tea``, and a JSON key never matches a query word. Values
    without scalar leaves fall back to their JSON.
    """
    leaves = [str(v) for v in _leaves(value)]
    text = "\n".join(t for t in leaves if t.strip())
    if not text.strip():
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return clip(text)


def _leaves(obj: Any) -> Iterator[Any]:
    if isinstance(obj, Mapping):
        for v in obj.values():
            yield from _leaves(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _leaves(v)
    elif isinstance(obj, float) and not math.isfinite(obj):
        return
    elif obj is not None:
        yield obj


def index_texts(value: Mapping[str, Any], paths: Sequence[tuple[str, Any]]) -> list[str]:
    """The texts to embed for ``value``: one per path match (``[*]`` gives several).

    ``"$"`` (the whole value) is embedded as :func:`value_text`, the rest exactly
    as LangGraph extracts them (``get_text_at_path``). Blank texts are dropped:
    they carry no meaning and some embedders return a zero vector for them.
    """
    texts: list[str] = []
    for path, tokens in paths:
        found = [value_text(value)] if path == "$" else get_text_at_path(value, tokens)
        texts.extend(clip(t) for t in found if t and t.strip())
    return texts


def clip(text: str) -> str:
    """Cut ``text`` to memvault's per-memory text limit (on a UTF-8 boundary)."""
    raw = text.encode("utf-8")
    if len(raw) <= MAX_TEXT_BYTES:
        return text
    return raw[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")


# -- records -> items -------------------------------------------------------------------------
def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def to_item(record: Mapping[str, Any]) -> Item:
    """A memvault keyed record as LangGraph's ``Item``."""
    return Item(
        value=record.get("value") or {},
        key=record["key"],
        namespace=tuple(record["namespace"]),
        created_at=_when(record["created_at"]),
        updated_at=_when(record["updated_at"]),
    )


def to_search_item(record: Mapping[str, Any], score: float | None) -> SearchItem:
    """A memvault keyed record (with its search score, if ranked) as ``SearchItem``."""
    return SearchItem(
        namespace=tuple(record["namespace"]),
        key=record["key"],
        value=record.get("value") or {},
        created_at=_when(record["created_at"]),
        updated_at=_when(record["updated_at"]),
        score=score,
    )
