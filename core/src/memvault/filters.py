"""Metadata filters: one parser, one evaluator, the same semantics on every backend.

Why evaluate in Python: the vector backends (SQLite, Chroma) each have their own
filter dialect with subtly different semantics (mem0's ``"*"`` means "exists" on
pgvector and nothing on Qdrant). memvault resolves the scope in the store, then
applies filters with this single evaluator to the source-of-truth rows, so a
filter means the same thing wherever the vectors live.

Grammar (mem0's, plus ``$``-prefixed aliases used by LangGraph):
``{"field": value}`` equality; ``{"field": {"op": value}}`` with op in
eq ne gt gte lt lte in nin contains icontains; ``{"field": "*"}`` field exists;
``{"AND": [f, ...]}``, ``{"OR": [f, ...]}``, ``{"NOT": [f, ...]}`` (NOT negates the
AND of its list). Sibling keys are ANDed.
Field names: ``memory``, ``actor_id``, ``role``, ``created_at``, ``updated_at``,
``categories``, ``importance``, ``hash``, ``value.<path>`` (the structured value),
``metadata.<path>``, or any other name = a metadata key (dotted = nested path,
falling back to a literal dotted key).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from memvault.errors import FilterError
from memvault.inputs import MAX_DEPTH, check_tree
from memvault.text import check_string, shown

Predicate = Callable[[Mapping[str, Any]], bool]
_MISSING = object()
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains")
_LOGICAL = ("AND", "OR", "NOT")
#: Record fields a filter may address directly (everything else is metadata).
RECORD_FIELDS = frozenset(
    {
        "memory",
        "actor_id",
        "role",
        "created_at",
        "updated_at",
        "categories",
        "importance",
        "hash",
        "namespace",
        "key",
        "last_accessed_at",
        "valid_from",
    }
)


def _walk(obj: Any, path: str) -> Any:
    if isinstance(obj, Mapping) and path in obj:  # a literal dotted key wins
        return obj[path]
    cur = obj
    for part in path.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def lookup(record: Mapping[str, Any], field: str) -> Any:
    """The value of ``field`` on a record dict (``_MISSING`` when absent)."""
    if field in RECORD_FIELDS:
        v = record.get(field)
        return _MISSING if v is None else v
    if field == "value" or field.startswith("value."):
        value = record.get("value")
        return (
            (_MISSING if value is None else value)
            if field == "value"
            else _walk(value or {}, field[6:])
        )
    if field.startswith("metadata."):
        return _walk(record.get("metadata") or {}, field[9:])
    return _walk(record.get("metadata") or {}, field)


def _comparable(a: Any, b: Any) -> bool:
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, num) and isinstance(b, num)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def _op(name: str, arg: Any) -> Callable[[Any], bool]:
    if name in ("in", "nin"):
        if not isinstance(arg, list | tuple | set):
            raise FilterError(f"operator {name!r} needs a list, got {type(arg).__name__}")
        options = list(arg)
        if name == "in":
            return lambda v: v is not _MISSING and v in options
        return lambda v: v is _MISSING or v not in options
    if name == "eq":
        return lambda v: v is not _MISSING and v == arg
    if name == "ne":
        return lambda v: v is _MISSING or v != arg
    if name in ("gt", "gte", "lt", "lte"):
        if not isinstance(arg, int | float | str) or isinstance(arg, bool):
            raise FilterError(f"operator {name!r} needs a number or string, got {arg!r}")
        cmp: Callable[[Any, Any], bool] = {
            "gt": lambda x, y: x > y,
            "gte": lambda x, y: x >= y,
            "lt": lambda x, y: x < y,
            "lte": lambda x, y: x <= y,
        }[name]
        return lambda v: v is not _MISSING and _comparable(v, arg) and cmp(v, arg)
    if name in ("contains", "icontains"):
        fold = name == "icontains"
        if fold and not isinstance(arg, str):
            raise FilterError("operator 'icontains' needs a string")
        needle = arg.lower() if fold else arg

        def contains(v: Any) -> bool:
            if isinstance(v, str):
                return isinstance(needle, str) and needle in (v.lower() if fold else v)
            if isinstance(v, list | tuple):
                items = [x.lower() if fold and isinstance(x, str) else x for x in v]
                return needle in items
            return False

        return contains
    raise FilterError(
        f"unknown filter operator {name!r}; use one of {', '.join(OPERATORS)} "
        "(optionally $-prefixed), '*' for 'field exists', or AND / OR / NOT"
    )


def _field_predicate(field: str, cond: Any) -> Predicate:
    if not isinstance(field, str) or not field:
        raise FilterError(f"filter field names must be non-empty strings, got {shown(field)}")
    check_string(field, "a filter field name", error=FilterError)
    # The operand may be a dict / list compared with ==: bound its depth like metadata's.
    # An operand holding NUL is fine: it is only compared, and matches nothing stored.
    check_tree(cond, f"the filter on {shown(field)}", error=FilterError, nul_ok=True)
    if isinstance(cond, str) and cond == "*":
        return lambda r: lookup(r, field) is not _MISSING
    if isinstance(cond, Mapping):
        # A dict is always an operator dict (match nested values with dotted paths).
        bad = [k for k in cond if not (isinstance(k, str) and k.lstrip("$") in OPERATORS)]
        if bad or not cond:
            raise FilterError(
                f"filter on {field!r} has unknown operator(s) {bad or '{}'}; use one of "
                f"{', '.join(OPERATORS)}, or a dotted path such as '{field}.key' to match a "
                "nested value"
            )
        checks = [_op(k.lstrip("$"), v) for k, v in cond.items()]
        return lambda r: all(c(lookup(r, field)) for c in checks)
    eq = _op("eq", cond)
    return lambda r: eq(lookup(r, field))


def compile_filter(filters: Mapping[str, Any] | None, _depth: int = 0) -> Predicate | None:
    """Parse ``filters`` once into a predicate over record dicts (None = match all).

    Raises ``FilterError`` for malformed filters before anything runs, including
    filters nested more than MAX_DEPTH levels (AND / OR / NOT inside each other).
    """
    if filters is None:
        return None
    if not isinstance(filters, Mapping):
        raise FilterError(f"filters must be a dict, got {type(filters).__name__}")
    if _depth >= MAX_DEPTH:
        raise FilterError(
            f"the filter is nested more than {MAX_DEPTH} levels deep; flatten it "
            "(sibling keys AND together, and one OR takes any number of items)"
        )
    parts: list[Predicate] = []
    for key, cond in filters.items():
        if key in _LOGICAL:
            if not isinstance(cond, list | tuple) or not cond:
                raise FilterError(f"{key} takes a non-empty list of filters")
            for c in cond:
                if not isinstance(c, Mapping):
                    raise FilterError(f"each item of {key} must be a dict, got {shown(c)}")
            subs = [compile_filter(c, _depth + 1) or (lambda r: True) for c in cond]
            if key == "AND":
                parts.append(lambda r, s=subs: all(p(r) for p in s))
            elif key == "OR":
                parts.append(lambda r, s=subs: any(p(r) for p in s))
            else:
                parts.append(lambda r, s=subs: not all(p(r) for p in s))
        elif (isinstance(key, str) and key.upper() in _LOGICAL) or key in ("$and", "$or", "$not"):
            raise FilterError(f"logical operators are upper-case: use {key.strip('$').upper()!r}")
        else:
            parts.append(_field_predicate(key, cond))
    if not parts:
        return None
    return lambda r: all(p(r) for p in parts)


def with_namespace(pred: Predicate | None, prefix: Sequence[str] | None) -> Predicate | None:
    """Extend a filter predicate with a namespace-prefix condition."""
    if prefix is None:
        return pred
    if isinstance(prefix, str | bytes) or not isinstance(prefix, Sequence):
        raise FilterError(f"namespace_prefix must be a tuple of strings, got {shown(prefix)}")
    want = tuple(prefix)
    n = len(want)

    def match(view: dict[str, Any]) -> bool:
        ns = view.get("namespace")
        return ns is not None and tuple(ns[:n]) == want and (pred is None or pred(view))

    return match
