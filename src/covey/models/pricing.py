"""Cost of a response in USD, from the pricing table shipped in the package (`pricing.json`).

The most specific matching key wins (an exact id, else the longest `prefix*`). A model that
matches nothing (a local model, the scripted model) costs 0. Settings `pricing` entries
(`covey.config.ModelPrice`) are merged over the table: an override key wins over the table's
same key, and competes with the others by specificity.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Protocol

from covey.messages import Usage

__all__ = ["Price", "PriceSetting", "cost_usd", "price_for"]


class PriceSetting(Protocol):
    """A price from settings (`covey.config.ModelPrice`), USD per million tokens."""

    @property
    def input(self) -> float: ...
    @property
    def output(self) -> float: ...
    @property
    def cacheWrite(self) -> float: ...
    @property
    def cacheRead(self) -> float: ...


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float


@cache
def _table() -> dict[str, Price]:
    raw = json.loads(resources.files("covey.models").joinpath("pricing.json").read_text())
    return {k: Price(**v) for k, v in raw.items() if not k.startswith("_")}


def price_for(model_id: str, overrides: Mapping[str, PriceSetting] | None = None) -> Price | None:
    """`model_id` may carry a provider prefix (`anthropic:claude-…`); it is ignored."""
    bare = model_id.split(":", 1)[1] if ":" in model_id else model_id
    table = _table()
    if overrides:
        table = {
            **table,
            **{
                k: Price(p.input, p.output, p.cacheWrite, p.cacheRead) for k, p in overrides.items()
            },
        }
    if bare in table:
        return table[bare]
    prefixes = [k for k in table if k.endswith("*") and bare.startswith(k[:-1])]
    return table[max(prefixes, key=len)] if prefixes else None


def cost_usd(
    model_id: str, usage: Usage, overrides: Mapping[str, PriceSetting] | None = None
) -> float:
    price = price_for(model_id, overrides)
    if price is None:
        return 0.0
    return (
        usage.input * price.input
        + usage.output * price.output
        + usage.cache_write * price.cache_write
        + usage.cache_read * price.cache_read
    ) / 1_000_000
