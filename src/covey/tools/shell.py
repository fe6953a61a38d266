"""What a Bash command line runs and writes, read with a real shell grammar.

`analyze_command` parses with tree-sitter and its bash grammar (both imported on first use:
they cost ~0.1 s to load, which `covey --help` should not pay) and returns every simple
command anywhere in the tree — lists, pipelines, subshells, `{ …; }` groups, the bodies of
if/for/while/case and functions, command and process substitutions, heredocs — after quote
removal, with the usual wrappers looked through (`command`, `builtin`, `exec`, `env` and
`VAR=…` prefixes, `nice`, `nohup`, `timeout`, `time`, `stdbuf`, `setsid`, `xargs`, `sudo`,
`doas`), and `bash|sh|zsh|dash|ksh -c STRING`, `eval`, `trap` and `env -S` strings parsed
in turn. It also returns the files the line writes by redirection (`>`, `>>`, `>|`, `&>`,
`>&FILE`) or with `tee`.

What cannot be known without running the line is reported, never guessed: a program that is
an expansion (`$X`, `$(…)`, a glob, `eval "$x"`), a shell reading commands from stdin, a
line the grammar cannot parse; a write target that is an expansion, or relative after a `cd`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from covey.tools._shell_wrappers import Peeled, peel

if TYPE_CHECKING:
    from tree_sitter import Node, Parser

__all__ = ["CommandAnalysis", "SimpleCommand", "analyze_command"]

MAX_DEPTH = 8
"""How deep `bash -c "bash -c …"` nesting is followed; deeper is not statically known."""
_HARMLESS_TARGETS = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty")
_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>"})
_DUP_OPS = frozenset({">&"})
_DIR_CHANGERS = frozenset({"cd", "pushd", "popd"})

Word = tuple[str | None, str]
"""(the value after quote removal, or None when it is an expansion; the source text)."""


@dataclass(frozen=True)
class SimpleCommand:
    """One simple command, after quote removal and with its wrappers looked through."""

    text: str
    """What it runs: `VAR=value` prefixes, then the program as written and its arguments
    (an argument that is an expansion stays as written). Allow rules match this."""
    forms: tuple[str, ...]
    """Every way deny and ask rules see it: each wrapper layer, the source text, and the
    program by its basename (`/bin/rm x` is also `rm x`)."""
    dynamic: str | None = None
    """Why the program is not known statically; such a command matches no allow rule."""
    allow_forms: tuple[str, ...] = ()
    """What allow rules match: `text`, and the source text when nothing was looked through."""
    transparent: bool = False
    """A wrapper of shell code listed separately (`bash -c "…"`, `eval`, `trap`): deny and
    ask rules see it, allow rules need only what it runs."""


@dataclass
class CommandAnalysis:
    commands: list[SimpleCommand] = field(default_factory=list)
    writes: list[str | None] = field(default_factory=list)
    """Files written by redirection or tee, `~` expanded; None for a target not known
    statically (an expansion, or a relative path after a `cd`)."""
    problems: list[str] = field(default_factory=list)
    """Why parts of the line could not be read (a syntax the grammar does not know)."""

    @property
    def dynamic(self) -> list[str]:
        """Every reason something in the line is not known statically."""
        return [*self.problems, *(c.dynamic for c in self.commands if c.dynamic)]


def analyze_command(command: str) -> CommandAnalysis:
    """The simple commands and written files of a bash command line."""
    out = CommandAnalysis()
    relative: list[str] = []
    changes_dir = _analyze(command, out, relative, 0)
    for target in relative:
        out.writes.append(None if changes_dir else target)
    return out


@cache
def _parser() -> Parser:
    import tree_sitter
    import tree_sitter_bash

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bash.language()))


def _analyze(script: str, out: CommandAnalysis, relative: list[str], depth: int) -> bool:
    """Add what `script` runs and writes to `out`; True when it may change directory."""
    if depth > MAX_DEPTH:
        out.problems.append(f"commands nested more than {MAX_DEPTH} levels deep")
        return False
    source = script.encode("utf-8", "surrogateescape")
    root = _parser().parse(source).root_node
    if root.has_error or _skipped(root, source):
        out.problems.append("the command line could not be parsed")
    walker = _Walker(out, relative, depth)
    walker.visit(root)
    return walker.changes_dir


_LITERAL = frozenset({"heredoc_body", "string", "raw_string", "comment"})
"""Nodes whose text between their children is literal (`x` in a heredoc `x $(y)`)."""


def _skipped(root: Node, source: bytes) -> bool:
    """Whether the grammar left text out of the tree without flagging an error (it drops
    the `-` of `python3 - <<EOF`): text no token covers might be a command nobody checked."""
    covered = bytearray(len(source))
    stack = [root]
    while stack:
        node = stack.pop()
        if node.child_count == 0 or node.type in _LITERAL:
            covered[node.start_byte : node.end_byte] = b"\1" * (node.end_byte - node.start_byte)
        else:
            stack.extend(node.children)
    return any(
        not seen and byte not in b" \t\r\n\\" for seen, byte in zip(covered, source, strict=True)
    )


class _Walker:
    def __init__(self, out: CommandAnalysis, relative: list[str], depth: int) -> None:
        self.out = out
        self.relative = relative
        self.depth = depth
        self.changes_dir = False

    def visit(self, root: Node) -> None:
        """Every node of the tree (iteratively: `a && b && …` nests as deep as it is long)."""
        stack = [root]
        while stack:
            node = stack.pop()
            kind = node.type
            if kind == "command":
                self.command(node)
            elif kind == "file_redirect":
                self.redirect(node)
            elif kind in ("declaration_command", "unset_command"):
                keyword = node.children[0].type if node.children else kind
                args = [(_static(c), _text(c)) for c in node.named_children if c.type != "comment"]
                self.add_words([(keyword, keyword), *args], _text(node))
            stack.extend(reversed(node.children))

    def command(self, node: Node) -> None:
        assignments: list[Word] = []
        words: list[Word] = []
        for child in node.children:
            if child.type == "variable_assignment" and not words:
                assignments.append((_static(child), _text(child)))
            elif child.type == "command_name":
                words.append(_program(child))
            elif child.is_named and child.type not in _NOT_WORDS:
                words.append((_static(child), _text(child)))
        if words:
            self.add_words(words, _text(node), assignments)

    def add_words(
        self, words: list[Word], source: str, assignments: list[Word] | None = None
    ) -> None:
        peeled = peel(words, assignments or [], self.nested)
        self.record(peeled, source)
        for words_run in peeled.more:  # find -exec: judged on its own, never by find's text
            inner = peel(words_run, [], self.nested)
            inner.wrapped = True
            self.record(inner, source)

    def record(self, peeled: Peeled, source: str) -> None:
        if peeled.program is None:  # `exec >f`, `env` with only assignments
            return
        if peeled.base in _DIR_CHANGERS:
            self.changes_dir = True
        for target in peeled.writes:
            self.write(target)
        forms = tuple(dict.fromkeys((*peeled.forms, source)))
        allow = (peeled.text,) if peeled.wrapped else tuple(dict.fromkeys((peeled.text, source)))
        self.out.commands.append(
            SimpleCommand(peeled.text, forms, peeled.dynamic, allow, peeled.transparent)
        )

    def nested(self, script: str) -> None:
        """Parse a string a command will run as shell code (`bash -c`, `eval`, `trap`)."""
        self.changes_dir |= _analyze(script, self.out, self.relative, self.depth + 1)

    def redirect(self, node: Node) -> None:
        ops = {c.type for c in node.children if not c.is_named}
        destination = node.child_by_field_name("destination")
        if destination is None or not ops & (_WRITE_OPS | _DUP_OPS):
            return
        value = _static(destination)
        if not ops & _WRITE_OPS and (value is not None and (value.isdigit() or value == "-")):
            return  # 2>&1, >&-: a file descriptor, not a file
        self.write(value)

    def write(self, target: str | None) -> None:
        if target is None:
            self.out.writes.append(None)
            return
        target = _tilde(target)
        if target in _HARMLESS_TARGETS or target.startswith(("/dev/fd/", "/proc/self/fd/")):
            return
        if os.path.isabs(target):
            self.out.writes.append(target)
        else:
            self.relative.append(target)


_NOT_WORDS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect", "comment"})


def _program(node: Node) -> Word:
    """The command_name: its value, or None when expansion or globbing could change it."""
    (inner,) = node.named_children or (node,)
    value = _static(inner)
    if value is not None and _globs(inner):
        value = None
    return (_tilde(value) if value is not None else None), _text(inner)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "surrogateescape")


def _static(node: Node) -> str | None:
    """The word after quote removal, or None when it holds an expansion."""
    return _STATIC.get(node.type, _dynamic)(node)


def _dynamic(node: Node) -> str | None:
    return None


def _word(node: Node) -> str | None:
    return _unescape(_text(node))


def _raw_string(node: Node) -> str | None:
    return _text(node)[1:-1]


def _string(node: Node) -> str | None:
    parts: list[str] = []
    for child in node.named_children:
        if child.type != "string_content":
            return None
        parts.append(_unescape_double(_text(child)))
    return "".join(parts)


def _concatenation(node: Node) -> str | None:
    parts = [_static(child) for child in node.children]
    return None if any(p is None for p in parts) else "".join(p or "" for p in parts)


def _assignment(node: Node) -> str | None:
    value = node.child_by_field_name("value")
    name = node.child_by_field_name("name")
    if name is None:
        return None
    rest = "" if value is None else _static(value)
    return None if rest is None else f"{_text(name)}={rest}"


_STATIC: dict[str, Callable[[Any], str | None]] = {
    "word": _word,
    "number": _word,
    "test_operator": _word,
    "variable_name": _word,
    "raw_string": _raw_string,
    "string": _string,
    "concatenation": _concatenation,
    "variable_assignment": _assignment,
}


def _globs(node: Node) -> bool:
    """Whether an unquoted part of the word has glob or brace characters (`/bin/r?`)."""
    if node.type in ("word", "number", "test_operator"):
        text = _text(node).replace("\\\\", "").replace("\\*", "").replace("\\?", "")
        text = text.replace("\\[", "").replace("\\{", "")
        return any(c in text for c in "*?[") or ("{" in text and "}" in text)
    return node.type == "concatenation" and any(_globs(c) for c in node.children)


def _unescape(text: str) -> str:
    """Unquoted backslashes: `\\x` is `x`, a backslash-newline disappears."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _unescape_double(text: str) -> str:
    """Inside double quotes a backslash escapes only `$`, a backquote, `"`, `\\` and newline."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in '$`"\\\n':
            if text[i + 1] != "\n":
                out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _tilde(value: str) -> str:
    if value == "~" or value.startswith("~/"):
        return os.path.expanduser(value)
    return value
