"""A hand-written lexer and recursive-descent parser for PocketBase filters.

Grammar (``&&`` binds tighter than ``||``, as in PocketBase)::

    expr       := and ( "||" and )*
    and        := primary ( "&&" primary )*
    primary    := "(" expr ")" | comparison
    comparison := operand OP operand
    operand    := STRING | NUMBER | IDENT | IDENT "(" [ operand ("," operand)* ] ")"

Comments run from ``//`` to the end of the line. Every error is a
:class:`FilterSyntaxError` with the position and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from keel.query.ast import OPERATORS, And, Call, Comparison, Expr, Identifier, Literal, Operand, Or
from keel.query.errors import FilterLimitError, FilterSyntaxError

MAX_LENGTH = 4096
MAX_DEPTH = 32
MAX_TERMS = 128

_OPS = sorted((*OPERATORS, "&&", "||"), key=len, reverse=True)
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_IDENT = re.compile(r"[@A-Za-z_][A-Za-z0-9_.:@#]*")
_SPACE = re.compile(r"(?:\s+|//[^\n]*)+")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "op", "str", "num", "ident", "(", ")", ",", "end"
    text: str
    pos: int
    value: str | int | float | None = None


def tokenize(text: str) -> list[Token]:
    """Split filter text into tokens.

    Raises:
        FilterSyntaxError: an unterminated string or an unknown character.
    """
    tokens: list[Token] = []
    i, n = 0, len(text)
    while True:
        space = _SPACE.match(text, i)
        if space:
            i = space.end()
        if i >= n:
            tokens.append(Token("end", "", i))
            return tokens
        ch = text[i]
        if ch in "(),":
            tokens.append(Token(ch, ch, i))
            i += 1
            continue
        if ch in "'\"":
            value, end = _read_string(text, i)
            tokens.append(Token("str", text[i:end], i, value))
            i = end
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        number = _NUMBER.match(text, i) if ch.isdigit() or ch in "-." else None
        if number:
            raw = number.group(0)
            num: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(Token("num", raw, i, num))
            i = number.end()
            continue
        if op is not None:
            tokens.append(Token("op", op, i))
            i += len(op)
            continue
        ident = _IDENT.match(text, i)
        if ident:
            tokens.append(Token("ident", ident.group(0), i))
            i = ident.end()
            continue
        raise FilterSyntaxError(f"unexpected character {ch!r}", i)


def _read_string(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == quote:
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise FilterSyntaxError("unterminated string", start, f"a closing {quote}")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.terms = 0

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def take(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, kind: str, what: str) -> Token:
        token = self.peek()
        if token.kind != kind:
            raise FilterSyntaxError(f"unexpected {_describe(token)}", token.pos, what)
        return self.take()

    def expr(self, depth: int) -> Expr:
        if depth > MAX_DEPTH:
            raise FilterLimitError(f"The filter is nested deeper than {MAX_DEPTH} levels.")
        items = [self.conjunction(depth)]
        while self.peek().kind == "op" and self.peek().text == "||":
            self.take()
            items.append(self.conjunction(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self, depth: int) -> Expr:
        items = [self.primary(depth)]
        while self.peek().kind == "op" and self.peek().text == "&&":
            self.take()
            items.append(self.primary(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def primary(self, depth: int) -> Expr:
        if self.peek().kind == "(":
            self.take()
            inner = self.expr(depth + 1)
            self.expect(")", "')'")
            return inner
        left = self.operand(depth)
        token = self.peek()
        if token.kind != "op" or token.text in ("&&", "||"):
            raise FilterSyntaxError(
                f"unexpected {_describe(token)}", token.pos, "an operator such as = or !="
            )
        self.take()
        right = self.operand(depth)
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise FilterLimitError(f"The filter has more than {MAX_TERMS} comparisons.")
        return Comparison(left, token.text, right)

    def operand(self, depth: int) -> Operand:
        token = self.take()
        if token.kind == "str":
            assert isinstance(token.value, str)
            return Literal(token.value)
        if token.kind == "num":
            return Literal(token.value)
        if token.kind == "ident":
            lowered = token.text.lower()
            if lowered in ("true", "false"):
                return Literal(lowered == "true")
            if lowered == "null":
                return Literal(None)
            if self.peek().kind == "(":
                return self.call(token, depth)
            return Identifier(token.text)
        raise FilterSyntaxError(
            f"unexpected {_describe(token)}", token.pos, "a value or a field name"
        )

    def call(self, name: Token, depth: int) -> Call:
        if depth > MAX_DEPTH:
            raise FilterLimitError(f"The filter is nested deeper than {MAX_DEPTH} levels.")
        self.take()
        args: list[Operand] = []
        if self.peek().kind != ")":
            args.append(self.operand(depth + 1))
            while self.peek().kind == ",":
                self.take()
                args.append(self.operand(depth + 1))
        self.expect(")", "')' or ','")
        return Call(name.text, tuple(args))


def _describe(token: Token) -> str:
    return "end of filter" if token.kind == "end" else repr(token.text)


def parse(text: str) -> Expr:
    """Parse filter text into a tree.

    Raises:
        FilterSyntaxError: the text is not a filter.
        FilterLimitError: the text is over the length, depth or term limits.
    """
    if len(text) > MAX_LENGTH:
        raise FilterLimitError(f"The filter is longer than {MAX_LENGTH} characters.")
    parser = _Parser(tokenize(text))
    if parser.peek().kind == "end":
        raise FilterSyntaxError("empty filter", 0, "a comparison")
    tree = parser.expr(0)
    end = parser.peek()
    if end.kind != "end":
        raise FilterSyntaxError(f"unexpected {_describe(end)}", end.pos, "'&&', '||' or the end")
    return tree
