"""Token estimates and prices for dry runs and ingest summaries.

Why a table the user can override: prices change and differ per provider
(OpenAI, Doubleword, a local vLLM at zero); the estimate is only useful if it
uses *their* numbers. Batch and flex tiers are half price at OpenAI and
Doubleword, so the discount is part of the table too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

#: USD per 1M tokens: (input, cached input, output). Override with ``prices=``.
DEFAULT_PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-5-nano": (0.05, 0.005, 0.40),
}
#: Multiplier for the queued tiers.
TIER_DISCOUNT = {"batch": 0.5, "flex": 0.5}


@cache
def token_counter() -> Callable[[str], int]:
    """cl100k token counts when ``bpe-openai`` is installed, else ~4 characters per token."""
    try:
        import bpe_openai

        enc = bpe_openai.get_encoding("cl100k_base")
        return lambda text: len(enc.encode(text))
    except Exception:
        return lambda text: max(1, len(text) // 4)


@dataclass(slots=True)
class Estimate:
    rows: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None


def price(
    model: str,
    prompt: int,
    completion: int,
    cached: int = 0,
    *,
    tier: str | None = None,
    prices: dict[str, tuple[float, float, float]] | None = None,
) -> float | None:
    """Cost in USD, or None when the model is not in the price table."""
    table = {**DEFAULT_PRICES, **(prices or {})}
    if model not in table:
        return None
    inp, cached_inp, out = table[model]
    usd = ((prompt - cached) * inp + cached * cached_inp + completion * out) / 1e6
    return usd * TIER_DISCOUNT.get(tier or "", 1.0)
