"""The prompt of `covey -p` / `covey --bg`: the argument, or else standard input, checked to be
text before anything is recorded.

A prompt must be UTF-8 text: invalid UTF-8 (a Latin-1 file, a binary piped in by mistake) or a
NUL byte (what git and grep take as the mark of a binary file) is a `UserError`, exit 2.
"""

from __future__ import annotations

import sys
from typing import BinaryIO

from covey.errors import UserError

__all__ = ["prompt_text"]


def prompt_text(argument: str | None, flag: str, stdin: BinaryIO | None = None) -> str:
    """The prompt to run: `argument`, else all of `stdin` (default: this process's, when it
    is not a terminal). `flag` (`-p`, `--bg`) names the mode in messages."""
    if argument is not None:
        return _checked(argument.encode("utf-8", "surrogateescape"), "the prompt argument", flag)
    if stdin is None:
        if sys.stdin is None or sys.stdin.isatty():
            raise _missing(flag)
        stdin = sys.stdin.buffer
    return _checked(stdin.read(), "standard input", flag)


def _checked(raw: bytes, source: str, flag: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{source} is not UTF-8 text (invalid byte 0x{raw[e.start]:02x} at offset "
            f"{e.start}); pass the prompt as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        ) from None
    if "\0" in text:
        raise UserError(
            f"{source} holds a NUL byte at offset {raw.index(0)}, so it looks binary; "
            "pass a text prompt"
        )
    if not text.strip():
        raise _missing(flag)
    return text


def _missing(flag: str) -> UserError:
    return UserError(f'no prompt: pass it as an argument (covey {flag} "...") or on stdin')
