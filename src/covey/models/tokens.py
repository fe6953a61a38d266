"""A rough token estimate for when no provider count is available (≈ 4 bytes per token)."""

from __future__ import annotations

__all__ = ["estimate_tokens"]


def estimate_tokens(text: str) -> int:
    return (len(text.encode("utf-8")) + 3) // 4
