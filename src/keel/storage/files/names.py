"""Stored file names, content-type sniffing and the headers files are served with.

An uploaded file is never stored under the name the client sent: :func:`stored_name`
makes a server-side name in PocketBase's style (``My Photo (1).PNG`` becomes
``my_photo_1_<10 random chars>.png``), so a name can neither reach outside its
record's folder nor collide with another upload. :func:`is_stored_name` checks a
name against that grammar before it is used as a storage key segment (URL path
segments, ``field-`` removals).

:func:`detect_content_type` decides a file's type from its first bytes, as
PocketBase does for the ``mimeTypes`` field option; the file name only fills in
types that bytes cannot tell, and never makes a file active content.
:func:`serve_headers` gives the headers that keep a served file from running in
the application's origin.

Everything here is pure: no I/O, no clock; only :func:`stored_name` draws randomness.
"""

from __future__ import annotations

import functools
import mimetypes
import re
import secrets
import string
import urllib.parse

#: Stems are cut to this many characters (as PocketBase does).
MAX_STEM_LENGTH = 100
#: Extensions keep at most their last this many characters (as PocketBase does).
MAX_EXTENSION_LENGTH = 20
#: Length of the random part that makes every stored name unique.
SUFFIX_LENGTH = 10
#: The longest name :func:`stored_name` makes: ``stem_suffix.ext``.
MAX_STORED_NAME_LENGTH = MAX_STEM_LENGTH + 1 + SUFFIX_LENGTH + 1 + MAX_EXTENSION_LENGTH

#: Types a browser may run as a document or script when it opens the file.
#: :func:`is_active_content` also counts every ``+xml`` type and malformed types.
ACTIVE_CONTENT_TYPES: frozenset[str] = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "application/xslt+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "application/wasm",
        "application/x-shockwave-flash",
        "multipart/x-mixed-replace",
    }
)

_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_NON_EXT = re.compile(r"[^a-z0-9]+")
_STORED_NAME = re.compile(
    rf"[a-z0-9]+(?:_[a-z0-9]+)*_[a-z0-9]{{{SUFFIX_LENGTH}}}(?:\.[a-z0-9]{{1,{MAX_EXTENSION_LENGTH}}})?"
)
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")

_OCTET_STREAM = "application/octet-stream"
_ZIP = "application/zip"
_WHITESPACE = b" \t\n\r\x0c"
_UTF8_BOM = b"\xef\xbb\xbf"
# Bytes that never occur in text files; their presence makes a head binary.
_BINARY_BYTES = bytes(b for b in range(0x20) if b not in b"\t\n\x0c\r\x1b")
# WHATWG MIME sniffing's HTML patterns, matched case-insensitively after whitespace.
_HTML_TAGS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
)
_TAG_END = b" \t\n\r\x0c>/"
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", _ZIP),
    (b"PK\x05\x06", _ZIP),
    (b"PK\x07\x08", _ZIP),
)
# Types the bytes decide: a name alone never claims one of them.
_SNIFFED_TYPES = frozenset(
    {t for _, t in _SIGNATURES} | {"image/webp", "image/bmp", "text/html", "image/svg+xml"}
)
# ZIP-based formats: a ZIP whose name says one of these is taken at its word.
_ZIP_CONTAINER_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/epub+zip",
        "application/java-archive",
        "application/vnd.android.package-archive",
    }
)
# Text formats a name may claim for text content.
_TEXT_APPLICATION_TYPES = frozenset(
    {"application/json", "application/yaml", "application/toml", "application/x-sh"}
)
# Common types Python's built-in table lacks (it is used without /etc/mime.types).
_EXTRA_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".epub": "application/epub+zip",
    ".jar": "application/java-archive",
    ".apk": "application/vnd.android.package-archive",
    ".webp": "image/webp",
    ".md": "text/markdown",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
}


def stored_name(original: str, *, default_extension: str = "") -> str:
    """A new server-side name for an upload called ``original``, PocketBase-style.

    Only the base name counts (anything up to the last ``/`` or ``\\`` is
    dropped). The extension is what follows the last dot, lowercased, reduced
    to ``[a-z0-9]`` and to its last :data:`MAX_EXTENSION_LENGTH` characters. The
    stem is snake-cased like PocketBase's ``inflector.Snakecase``: split at
    every run of characters outside ``[A-Za-z0-9]`` and before an uppercase
    letter that follows a non-uppercase one, joined with ``_``, lowercased and
    cut to :data:`MAX_STEM_LENGTH`; ``file`` when nothing is left. A random
    :data:`SUFFIX_LENGTH`-character ``[a-z0-9]`` part from :mod:`secrets` follows.

    Examples: ``My Photo (1).PNG`` -> ``my_photo_1_<random>.png``,
    ``CamelCaseName.txt`` -> ``camel_case_name_<random>.txt``,
    ``../../etc/passwd`` -> ``passwd_<random>``, ``日本語.txt`` -> ``file_<random>.txt``.

    Args:
        original: The client's file name; any string, including empty.
        default_extension: Used (cleaned the same way) when ``original`` has no
            extension or one that cleans to nothing, e.g. one derived from the
            detected content type, as PocketBase does from the content.

    Returns:
        A name for which :func:`is_stored_name` holds: it matches
        ``^[a-z0-9_]+(\\.[a-z0-9]+)?$``, has no path separator and is at most
        :data:`MAX_STORED_NAME_LENGTH` characters long, whatever the input.
    """
    base = re.split(r"[/\\]", original)[-1]
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    extension = _clean_extension(extension) or _clean_extension(default_extension)
    clean = _snake_case(stem)[:MAX_STEM_LENGTH].strip("_") or "file"
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))
    return f"{clean}_{suffix}.{extension}" if extension else f"{clean}_{suffix}"


def _clean_extension(extension: str) -> str:
    # Lowercasing first lets "PNG" through; filtering after it drops anything
    # non-ASCII that lowercasing produced.
    return _NON_EXT.sub("", extension.lower())[-MAX_EXTENSION_LENGTH:]


def _snake_case(text: str) -> str:
    words: list[str] = []
    for word in _NON_ALNUM.split(text):
        if not word:
            continue
        chars: list[str] = []
        for i, char in enumerate(word):
            if char.isupper() and i > 0 and not word[i - 1].isupper():
                chars.append("_")
            chars.append(char)
        words.append("".join(chars))
    return "_".join(words).lower()


def is_stored_name(name: str) -> bool:
    """Whether ``name`` has the shape of a name :func:`stored_name` makes.

    That is ``stem_suffix`` or ``stem_suffix.ext``: a lowercase snake-case stem of
    ``[a-z0-9]`` words, ``_``, :data:`SUFFIX_LENGTH` ``[a-z0-9]`` characters and an
    optional extension of 1 to :data:`MAX_EXTENSION_LENGTH` ``[a-z0-9]``
    characters, at most :data:`MAX_STORED_NAME_LENGTH` characters in all. Such a
    name is always one safe path segment.

    Note:
        Names PocketBase itself made may fail this (it keeps the extension's case
        and double extensions, e.g. ``photo_abc1234567.PNG``, ``a_abc1234567.tar.gz``).
    """
    return len(name) <= MAX_STORED_NAME_LENGTH and _STORED_NAME.fullmatch(name) is not None


def is_active_content(content_type: str) -> bool:
    """Whether a browser opening a file of this type may run it (HTML, SVG, XML, JS...).

    Parameters and case are ignored. Every ``+xml`` type counts, and so does a
    value that is not a well-formed ``type/subtype``: it cannot be shown safe.
    """
    essence = _essence(content_type)
    return (
        _CONTENT_TYPE.fullmatch(essence) is None
        or essence in ACTIVE_CONTENT_TYPES
        or essence.endswith("+xml")
    )


def serve_headers(content_type: str, filename: str, download: bool) -> dict[str, str]:
    """Headers to send with a stored file of ``content_type`` named ``filename``.

    Always ``X-Content-Type-Options: nosniff`` (the browser keeps to the type it
    is given) and a ``Content-Disposition``: ``attachment`` when ``download`` or
    when the type is active content (:func:`is_active_content`), else ``inline``.
    The disposition's ``filename`` is the base name with every character
    outside printable ASCII and ``"\\%;`` replaced by ``_`` (``file`` if empty);
    when that changed the name, an RFC 6266 / RFC 8187 ``filename*`` carries the
    UTF-8 name percent-encoded. Active content also gets
    ``Content-Security-Policy: default-src 'none'; sandbox``, so even opened
    directly it can neither run script nor load anything.

    Note:
        PocketBase serves only images, audio, video and PDF inline, and sends its
        sandboxing CSP with every file; here only active types are forced to
        download.
    """
    active = is_active_content(content_type)
    disposition = "attachment" if download or active else "inline"
    headers = {
        "Content-Disposition": _content_disposition(disposition, filename),
        "X-Content-Type-Options": "nosniff",
    }
    if active:
        headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return headers


def _content_disposition(disposition: str, filename: str) -> str:
    base = re.split(r"[/\\]", filename)[-1]
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%;' else "_" for c in base)
    value = f'{disposition}; filename="{fallback or "file"}"'
    if fallback != base:
        encoded = urllib.parse.quote(base.encode("utf-8", "replace"), safe="")
        value += f"; filename*=UTF-8''{encoded}"
    return value


def detect_content_type(head: bytes, filename: str) -> str:
    """The content type of a file from its first bytes, else from its name.

    The bytes decide first: PNG, JPEG, GIF, WebP, BMP, TIFF, PDF and ZIP by
    signature; SVG, XML and HTML by their markup at the start (after a BOM and
    whitespace); then text (no control bytes, valid UTF-8) is ``text/plain``.
    The name's extension only refines that:

    - a ZIP named as a ZIP-based format (``.docx``, ``.odt``, ``.epub``...) gets
      that format's type;
    - text named as a text format (``text/*``, JSON, YAML...) gets that type;
    - other binary content gets the extension's type, else
      ``application/octet-stream``.

    A name never yields active content (:func:`is_active_content`) nor a type
    the bytes would have shown (``photo.png`` holding garbage is
    ``application/octet-stream``; ``page.html`` holding plain text is ``text/plain``).

    Args:
        head: The file's first bytes; 512 or more are enough for every rule.
        filename: The client's (or stored) file name; only its extension is used.

    Returns:
        A bare lowercase ``type/subtype``, without parameters.
    """
    sniffed = _sniff_binary(head)
    by_name = _type_from_name(filename)
    if sniffed == _ZIP:
        return by_name if by_name in _ZIP_CONTAINER_TYPES else _ZIP
    if sniffed is not None:
        return sniffed
    if _is_text(head):
        markup = _sniff_markup(head)
        if markup is not None:
            return markup
        if by_name is not None and _is_text_type(by_name) and not is_active_content(by_name):
            return by_name
        return "text/plain"
    if (
        by_name is not None
        and by_name not in _SNIFFED_TYPES
        and not _is_text_type(by_name)
        and not is_active_content(by_name)
    ):
        return by_name
    return _OCTET_STREAM


def _sniff_binary(head: bytes) -> str | None:
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    # "BM" alone starts too many text files; BMP's reserved header bytes are zero.
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\x00\x00\x00\x00":
        return "image/bmp"
    return None


def _sniff_markup(head: bytes) -> str | None:
    text = head.removeprefix(_UTF8_BOM).lstrip(_WHITESPACE).lower()
    if not text.startswith(b"<"):
        return None
    if text.startswith(b"<?xml"):
        if b"<svg" in text:
            return "image/svg+xml"
        if b"<html" in text:
            return "application/xhtml+xml"
        return "text/xml"
    if text.startswith((b"<svg", b"<!doctype svg")):
        return "image/svg+xml"
    if text.startswith(b"<!--") and b"<svg" in text and b"<html" not in text:
        return "image/svg+xml"
    if text.startswith(b"<!--"):
        return "text/html"
    for tag in _HTML_TAGS:
        # The tag must end there ("<b>" is HTML, "<bold" is not); b"" is in every bytes.
        if text.startswith(tag) and text[len(tag) : len(tag) + 1] in _TAG_END:
            return "text/html"
    return None


def _is_text(head: bytes) -> bool:
    if len(head.translate(None, _BINARY_BYTES)) != len(head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the head is still text.
        return exc.reason == "unexpected end of data" and exc.start >= len(head) - 3
    return True


def _is_text_type(content_type: str) -> bool:
    return (
        content_type.startswith("text/")
        or content_type in _TEXT_APPLICATION_TYPES
        or content_type.endswith("+json")
    )


def _type_from_name(filename: str) -> str | None:
    base = re.split(r"[/\\]", filename)[-1]
    stem, dot, extension = base.rpartition(".")
    if not dot or not stem:
        return None
    key = "." + extension.lower()
    table = _mime_table()
    found = _EXTRA_TYPES.get(key) or table.types_map[True].get(key)
    return found or table.types_map[False].get(key)


@functools.cache
def _mime_table() -> mimetypes.MimeTypes:
    # Python's built-in table only, so every machine answers alike; built on
    # first use because MimeTypes() also loads the system tables into the
    # module-global one.
    return mimetypes.MimeTypes()


def _essence(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()
