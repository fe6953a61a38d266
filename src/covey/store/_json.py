"""The one JSON encoding of the store's JSON columns: compact, UTF-8, objects only."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dump_json", "load_json", "load_json_object"]


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def load_json_object(text: str | None) -> dict[str, Any]:
    """A JSON object column; NULL reads as `{}`."""
    value = load_json(text)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object in the store, got {type(value).__name__}")
    return value
