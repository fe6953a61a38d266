"""A msgspec validation error of one settings file as one line naming the key: `key
retries.maxRetries must be an integer from 0 to 100 (got 101)`.

msgspec reports the first problem as text (`Expected `int` <= 100 - at `$.retries.maxRetries``);
the key is read from its path (a `[...]`, a value of an object, is found again in the data) and
what the key must be is said from the settings models' annotations, the same words whatever
the problem. A check of a model's own (`__post_init__`) raised `ValueError("<key>: <reason>")`,
which is said as `key <path>.<key>: <reason>`.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec

__all__ = ["count_problems", "describe_error", "json_kind"]

_AT = re.compile(r"^(?P<text>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TYPE_ERROR = re.compile(r"^Expected `[^`]*`, got `")


def describe_error(error: msgspec.ValidationError, data: Any, model: type) -> str:
    """`error`, raised converting `data` to `model`, as `key K must be …` (or `key K: reason`)."""
    found = _AT.match(str(error))
    assert found is not None  # the pattern matches any text
    text, path = found["text"], found["path"] or ""
    loc: list[str | int] = []
    ann: Any = model
    value: Any = data
    for name, index in _PART.findall(path):
        ann, part, value = _step(ann, value, name or index)
        loc.append(part)
    if missing := re.match(r"^Object missing required field `([^`]+)`", text):
        return f"key {_key([*loc, missing[1]])} is required"
    if not (_TYPE_ERROR.match(text) or text.startswith(("Expected `", "Invalid enum value"))):
        sub, _, reason = text.partition(": ")  # a model's own check: "<key>: <reason>"
        return f"key {_key([*loc, *_parts(sub)])}: {reason}"
    wrong_type = _TYPE_ERROR.match(text) and get_origin(_bare(ann)) is not Literal
    got = json_kind(value) if wrong_type else json.dumps(value)
    return f"key {_key(loc)} must be {_expected(ann)} (got {got})"


def count_problems(data: Any, ann: Any) -> int:
    """How many keys of `data` do not fit `ann`, counted per field down through objects (at
    least one when `data` does not fit as a whole)."""
    base = _bare(ann)
    if isinstance(base, type) and issubclass(base, msgspec.Struct) and isinstance(data, dict):
        hints = _hints(base)
        count = sum(count_problems(v, hints[k]) for k, v in data.items() if k in hints)
        if count:
            return count
    try:
        msgspec.convert(data, ann)
    except msgspec.ValidationError:
        return 1
    return 0


def _step(ann: Any, value: Any, part: str) -> tuple[Any, str | int, Any]:
    """One step down the path: the annotation, the key as shown, the value there."""
    base = _bare(ann)
    if isinstance(base, type) and issubclass(base, msgspec.Struct):
        inner = _hints(base).get(part)
        return inner, part, value.get(part) if isinstance(value, dict) else None
    args = get_args(base)
    if part.isdigit():
        index = int(part)
        item = value[index] if isinstance(value, list) and index < len(value) else None
        return (args[0] if args else None), index, item
    inner = args[-1] if args else Any
    for key, item in value.items() if isinstance(value, dict) else ():
        try:
            msgspec.convert(item, inner)
        except msgspec.ValidationError:
            return inner, str(key), item
    return inner, part, None


def _bare(ann: Any) -> Any:
    """`ann` without `| None` and `Annotated`."""
    if get_origin(ann) in (Union, types.UnionType):
        rest = [a for a in get_args(ann) if a is not type(None)]
        ann = rest[0] if len(rest) == 1 else ann
    return get_args(ann)[0] if get_origin(ann) is Annotated else ann


def _hints(struct: type) -> dict[str, Any]:
    return typing.get_type_hints(struct, include_extras=True)


def _parts(sub: str) -> list[str | int]:
    return [int(i) if i else n for n, i in _PART.findall("." + sub)]


def _key(loc: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def _expected(ann: Any) -> str:
    origin, args = get_origin(ann), get_args(ann)
    if origin in (Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return f"{_expected(rest[0])} or null"
    meta: list[Any] = []
    if origin is Annotated:
        ann, meta = args[0], list(ann.__metadata__)
        origin, args = get_origin(ann), get_args(ann)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in args)
    if origin in (list, dict):
        what = "a list" if origin is list else "an object"
        return f"{what} of strings" if args[-1] is str else what
    if isinstance(ann, type) and issubclass(ann, msgspec.Struct):
        return "an object"
    base = {str: "a string", bool: "true or false", int: "an integer", float: "a number"}
    text = base.get(ann, "any value")
    limits = {a: getattr(m, a) for m in meta for a in ("ge", "gt", "le", "lt")}
    limits = {a: v for a, v in limits.items() if v is not None}
    if "ge" in limits and "le" in limits:
        return f"{text} from {limits['ge']} to {limits['le']}"
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    bounds = " and ".join(f"{words[a]} {v}" for a, v in limits.items())
    return f"{text} {bounds}" if bounds else text


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__)
