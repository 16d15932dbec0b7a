"""The filter language's syntax tree, and printing it back to text.

``parse(print(tree)) == tree`` for every tree the parser builds: nested
logical groups are always printed in parentheses.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Comparison operators; the ``?`` forms mean "any of" for multi-valued operands.
OPERATORS = (
    "=", "!=", ">", ">=", "<", "<=", "~", "!~",
    "?=", "?!=", "?>", "?>=", "?<", "?<=", "?~", "?!~",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, boolean or null constant."""

    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Identifier:
    """A field path or macro as written: ``author.name``, ``@request.auth.id``,
    ``tags:length``, ``@now``."""

    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """A function call such as ``strftime('%Y', created)``."""

    name: str
    args: tuple[Operand, ...]


Operand = Literal | Identifier | Call


@dataclass(frozen=True, slots=True)
class Comparison:
    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Expr, ...]


Expr = Comparison | And | Or


def identifiers(node: Expr | Operand) -> list[str]:
    """Every identifier name in a tree, in order."""
    if isinstance(node, Identifier):
        return [node.name]
    if isinstance(node, Literal):
        return []
    if isinstance(node, Call):
        return [name for arg in node.args for name in identifiers(arg)]
    if isinstance(node, Comparison):
        return identifiers(node.left) + identifiers(node.right)
    return [name for item in node.items for name in identifiers(item)]


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def print_operand(node: Operand) -> str:
    if isinstance(node, Identifier):
        return node.name
    if isinstance(node, Call):
        return f"{node.name}({', '.join(print_operand(a) for a in node.args)})"
    value = node.value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    return repr(value)


def print_expr(node: Expr) -> str:
    """Canonical filter text for a tree."""
    if isinstance(node, Comparison):
        return f"{print_operand(node.left)} {node.op} {print_operand(node.right)}"
    joiner = " && " if isinstance(node, And) else " || "
    parts = []
    for item in node.items:
        text = print_expr(item)
        parts.append(f"({text})" if not isinstance(item, Comparison) else text)
    return joiner.join(parts)
