"""Looking through command wrappers: `sudo -u x env FOO=1 nice -n 5 rm f` runs `rm f`.

`peel` takes the words of one simple command (after quote removal; None for an expansion)
and strips the wrappers one layer at a time, keeping every layer for deny rules. Shell code
handed over as a string (`bash -c`, `eval`, `trap`) goes to `nested`, which parses it as a
command line of its own; such a wrapper then runs nothing by itself (`transparent`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["SHELLS", "Peeled", "peel"]

Word = tuple[str | None, str]
Nested = Callable[[str], None]
SHELLS = frozenset({"bash", "sh", "zsh", "dash", "ksh", "mksh", "ash"})


@dataclass
class Peeled:
    program: str | None
    """The program that finally runs, as written; None when the words run nothing."""
    base: str = ""
    """Its basename."""
    text: str = ""
    forms: list[str] = field(default_factory=list)
    dynamic: str | None = None
    transparent: bool = False
    """A wrapper whose work is shell code parsed separately (`bash -c`, `eval`, `trap`)."""
    wrapped: bool = False
    """Whether a wrapper or `VAR=` prefix was looked through."""
    writes: list[str | None] = field(default_factory=list)
    more: list[list[Word]] = field(default_factory=list)
    """Further commands it runs (`find -exec`)."""


class _Keep:
    """A handler's answer: this program is not a wrapper after all (`bash script.sh`)."""


class _Transparent:
    """A handler's answer: the shell code it runs went to `nested`."""


_KEEP, _TRANSPARENT = _Keep(), _Transparent()
_Step = list[Word] | str | _Keep | _Transparent
"""The words left to run, a reason the program cannot be known, or one of the two above."""


def peel(words: list[Word], assignments: list[Word], nested: Nested) -> Peeled:
    forms: list[str] = []
    wrapped = bool(assignments)
    while words:
        forms += _forms(words)
        value, raw = words[0]
        if value is None:
            return Peeled(raw, raw, raw, forms, f"its program {raw} is an expansion")
        base = os.path.basename(value.rstrip("/")) or value
        handler = _WRAPPERS.get(base)
        step: _Step = _KEEP if handler is None else handler(words[1:], assignments, nested)
        if isinstance(step, str):
            return Peeled(value, base, _join(words), forms, step)
        if isinstance(step, _Transparent):
            return Peeled(value, base, _join(words), forms, transparent=True)
        if isinstance(step, _Keep):
            done = _finish(words, assignments, forms, value, base)
            done.wrapped = wrapped
            return done
        words, wrapped = step, True
    return Peeled(None, forms=forms)


def _finish(
    words: list[Word], assignments: list[Word], forms: list[str], value: str, base: str
) -> Peeled:
    text = _join([*assignments, *words])
    done = Peeled(value, base, text, forms)
    args = words[1:]
    if base == "tee":
        done.writes = [w[0] for w in args[_options(args, "", ("--output-error",)) :]]
    elif base == "find":
        done.more = _find_exec(args)
    elif base == "alias" and args:
        done.dynamic = "alias can change what a command name runs"
    return done


def _forms(words: list[Word]) -> list[str]:
    """The layer as written and, when the program has a directory, by its basename."""
    joined = _join(words)
    program = words[0][0]
    if program is None or "/" not in program:
        return [joined]
    return [joined, _join([(os.path.basename(program), program), *words[1:]])]


def _join(words: list[Word]) -> str:
    return " ".join(value if value is not None else raw for value, raw in words)


def _options(
    words: list[Word],
    with_arg: str = "",
    long_with_arg: tuple[str, ...] = (),
    seen: dict[str, str | None] | None = None,
) -> int:
    """getopt: the index of the first operand. `seen` gets each option and its value."""
    i = 0
    while i < len(words):
        value = words[i][0]
        if value is None or value == "-" or not value.startswith("-"):
            return i
        i += 1
        if value == "--":
            return i
        if value.startswith("--"):
            name, eq, given = value.partition("=")
            arg: str | None = given
            if not eq and name in long_with_arg:
                arg, i = _value_at(words, i), i + 1
            if seen is not None:
                seen[name] = arg if eq or name in long_with_arg else None
            continue
        for k, letter in enumerate(value[1:], 1):
            if letter in with_arg:
                arg = value[k + 1 :] or None
                if not arg:
                    arg, i = _value_at(words, i), i + 1
                if seen is not None:
                    seen[letter] = arg
                break
            if seen is not None:
                seen[letter] = None
    return i


def _value_at(words: list[Word], i: int) -> str | None:
    return words[i][0] if i < len(words) else None


def _plain(with_arg: str = "", long_with_arg: tuple[str, ...] = ()) -> Callable[..., _Step]:
    """A wrapper that only has options before the command it runs."""

    def handler(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
        return args[_options(args, with_arg, long_with_arg) :]

    return handler


def _timeout(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    i = _options(args, "sk", ("--signal", "--kill-after"))
    if i < len(args) and args[i][0] is None:
        return f"timeout's argument {args[i][1]} is an expansion"
    return args[i + 1 :]


def _env(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    seen: dict[str, str | None] = {}
    i = _options(args, "uCS", ("--unset", "--chdir", "--split-string"), seen)
    split = seen.get("S", seen.get("--split-string"))
    if split is not None:
        try:
            words: list[Word] = [(w, w) for w in shlex.split(split)]
        except ValueError:
            return f"env -S {split!r} cannot be split into words"
        return [("env", "env"), *words, *args[i:]]
    if "S" in seen or "--split-string" in seen:
        return "env -S runs a string that is an expansion"
    return _assignments(args[i:], assignments)


def _assignments(args: list[Word], assignments: list[Word]) -> list[Word]:
    i = 0
    while i < len(args) and (value := args[i][0]) is not None and _is_assignment(value):
        assignments.append(args[i])
        i += 1
    return args[i:]


def _is_assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and name.replace("_", "a").isalnum() and not name[0].isdigit()


def _sudo(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    seen: dict[str, str | None] = {}
    long_with_arg: tuple[str, ...] = ("--chdir", "--close-from", "--group", "--host")
    long_with_arg += (
        "--prompt",
        "--role",
        "--type",
        "--other-user",
        "--user",
        "--command-timeout",
        "--chroot",
    )
    i = _options(args, "CDghprRtTUu", long_with_arg, seen)
    rest = _assignments(args[i:], assignments)
    if "e" in seen or "--edit" in seen:
        return [("sudoedit", "sudoedit"), *rest]
    if not rest and seen.keys() & {"s", "i", "--shell", "--login"}:
        return "sudo starts a shell that reads commands from stdin"
    return rest


def _xargs(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    seen: dict[str, str | None] = {}
    long_with_arg = ("--arg-file", "--delimiter", "--max-args", "--max-procs", "--max-chars")
    i = _options(args, "adEILnPs", (*long_with_arg, "--process-slot-var"), seen)
    rest = args[i:] or [("echo", "echo")]
    marker = seen.get("I") or seen.get("--replace") or ("{}" if "i" in seen else None)
    rest = _substituted(rest, marker)
    program = rest[0][0]
    if program is not None and os.path.basename(program) in SHELLS:
        has_c, _ = _shell_options(rest[1:])
        if not has_c:
            return "xargs gives a shell its input as the script to run"
    return rest


def _shell(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    has_c, i = _shell_options(args)
    if not has_c:
        if i >= len(args):
            return "a shell reading commands from stdin"
        return _source(args[i:], assignments, nested)
    if i >= len(args):
        return _KEEP
    script, raw = args[i]
    if script is None:
        return f"the shell runs {raw}, which is an expansion"
    nested(script)
    return _TRANSPARENT


def _shell_options(args: list[Word]) -> tuple[bool, int]:
    """Whether `-c` is among a shell's options, and the index of its first operand."""
    has_c, i = False, 0
    while i < len(args):
        value = args[i][0]
        if value is None:
            break
        if value in ("--", "-"):
            return has_c, i + 1
        if value in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if len(value) < 2 or value[0] not in "-+":
            break
        has_c |= value[0] == "-" and not value.startswith("--") and "c" in value
        i += 1
    return has_c, i


def _source(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    """`source FILE`, `bash FILE`: a script file runs like a program, unless its name is an
    expansion (`bash <(curl …)`, `. "$f"`)."""
    if args and args[0][0] is None:
        return f"it runs the script {args[0][1]}, which is an expansion"
    return _KEEP


def _eval(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    if any(value is None for value, _ in args):
        return "eval runs a string that is an expansion"
    nested(" ".join(value or "" for value, _ in args))
    return _TRANSPARENT


def _trap(args: list[Word], assignments: list[Word], nested: Nested) -> _Step:
    i = _options(args)
    if len(args) - i < 2:
        return _TRANSPARENT  # listing or resetting traps
    action, raw = args[i]
    if action is None:
        return f"trap runs {raw}, which is an expansion"
    if action not in ("", "-"):
        nested(action)
    return _TRANSPARENT


def _find_exec(args: list[Word]) -> list[list[Word]]:
    runs: list[list[Word]] = []
    current: list[Word] | None = None
    for word in args:
        if current is None:
            if word[0] in ("-exec", "-execdir", "-ok", "-okdir"):
                current = []
        elif word[0] in (";", "+"):
            runs.append(_substituted(current, "{}"))
            current = None
        else:
            current.append(word)
    return [*runs, _substituted(current, "{}")] if current else runs


def _substituted(words: list[Word], marker: str | None) -> list[Word]:
    """Words that `xargs -I` or `find -exec` fill with file names are not known statically
    (a name could hold shell code for `sh -c`)."""
    if not marker:
        return words
    return [(None, raw) if v is not None and marker in v else (v, raw) for v, raw in words]


_WRAPPERS: dict[str, Callable[[list[Word], list[Word], Nested], _Step]] = {
    "command": _plain(),
    "builtin": _plain(),
    "exec": _plain("a"),
    "env": _env,
    "nice": _plain("n", ("--adjustment",)),
    "nohup": _plain(),
    "timeout": _timeout,
    "time": _plain("fo", ("--format", "--output")),
    "stdbuf": _plain("ioe", ("--input", "--output", "--error")),
    "setsid": _plain(),
    "sudo": _sudo,
    "doas": _plain("uC"),
    "ionice": _plain("cnpP", ("--class", "--classdata", "--pid", "--pgid", "--uid")),
    "coproc": lambda args, assignments, nested: "coproc is not read reliably by the grammar",
    "xargs": _xargs,
    "eval": _eval,
    "trap": _trap,
    "source": _source,
    ".": _source,
    **dict.fromkeys(SHELLS, _shell),
}
