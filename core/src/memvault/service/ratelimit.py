"""Per-key rate limits: each API key may make so many calls per minute, in each server process.

Why per key and not only per server: ``--limit-concurrency`` bounds the whole server, so
one tenant's runaway agent (or a leaked key) could still take every slot, and every call
that reaches the model (``add`` with ``infer``, a search with ``expansions``, an ingest)
spends tokens. A key's own limit caps what one key can do whatever the others do.

How: a token bucket per key id, refilled continuously at ``limit / 60`` calls per second
and holding at most ``limit`` (a key that was idle may spend one minute's worth at once).
A call the bucket cannot pay for is refused with ``RateLimitError`` carrying the seconds
until it could (HTTP 429 with ``Retry-After``; an MCP tool error). The buckets live in the
server process: with several processes on one store each enforces the limit on its own
calls, so a key's total across N processes is at most N times its limit.

The limit is the key's own (``memvault keys create --rate-limit``, changed with
``memvault keys limit``), else the server's default for keys without one (``memvault serve
--rate-limit``), else none. A key whose limit changed starts a full bucket at the new limit:
an operator who raises a throttled tenant's limit unblocks it at once.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from memvault.errors import RateLimitError, ValidationError
from memvault.service.tenancy import Principal

#: Largest limit a key or server may set (calls per minute): far beyond any real need, and
#: it keeps the bucket arithmetic in a range where float error is irrelevant.
MAX_RATE_LIMIT = 1_000_000
#: Buckets kept before the full ones are dropped (a full bucket is the same as none).
MAX_BUCKETS = 10_000


def check_rate_limit(value: object, what: str = "rate_limit") -> int | None:
    """``None`` (no limit) or a whole number of calls per minute in 1..MAX_RATE_LIMIT."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{what} must be a whole number of calls per minute, not {value!r}")
    if not 1 <= value <= MAX_RATE_LIMIT:
        raise ValidationError(f"{what} must be between 1 and {MAX_RATE_LIMIT} calls per minute")
    return value


class RateLimiter:
    """Token buckets per key id; ``acquire(principal)`` pays for one call or raises.

    Args:
        default: calls per minute for keys that have no limit of their own (None: none).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self, default: int | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.default = check_rate_limit(default, "the server's rate limit")
        self._clock = clock
        self._lock = threading.Lock()  # handlers run on the event loop; tests and threads too
        # key id -> (tokens, at, the limit the bucket was filled for)
        self._buckets: dict[str, tuple[float, float, int]] = {}

    def limit_of(self, principal: Principal) -> int | None:
        """The calls per minute this key is allowed (its own limit, else the default)."""
        own = principal.rate_limit
        return own if own is not None else self.default

    def acquire(self, principal: Principal) -> None:
        """Pay for one call by this key; ``RateLimitError`` when its bucket is empty."""
        limit = self.limit_of(principal)
        if limit is None:
            return
        rate = limit / 60.0
        with self._lock:
            now = self._clock()
            tokens, at, filled_for = self._buckets.get(principal.key_id, (limit, now, limit))
            if filled_for != limit:  # the key's limit was changed: a new, full bucket
                tokens, at = limit, now
            tokens = min(float(limit), tokens + max(0.0, now - at) * rate)
            if tokens >= 1.0:
                self._buckets[principal.key_id] = (tokens - 1.0, now, limit)
                if len(self._buckets) > MAX_BUCKETS:
                    self._forget_full(now)
                return
            self._buckets[principal.key_id] = (tokens, now, limit)
        wait = (1.0 - tokens) / rate
        raise RateLimitError(
            f"this API key may make {limit} calls per minute; retry in {math.ceil(wait)} s",
            retry_after=wait,
        )

    def _forget_full(self, now: float) -> None:
        # Buckets that have refilled hold no information; a key named again starts full.
        # The limit is not known here, so a bucket idle for a minute counts as full
        # (at any limit, one minute refills it completely).
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60.0}
