"""Text processing for the keyword index: tokens, stopwords, stems, validation.

Why our own analyser instead of SQLite's: the retrieval study
(shared/reference/retrieval.md) measured that a large stopword list plus
question-scaffolding words and Snowball stemming are worth ~6 points of recall@10
over plain BM25. FTS5 then indexes the already-analysed terms.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

import Stemmer

from memvault.errors import ValidationError

if TYPE_CHECKING:  # scope.py validates ids with the helpers below
    from memvault.scope import Scope

#: Longest memory / message text accepted, in UTF-8 bytes. Longer input is a
#: document, not a memory: split it (or use ingest) instead.
MAX_TEXT_BYTES = 64 * 1024

# NLTK's English list (179 words, as bm25s ships it as STOPWORDS_EN_PLUS) ...
_NLTK_EN = """
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
yourselves he him his himself she she's her hers herself it it's its itself they them their
theirs themselves what which who whom this that that'll these those am is are was were be been
being have has had having do does did doing a an the and but if or because as until while of at
by for with about against between into through during before after above below to from up down
in out on off over under again further then once here there when where why how all any both each
few more most other some such no nor not only own same so than too very s t can will just don
don't should should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn
doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't needn
needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
"""
# ... plus the words questions are built from, which carry no topic.
_QUESTION_WORDS = """
what when where who whom whose which why how did does do is are was were has have had would
could should might kind type sort likely
"""
STOPWORDS: frozenset[str] = frozenset((_NLTK_EN + _QUESTION_WORDS).split())

_TOKEN = re.compile(r"\b\w\w+\b")
_local = threading.local()


def _stemmer() -> Stemmer.Stemmer:
    # PyStemmer objects keep a cache and are not thread-safe: one per thread.
    st = getattr(_local, "stemmer", None)
    if st is None:
        st = _local.stemmer = Stemmer.Stemmer("english")
    return st


def analyze(text: str) -> list[str]:
    """Lower-case, tokenise, drop stopwords, stem. The terms BM25 sees."""
    tokens = [t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS]
    return _stemmer().stemWords(tokens) if tokens else []


def fts_document(text: str) -> str:
    """The analysed terms as one space-separated string for the FTS5 column."""
    return " ".join(analyze(text))


def fts_scope_terms(scope: Scope) -> str:
    """The keyword index's scope column: one opaque token per scope id that is set.

    Hashed so any id (punctuation, other scripts) becomes one plain token that the
    tokenizer keeps whole; a collision could only widen the FTS candidates, and the
    exact ids are re-checked in SQL.
    """
    return " ".join(_scope_token(f, v) for f, v in scope.items())


def fts_scope_query(scope: Scope) -> str:
    """The MATCH clause selecting rows whose scope column holds every id of ``scope``."""
    return " AND ".join(_scope_token(f, v) for f, v in scope.items())


def _scope_token(field: str, value: str) -> str:
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=10).hexdigest()
    return f"{field[0]}{digest}"


def names_in(query: str, names: Iterable[str]) -> list[str]:
    """Which of ``names`` (speakers / actors) the query mentions by first name."""
    found = []
    low = query.lower()
    for name in names:
        first = name.split()[0].lower() if name.strip() else ""
        if len(first) >= 2 and re.search(rf"\b{re.escape(first)}\b", low):
            found.append(name)
    return found


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages about huge inputs."""
    if isinstance(value, str | bytes) and len(value) > limit:
        value = value[:limit]  # repr of the head only: the input may be megabytes
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past the str-conversion limit, deep nesting
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def utf8_size(value: str, what: str, *, error: type[ValidationError] = ValidationError) -> int:
    """``value``'s size in UTF-8 bytes, refusing lone surrogates.

    Why: the store (SQLite), the FTS index, hashing and export all encode UTF-8; a
    lone surrogate (``"\\ud800"``, e.g. from a bad ``errors="surrogateescape"`` decode)
    cannot be encoded and must fail here, typed and named, not deep inside a write.
    """
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise error(
            f"{what} contains characters that are not valid Unicode (lone surrogates at "
            f"{e.start}); decode your input with errors='replace' first"
        ) from e


def check_string(
    value: str, what: str, *, error: type[ValidationError] = ValidationError, nul_ok: bool = False
) -> int:
    """``value``'s UTF-8 size; refuses lone surrogates and NUL, in every string memvault keeps.

    Why NUL too: PostgreSQL (``text`` and ``jsonb``), C APIs and file names cut or refuse
    a string at NUL, so a NUL accepted here would fail later, on another backend or in a
    store copy; it is refused up front, the same on every backend. ``nul_ok`` is for
    strings that are only compared, never kept (filter operands): they match nothing.
    """
    size = utf8_size(value, what, error=error)
    if not nul_ok and "\x00" in value:
        raise error(f"{what} {shown(value)} contains a NUL character (\\x00); remove it")
    return size


def check_name(
    value: object,
    what: str,
    *,
    error: type[ValidationError] = ValidationError,
    max_bytes: int = MAX_TEXT_BYTES,
    empty_ok: bool = False,
) -> str:
    """Validate a name (key, namespace label, vector space, role, category, changed_by)."""
    if not isinstance(value, str):
        raise error(f"{what} must be a string, got {type(value).__name__}")
    if not value and not empty_ok:
        raise error(f"{what} is empty; pass a non-empty string")
    size = check_string(value, what, error=error)
    if size > max_bytes:
        raise error(f"{what} is {size} bytes; the limit is {max_bytes} bytes")
    return value


def clean_text(value: object, *, what: str = "content") -> str:
    """Validate user text: a non-empty str (or UTF-8 bytes) within MAX_TEXT_BYTES, no NUL."""
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationError(
                f"{what} is not valid UTF-8 ({e.reason} at byte {e.start})"
            ) from e
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be a string, got {type(value).__name__}")
    size = check_string(value, what)
    if not value.strip():
        raise ValidationError(f"{what} is empty; pass some text to remember")
    if size > MAX_TEXT_BYTES:
        raise ValidationError(
            f"{what} is {size} bytes; the limit is {MAX_TEXT_BYTES} bytes per memory —"
            " split long documents into smaller messages"
        )
    return value


_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            "january jan",
            "february feb",
            "march mar",
            "april apr",
            "may",
            "june jun",
            "july jul",
            "august aug",
            "september sep sept",
            "october oct",
            "november nov",
            "december dec",
        ]
    )
    for m in names.split()
}
_MON = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY_FIRST = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MON})\.?,?\s+(\d{{4}})\b")
_MONTH_FIRST = re.compile(rf"\b({_MON})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b")
_MONTH_YEAR = re.compile(rf"\b({_MON})\.?,?\s+(?:of\s+)?(\d{{4}})\b")
_ISO_DAY = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
_FOUR_DIGITS = re.compile(r"\d{4}")  # every form above names a year: a cheap first test


def query_days(query: str) -> tuple[float, float] | None:
    """The span of days (proleptic ordinals, inclusive) a query's date names, if any.

    "on 8 May, 2023" / "May 8th 2023" / "2023-05-08" -> that day; "in July 2023" -> the
    month; "in 2023" -> the year. The most precise date in the query wins.
    """
    if not _FOUR_DIGITS.search(query):
        return None
    low = query.lower()
    for rx, order in ((_DAY_FIRST, "dmy"), (_MONTH_FIRST, "mdy"), (_ISO_DAY, "ymd")):
        m = rx.search(low)
        if m:
            parts = dict(zip(order, m.groups(), strict=True))
            mon = _MONTHS.get(parts["m"]) or int(parts["m"])
            try:
                d = date(int(parts["y"]), mon, int(parts["d"])).toordinal()
            except ValueError:
                continue
            return float(d), float(d)
    m = _MONTH_YEAR.search(low)
    if m:
        y, mon = int(m.group(2)), _MONTHS[m.group(1)]
        if 1 <= y <= 9998:
            start = date(y, mon, 1).toordinal()
            end = (date(y + 1, 1, 1) if mon == 12 else date(y, mon + 1, 1)).toordinal() - 1
            return float(start), float(end)
    m = _YEAR.search(low)
    if m:
        y = int(m.group(1))
        return float(date(y, 1, 1).toordinal()), float(date(y, 12, 31).toordinal())
    return None
