"""A rough token estimate for when no provider count is available (≈ 4 bytes per token)."""

from __future__ import annotations

__all__ = ["estimate_tokens", "estimate_tokens_of"]


def estimate_tokens(text: str) -> int:
    return (len(text.encode("utf-8")) + 3) // 4


def estimate_tokens_of(utf8: bytes) -> int:
    """`estimate_tokens` of text already encoded."""
    return (len(utf8) + 3) // 4
