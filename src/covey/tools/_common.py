"""Small helpers the core tools share: compact optional fields and text-file checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from covey.errors import ToolError

__all__ = ["optional", "read_text", "require_text_file", "write_text"]

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


def require_text_file(real: Path, path: str) -> None:
    """ToolError unless `real` is a regular file that does not look binary (no NUL early on)."""
    if real.is_dir():
        raise ToolError(f"{path} is a directory, not a file; use Glob or Bash ls to list it")
    try:
        with real.open("rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror or e}") from None
    if b"\0" in head:
        raise ToolError(f"{path} is a binary file; only text files can be read or edited")


def read_text(real: Path, path: str) -> str:
    """The whole file as text, line endings and undecodable bytes kept for a faithful rewrite."""
    require_text_file(real, path)
    try:
        with real.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
            return f.read()
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror or e}") from None


def write_text(real: Path, path: str, content: str) -> None:
    """Write `content` exactly (no newline translation), creating parent directories."""
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        with real.open("w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write(content)
    except OSError as e:
        raise ToolError(f"cannot write {path}: {e.strerror or e}") from None
