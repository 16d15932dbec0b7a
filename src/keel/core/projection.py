"""Response projection: the ``fields`` query parameter.

``fields=id,title,expand.author.name,body:excerpt(200,true)`` keeps only the
named keys of a JSON response. Pure, no IO: parse once with
:func:`parse_fields`, apply with :func:`project` (a record, or any JSON) or
:func:`project_page` (a list envelope, where PocketBase projects each item and
keeps ``page``, ``perPage``, ``totalItems`` and ``totalPages``).

The semantics follow PocketBase's observable behaviour:

- The value is a comma list of entries (commas inside ``(...)`` belong to the
  modifier). Each entry is trimmed; empty entries are skipped; no entry at
  all means "everything".
- An entry is a dotted path of exact, case-sensitive keys. A path reaching a
  list applies to each element; a path going below a string, number or other
  scalar keeps that value whole.
- ``*`` as the *last* segment keeps every key of that level not named
  otherwise at it; anywhere else it is an ordinary key.
- Naming a key whole (``expand``) wins over any deeper path through it
  (``expand.author.name``), whatever the order. Among entries for the same
  whole key, or for ``*`` at one level, the last one's modifier wins.
- ``:excerpt(maxLength, withEllipsis?)`` turns a string into plain text (see
  :func:`plain_text`), cut to ``maxLength`` characters, right-trimmed, with
  ``...`` appended when cut and ``withEllipsis`` is true. Other values are
  left as they are. ``maxLength`` is a positive integer (a decimal part is
  dropped); ``withEllipsis`` is true for ``1``, ``t``, ``T``, ``true``,
  ``True`` or ``TRUE``, and false otherwise.

Keel is stricter than PocketBase on malformed modifiers: anything but
``name(args)`` with nothing after the closing parenthesis, and unbalanced
parentheses anywhere, are a 400.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from typing import Any

from keel.core.errors import BadRequestError

#: The largest ``maxLength`` accepted (PocketBase's 64-bit integer bound).
MAX_EXCERPT_LENGTH = 2**63 - 1
#: Nesting of objects and lists below which :func:`project` keeps values whole.
MAX_NESTING = 256

_TRUE = frozenset({"1", "t", "T", "true", "True", "TRUE"})
_MODIFIER_RE = re.compile(r"\s*([A-Za-z_]\w*)\s*\((.*)\)\s*", re.DOTALL)
_LENGTH_RE = re.compile(r"\+?([0-9]+)(?:\.[0-9]*)?")
#: Runs of these collapse to one space (HTML's ASCII whitespace, as PocketBase).
_SPACE_RE = re.compile(r"[\t\n\f\r ]+")
#: Trimmed from both ends: every Unicode space separator, as PocketBase.
_TRIM = "".join(
    [
        "\t\n\v\f\r \x85\xa0\u1680",
        *map(chr, range(0x2000, 0x200B)),
        "\u2028\u2029\u202f\u205f\u3000",
    ]
)


@dataclass(frozen=True, slots=True)
class Excerpt:
    """The ``:excerpt(maxLength, withEllipsis)`` modifier."""

    max_length: int
    ellipsis: bool = False

    def apply(self, value: Any) -> Any:
        """A short plain-text version of a string; any other value unchanged."""
        if not isinstance(value, str):
            return value
        text = plain_text(value)
        if len(text) <= self.max_length:
            return text
        cut = text[: self.max_length].rstrip(_TRIM)
        return cut + "..." if self.ellipsis else cut


@dataclass(slots=True)
class Projection:
    """One level of a parsed ``fields`` value.

    Attributes:
        whole: keep the value whole (with ``excerpt`` applied); ``fields`` and
            ``wildcard`` are then ignored.
        excerpt: the modifier of a whole value, if any.
        fields: what to keep of each named key.
        wildcard: what to keep of the keys ``fields`` does not name (``*``).
    """

    whole: bool = False
    excerpt: Excerpt | None = None
    fields: dict[str, Projection] = field(default_factory=dict)
    wildcard: Projection | None = None

    @property
    def everything(self) -> bool:
        """Whether projecting changes nothing (an empty ``fields`` value)."""
        return not self.whole and not self.fields and self.wildcard is None


def parse_fields(text: str) -> Projection:
    """Parse a ``fields`` value.

    Raises:
        BadRequestError: unbalanced parentheses, or a malformed or unknown
            modifier.
    """
    root = Projection()
    for entry in _entries(text):
        entry = entry.strip()
        if not entry:
            continue
        path, colon, modifier = entry.partition(":")
        leaf = Projection(whole=True, excerpt=_modifier(modifier) if colon else None)
        *parents, last = path.split(".")
        node = root
        for name in parents:
            node = node.fields.setdefault(name, Projection())
        if last == "*":
            node.wildcard = leaf
        else:
            node.fields[last] = leaf  # a whole key replaces any deeper paths through it
    return root


def project(data: Any, projection: Projection) -> Any:
    """``data`` with only what ``projection`` keeps; the input is not modified.

    Note:
        The result may share values kept whole with ``data``. Values nested
        deeper than :data:`MAX_NESTING` lists and objects are kept whole, so a
        pathological JSON value cannot exhaust the stack.
    """
    return _project(data, projection, 0)


def _project(data: Any, projection: Projection, depth: int) -> Any:
    if projection.whole:
        return projection.excerpt.apply(data) if projection.excerpt else data
    if projection.everything or depth >= MAX_NESTING:
        return data
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            node = projection.fields.get(key, projection.wildcard)
            if node is not None:
                out[key] = _project(value, node, depth + 1)
        return out
    if isinstance(data, list):
        return [_project(item, projection, depth + 1) for item in data]
    return data


def project_page(page: dict[str, Any], projection: Projection) -> dict[str, Any]:
    """A list envelope with each of its ``items`` projected, the rest kept."""
    if projection.everything or not isinstance(page.get("items"), list):
        return page
    return {**page, "items": [project(item, projection) for item in page["items"]]}


def _entries(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses."""
    entries: list[str] = []
    depth = start = 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise BadRequestError("Invalid fields parameter: unbalanced parentheses.")
        elif char == "," and depth == 0:
            entries.append(text[start:i])
            start = i + 1
    if depth:
        raise BadRequestError("Invalid fields parameter: unbalanced parentheses.")
    entries.append(text[start:])
    return entries


def _modifier(text: str) -> Excerpt:
    match = _MODIFIER_RE.fullmatch(text)
    if match is None:
        raise BadRequestError(f"Invalid fields modifier {text!r}: expected name(arguments).")
    name, raw_args = match.groups()
    if name != "excerpt":
        raise BadRequestError(f"Unknown fields modifier {name!r}.")
    args = [a.strip() for a in raw_args.split(",")]
    while args and not args[-1]:
        args.pop()
    if not 1 <= len(args) <= 2:
        raise BadRequestError("The excerpt modifier takes maxLength and an optional withEllipsis.")
    length = _LENGTH_RE.fullmatch(args[0])
    max_length = int(length.group(1)) if length else 0
    if not 1 <= max_length <= MAX_EXCERPT_LENGTH:
        raise BadRequestError("The excerpt maxLength must be a positive integer.")
    return Excerpt(max_length, len(args) == 2 and args[1] in _TRUE)


# -- HTML to plain text ---------------------------------------------------------

#: Elements rendered inline: no word break around them.
INLINE_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "b", "bdo", "big", "br", "cite", "code", "em", "embed", "i",
        "img", "input", "label", "q", "small", "span", "strike", "strong", "sub", "sup", "time",
    }
)  # fmt: skip
#: Elements whose content is not text a reader sees (scripts, forms, media).
SKIPPED_TAGS = frozenset(
    {
        "button", "dialog", "form", "iframe", "object", "option", "picture", "script",
        "select", "style", "svg", "template", "textarea", "title",
    }
)  # fmt: skip


#: Elements whose content is raw text, up to their closing tag (all skipped).
RAW_TEXT_TAGS = frozenset({"iframe", "script", "style", "textarea", "title"})

# Linear-time on any input: alternatives start with distinct characters and an
# unterminated comment, quote or tag runs to the end, as in an HTML parser.
_MARKUP_RE = re.compile(
    r"<!--.*?(?:-->|\Z)"  # comment
    r"|<[!?][^>]*(?:>|\Z)"  # doctype, CDATA, processing instruction
    r"|<(/?)([A-Za-z][^\t\n\f\r />]*)"  # tag name
    r"((?:[^>\"']|\"[^\"]*(?:\"|\Z)|'[^']*(?:'|\Z))*)(?:>|\Z)",  # attributes
    re.DOTALL,
)
_RAW_TEXT_END = {
    tag: re.compile(rf"</{tag}(?=[\t\n\f\r />]|\Z)[^>]*(?:>|\Z)", re.IGNORECASE)
    for tag in RAW_TEXT_TAGS
}


def _text_parts(html: str) -> Iterator[str]:
    """The visible text of ``html`` in pieces, with a space for each word break."""
    pos, skipping, length = 0, 0, len(html)
    while pos < length:
        match = _MARKUP_RE.search(html, pos)
        end = match.start() if match else length
        if not skipping and end > pos:
            yield unescape(html[pos:end])
        if match is None:
            return
        pos = match.end()
        closing, name, attrs = match.groups()
        if name is None:
            continue  # comments and declarations show nothing
        tag = name.lower()
        if tag in SKIPPED_TAGS:
            if closing:
                skipping = max(0, skipping - 1)
            elif tag in RAW_TEXT_TAGS:
                close = _RAW_TEXT_END[tag].search(html, pos)
                pos = close.end() if close else length
            elif not attrs.rstrip().endswith("/"):
                skipping += 1
        elif tag not in INLINE_TAGS and not skipping:
            yield " "


def plain_text(html: str) -> str:
    """The text of an HTML fragment, as one line.

    Tags go (block-level ones leave a word break), character references are
    decoded, the content of scripts, styles, forms and embedded media is
    dropped, runs of ASCII whitespace become one space (``&nbsp;`` stays
    inside the text), and any Unicode space is trimmed from both ends. Never
    fails, whatever the input.
    """
    if "<" in html or "&" in html:
        html = "".join(_text_parts(html))
    return _SPACE_RE.sub(" ", html).strip(_TRIM)
