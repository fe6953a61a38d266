"""Attribute docstrings of a class, read from its source: the string under each field."""

from __future__ import annotations

import ast
import inspect
import textwrap


def attribute_docstrings(cls: type) -> dict[str, str]:
    """`{field: docstring}` for each annotated attribute of `cls` with a string under it."""
    (node,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    assert isinstance(node, ast.ClassDef)
    out: dict[str, str] = {}
    for field, after in zip(node.body, [*node.body[1:], None], strict=True):
        if not (isinstance(field, ast.AnnAssign) and isinstance(field.target, ast.Name)):
            continue
        if (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            out[field.target.id] = after.value.value
    return out
