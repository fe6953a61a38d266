"""Small helpers the core tools share: compact optional fields and text-file checks."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field

from covey.errors import ToolError

__all__ = ["optional", "read_text", "require_text", "write_text"]

_SNIFF_BYTES = 8192


def optional(description: str, **constraints: Any) -> Any:
    """An optional field that also accepts null, advertised as just its type (no anyOf/default:
    every request carries the schema, and some models send null for an omitted key)."""
    return Field(None, description=description, json_schema_extra=_plain, **constraints)


def _plain(schema: dict[str, Any]) -> None:
    schema.pop("default", None)
    alternatives = [a for a in schema.pop("anyOf", []) if a != {"type": "null"}]
    if len(alternatives) == 1:
        schema.update(alternatives[0])


def require_text(fd: int, path: str) -> None:
    """ToolError when the open file looks binary (a NUL early on); leaves it at the start."""
    try:
        head = os.pread(fd, _SNIFF_BYTES, 0)
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror or e}") from None
    if b"\0" in head:
        raise ToolError(f"{path} is a binary file; only text files can be read or edited")


def read_text(fd: int, path: str) -> str:
    """The whole open file as text, line endings and undecodable bytes kept for a faithful
    rewrite."""
    require_text(fd, path)
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror or e}") from None
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def write_text(fd: int, path: str, content: str) -> None:
    """Replace the open file's content by `content` exactly (no newline translation)."""
    data = content.encode("utf-8", "surrogateescape")
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError as e:
        raise ToolError(f"cannot write {path}: {e.strerror or e}") from None
