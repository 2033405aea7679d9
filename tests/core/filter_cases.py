"""One table of filter cases, run against every storage backend.

Each case: (filters, the set of memory texts that must match). The same table
is asserted through ``get_all`` and ``search`` so the semantics cannot drift
between backends or between read paths.
"""

from __future__ import annotations

from typing import Any

SEED: list[tuple[str, dict[str, Any]]] = [
    (
        "alpha note",
        {
            "category": "work",
            "priority": 3,
            "tags": ["a", "b"],
            "name": "Alice Smith",
            "nested": {"lang": "en"},
        },
    ),
    ("beta note", {"category": "home", "priority": 1, "tags": ["b"], "name": "bob"}),
    ("gamma note", {"category": "work", "priority": 5.5}),
    ("delta note", {}),
]
ALL = {t for t, _ in SEED}

CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"category": "work"}, {"alpha note", "gamma note"}),
    ({"category": {"eq": "home"}}, {"beta note"}),
    ({"category": {"ne": "work"}}, {"beta note", "delta note"}),
    ({"priority": {"gt": 1}}, {"alpha note", "gamma note"}),
    ({"priority": {"gte": 3}}, {"alpha note", "gamma note"}),
    ({"priority": {"lt": 3}}, {"beta note"}),
    ({"priority": {"lte": 3}}, {"alpha note", "beta note"}),
    ({"priority": {"gt": 1, "lt": 5}}, {"alpha note"}),
    ({"category": {"in": ["home", "other"]}}, {"beta note"}),
    ({"category": {"nin": ["home"]}}, {"alpha note", "gamma note", "delta note"}),
    ({"tags": {"contains": "a"}}, {"alpha note"}),
    ({"tags": {"contains": "b"}}, {"alpha note", "beta note"}),
    ({"name": {"contains": "Smith"}}, {"alpha note"}),
    ({"name": {"icontains": "BOB"}}, {"beta note"}),
    ({"name": {"contains": "BOB"}}, set()),
    ({"tags": "*"}, {"alpha note", "beta note"}),
    ({"nested.lang": "en"}, {"alpha note"}),
    ({"metadata.category": "home"}, {"beta note"}),
    ({"category": "work", "priority": {"gt": 4}}, {"gamma note"}),
    ({"AND": [{"category": "work"}, {"priority": {"lt": 4}}]}, {"alpha note"}),
    ({"OR": [{"category": "home"}, {"priority": {"gt": 5}}]}, {"beta note", "gamma note"}),
    ({"NOT": [{"category": "work"}]}, {"beta note", "delta note"}),
    (
        {"OR": [{"NOT": [{"tags": "*"}]}, {"name": "bob"}]},
        {"beta note", "gamma note", "delta note"},
    ),
    ({"priority": {"$gte": 5}}, {"gamma note"}),
    ({"memory": {"contains": "eta"}}, {"beta note"}),
    ({"priority": {"gt": "a"}}, set()),  # mixed types never match (no error, no coercion)
    ({"missing": {"ne": 1}}, ALL),
    ({"missing": {"nin": [1]}}, ALL),
    ({"missing": {"eq": None}}, set()),
]

BAD: list[tuple[Any, str]] = [
    ({"category": {"like": "w%"}}, "unknown"),
    ({"category": {"$regex": "w"}}, "unknown"),
    ({"category": {"in": "work"}}, "needs a list"),
    ({"AND": {"category": "work"}}, "non-empty list"),
    ({"OR": []}, "non-empty list"),
    ({"and": [{"category": "work"}]}, "upper-case"),
    ({"AND": ["category"]}, "must be a dict"),
    ({"priority": {"gt": [1]}}, "number or string"),
    ({"name": {"icontains": 3}}, "needs a string"),
    ({"category": {}}, "unknown operator"),
]
