"""Stored file names, content sniffing and serve headers (``keel.storage.files.names``).

Stems marked "PocketBase" are what the real PocketBase 0.40.6 binary made of the
same upload names (multipart uploads to a file field, names read back from the
record). Deliberate differences: the extension is lowercased and single
(PocketBase keeps ``.PNG`` and ``.tar.gz``), directories after ``\\`` are dropped
too, and an empty stem becomes ``file`` (PocketBase pads stems under 3
characters with random ones).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.storage.files.names import (
    ACTIVE_CONTENT_TYPES,
    MAX_STORED_NAME_LENGTH,
    detect_content_type,
    is_active_content,
    is_stored_name,
    serve_headers,
    stored_name,
)

SHAPE = re.compile(r"^[A-Za-z0-9_]+(\.[a-z0-9]+)?$")
PARTS = re.compile(r"(?P<stem>.*)_[a-z0-9]{10}(?:\.(?P<ext>[a-z0-9]+))?")


def parts(name: str) -> tuple[str, str]:
    """``(stem, extension)`` of a stored name, without its random part."""
    match = PARTS.fullmatch(name)
    assert match is not None, name
    return match["stem"], match["ext"] or ""


# --- stored_name ------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "stem", "extension"),
    [
        # Same stem as PocketBase:
        ("My Photo (1).PNG", "my_photo_1", "png"),
        ("héllo wörld.txt", "h_llo_w_rld", "txt"),
        ("CamelCaseName.txt", "camel_case_name", "txt"),
        ("HTMLPage.HTML", "htmlpage", "html"),
        ("fooBar_baz.txt", "foo_bar_baz", "txt"),
        ("foo123bar.txt", "foo123bar", "txt"),
        ("some-dashed-name.TXT", "some_dashed_name", "txt"),
        ("under_score__double.txt", "under_score_double", "txt"),
        ("  spaces  .txt", "spaces", "txt"),
        ("emoji😀name.png", "emoji_name", "png"),
        ("Ünïcödé.JPG", "n_c_d", "jpg"),
        ("abc.txt", "abc", "txt"),
        ("123.txt", "123", "txt"),
        ("../../etc/passwd", "passwd", ""),
        ("/abs/path/file.txt", "file", "txt"),
        ("%2e%2e%2fevil.txt", "2e_2e_2fevil", "txt"),
        ("\uff0e\uff0e\uff0ffull.txt", "full", "txt"),
        ("a" * 300 + ".txt", "a" * 100, "txt"),
        ("name." + "e" * 40, "name", "e" * 20),
        ("noext", "noext", ""),
        ("file.Jpeg", "file", "jpeg"),
        # Keel's own choices:
        ("a.b.c.d.txt", "a_b_c_d", "txt"),
        ("archive.tar.gz", "archive_tar", "gz"),
        ("..\\..\\win.ini", "win", "ini"),
        ("C:\\dir\\file.txt", "file", "txt"),
        ("x.txt", "x", "txt"),
        ("日本語.txt", "file", "txt"),
        (".hidden", "file", "hidden"),
        ("", "file", ""),
        (".", "file", ""),
        ("..", "file", ""),
        ("dir/", "file", ""),
        ("trailing.", "trailing", ""),
        ("mix.ÄBC", "mix", "bc"),
        ("name.ex-t+=#*", "name", "ext"),
        ("nul\x00byte.txt\x00.png", "nul_byte_txt", "png"),
        ("foo123Bar.txt", "foo123_bar", "txt"),
    ],
)
def test_stored_name_normalizes_like_pocketbase(original: str, stem: str, extension: str) -> None:
    """Stems are snake-cased ASCII as PocketBase makes them; the extension is cleaned."""
    name = stored_name(original)
    assert (stem, extension) == parts(name)
    assert is_stored_name(name)


def test_stored_name_adds_a_fresh_random_part() -> None:
    """Two uploads with the same name get different stored names."""
    assert stored_name("a.txt") != stored_name("a.txt")


@pytest.mark.parametrize(
    ("original", "default", "extension"),
    [
        ("noext", "txt", "txt"),
        ("noext", ".PNG", "png"),
        ("trailing.", "txt", "txt"),
        ("a.pdf", "txt", "pdf"),
    ],
)
def test_stored_name_default_extension(original: str, default: str, extension: str) -> None:
    """A name with no usable extension takes the (cleaned) default one."""
    assert extension == parts(stored_name(original, default_extension=default))[1]


@given(st.text(max_size=400) | st.text(alphabet="./\\%2eEfF\uff0e\uff0f\x00 aZ😀", max_size=60))
def test_stored_name_is_always_one_safe_segment(original: str) -> None:
    """For any input the result matches the name shape, has no separator and is short."""
    name = stored_name(original)
    assert SHAPE.fullmatch(name) is not None
    assert len(name) <= MAX_STORED_NAME_LENGTH <= 150
    assert not {"/", "\\", "\x00"} & set(name)
    assert name not in {".", ".."}
    assert is_stored_name(name)


@given(st.text(max_size=200), st.text(max_size=40))
def test_stored_name_with_any_default_extension_is_safe(original: str, default: str) -> None:
    """Arbitrary default extensions cannot break the name shape either."""
    assert is_stored_name(stored_name(original, default_extension=default))


def test_very_long_name_is_cut() -> None:
    """A 10 000-character name gives a name within the length limit."""
    assert len(stored_name("é" * 5_000 + "b" * 5_000 + ".png")) <= MAX_STORED_NAME_LENGTH


# --- is_stored_name ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("my_photo_1_timdt5f6dt.png", True),
        ("file_0123456789", True),
        ("a_b_c_0123456789.txt", True),
        ("x_0123456789." + "e" * 20, True),
        ("x_0123456789." + "e" * 21, False),
        ("a" * 100 + "_0123456789.txt", True),
        ("", False),
        ("_0123456789.txt", False),
        ("x_012345678.txt", False),
        ("x__0123456789.txt", False),
        ("X_0123456789.txt", False),
        ("x_0123456789.PNG", False),
        ("x_0123456789.tar.gz", False),
        ("x_0123456789.", False),
        ("../x_0123456789.txt", False),
        ("a/x_0123456789.txt", False),
        ("a\\x_0123456789.txt", False),
        ("x_0123456789.txt\n", False),
        ("x_0123456789.txt\x00", False),
        ("thumbs_x_0123456789.txt/100x100_x_0123456789.txt", False),
        ("a" * 140 + "_0123456789", False),
    ],
)
def test_is_stored_name(name: str, expected: bool) -> None:
    """Only names shaped like stored_name's output pass."""
    assert expected == is_stored_name(name)


# --- is_active_content / serve_headers ---------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html", True),
        ("TEXT/HTML; charset=utf-8", True),
        ("image/svg+xml", True),
        ("application/xhtml+xml", True),
        ("text/xml", True),
        ("application/xml", True),
        ("application/rss+xml", True),
        ("text/javascript", True),
        ("application/javascript", True),
        ("", True),
        ("html", True),
        ("text/html\r\nX-Evil: 1", True),
        ("image/png", False),
        ("image/jpeg", False),
        ("application/pdf", False),
        ("text/plain; charset=utf-8", False),
        ("application/octet-stream", False),
        ("video/mp4", False),
    ],
)
def test_is_active_content(content_type: str, expected: bool) -> None:
    """Scriptable types, any +xml type and malformed types count as active."""
    assert expected == is_active_content(content_type)


def test_active_content_types_are_active() -> None:
    """Every listed active type is reported active."""
    assert all(is_active_content(content_type) for content_type in ACTIVE_CONTENT_TYPES)


@pytest.mark.parametrize(
    ("content_type", "filename", "download", "expected"),
    [
        (
            "image/png",
            "photo_0123456789.png",
            False,
            {
                "Content-Disposition": 'inline; filename="photo_0123456789.png"',
                "X-Content-Type-Options": "nosniff",
            },
        ),
        (
            "image/png",
            "photo_0123456789.png",
            True,
            {
                "Content-Disposition": 'attachment; filename="photo_0123456789.png"',
                "X-Content-Type-Options": "nosniff",
            },
        ),
        (
            "text/html; charset=utf-8",
            "page_0123456789.html",
            False,
            {
                "Content-Disposition": 'attachment; filename="page_0123456789.html"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        ),
        (
            "image/svg+xml",
            "logo_0123456789.svg",
            True,
            {
                "Content-Disposition": 'attachment; filename="logo_0123456789.svg"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
            },
        ),
        (
            "text/plain",
            "résumé.txt",
            False,
            {
                "Content-Disposition": (
                    "inline; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt"
                ),
                "X-Content-Type-Options": "nosniff",
            },
        ),
        (
            "text/plain",
            '../a"b\r\nSet-Cookie: x=1;%.txt',
            False,
            {
                "Content-Disposition": (
                    'inline; filename="a_b__Set-Cookie: x=1__.txt"; '
                    "filename*=UTF-8''a%22b%0D%0ASet-Cookie%3A%20x%3D1%3B%25.txt"
                ),
                "X-Content-Type-Options": "nosniff",
            },
        ),
        (
            "application/pdf",
            "",
            False,
            {
                "Content-Disposition": 'inline; filename="file"',
                "X-Content-Type-Options": "nosniff",
            },
        ),
    ],
)
def test_serve_headers(
    content_type: str, filename: str, download: bool, expected: dict[str, str]
) -> None:
    """Disposition, nosniff and the sandbox CSP for active content; names made header-safe."""
    assert expected == serve_headers(content_type, filename, download)


@given(st.text(max_size=100), st.text(max_size=40), st.booleans())
def test_serve_headers_values_are_always_printable_ascii(
    filename: str, content_type: str, download: bool
) -> None:
    """No file name can inject a header line or non-ASCII byte into the response."""
    for value in serve_headers(content_type, filename, download).values():
        assert all(" " <= char <= "~" for char in value)


# --- detect_content_type ------------------------------------------------------

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        (PNG_HEAD, "x.png", "image/png"),
        (PNG_HEAD, "x.html", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "x", "image/jpeg"),
        (b"GIF89a\x01\x00", "x.txt", "image/gif"),
        (b"GIF87a\x01\x00", "x", "image/gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "x", "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", "x.wav", "audio/x-wav"),
        (b"BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00", "x", "image/bmp"),
        (b"BMW is a car brand", "x", "text/plain"),
        (b"II*\x00\x08\x00", "x", "image/tiff"),
        (b"MM\x00*\x00\x00", "x", "image/tiff"),
        (b"%PDF-1.7\n", "x.txt", "application/pdf"),
        (b"PK\x03\x04\x14\x00", "x.zip", "application/zip"),
        (b"PK\x03\x04\x14\x00", "x.txt", "application/zip"),
        (
            b"PK\x03\x04\x14\x00",
            "report.DOCX",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (b"PK\x05\x06" + bytes(18), "x", "application/zip"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "x.png", "image/svg+xml"),
        (b'<?xml version="1.0"?>\n<svg xmlns="..."/>', "x", "image/svg+xml"),
        (b"<!DOCTYPE svg PUBLIC><svg>", "x", "image/svg+xml"),
        (b"<!-- made by hand -->\n<svg>", "x", "image/svg+xml"),
        (b'<?xml version="1.0"?><root/>', "x", "text/xml"),
        (b'<?xml version="1.0"?><html xmlns="...">', "x", "application/xhtml+xml"),
        (b"\xef\xbb\xbf  <!doctype HTML><p>hi", "x.txt", "text/html"),
        (b"<html><body>", "x.png", "text/html"),
        (b"<script>alert(1)</script>", "x.jpg", "text/html"),
        (b"<b>bold", "x", "text/html"),
        (b"<p\n>", "x", "text/html"),
        (b"<!-- comment -->", "x", "text/html"),
        (b"<bold>", "x.txt", "text/plain"),
        (b"hello <script>alert(1)</script>", "x.html", "text/plain"),
        (b"hello world\n", "x.txt", "text/plain"),
        (b"hello world\n", "x", "text/plain"),
        (b"alert(1)", "x.js", "text/plain"),
        (b'{"a": 1}', "x.json", "application/json"),
        (b"a,b\n1,2\n", "x.csv", "text/csv"),
        (b"# Title\n", "x.md", "text/markdown"),
        (b"caf\xc3", "x", "text/plain"),
        (b"caf\xc3\xa9", "x", "text/plain"),
        (b"", "x.csv", "text/csv"),
        (b"", "x", "text/plain"),
        (b"hello", "x.mp4", "text/plain"),
        (b"\x00\x00\x00\x18ftypmp42", "clip.mp4", "video/mp4"),
        (b"\x00\x01garbage", "x.png", "application/octet-stream"),
        (b"\x00\x01garbage", "x.html", "application/octet-stream"),
        (b"\x00\x01garbage", "x.svg", "application/octet-stream"),
        (b"\x00\x01garbage", "x.txt", "application/octet-stream"),
        (b"\x00\x01garbage", "x", "application/octet-stream"),
        (b"\xff\xfe\x00\x00", "x.unknownext", "application/octet-stream"),
        (b"\x00\x01garbage", ".mp4", "application/octet-stream"),
    ],
)
def test_detect_content_type(head: bytes, filename: str, expected: str) -> None:
    """Bytes decide; the extension only refines ZIP, text and unknown binary, never to active."""
    assert expected == detect_content_type(head, filename)


@given(st.binary(max_size=64), st.text(max_size=30))
def test_detect_content_type_from_name_is_never_active(head: bytes, filename: str) -> None:
    """Active content is only ever reported when the bytes themselves are markup."""
    content_type = detect_content_type(head, filename)
    assert "/" in content_type
    if is_active_content(content_type):
        assert head.lstrip(b"\xef\xbb\xbf \t\n\r\x0c").startswith(b"<")
