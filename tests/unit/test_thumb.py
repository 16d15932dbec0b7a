"""Thumb specs, thumb geometry and image decoding guards (``keel.storage.files.thumb``).

Sizes and crop positions marked "PocketBase" were checked against the real
PocketBase 0.40.6 binary: a collection with a file field listing these thumbs,
sources uploaded over multipart, ``/api/files/...?thumb=`` fetched and measured.
"""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from keel.storage.files.thumb import (
    MAX_SOURCE_PIXELS,
    MAX_THUMB_SIDE,
    THUMBABLE_TYPES,
    ImageTooLargeError,
    ThumbSpec,
    image_size,
    make_thumb,
    parse_thumb,
    thumb_size,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
COLOURS = {"red": RED, "green": GREEN, "blue": BLUE}


def bands(width: int, height: int, *, horizontal: bool = True) -> Image.Image:
    """Red, green, blue thirds: top to bottom (``horizontal``) or left to right."""
    image = Image.new("RGB", (width, height))
    for i, colour in enumerate((RED, GREEN, BLUE)):
        if horizontal:
            image.paste(colour, (0, height * i // 3, width, height * (i + 1) // 3))
        else:
            image.paste(colour, (width * i // 3, 0, width * (i + 1) // 3, height))
    return image


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, image_format, **options)
    return out.getvalue()


def thumb(data: bytes, spec: str) -> Image.Image:
    """The decoded thumb, in RGB."""
    encoded, _ = make_thumb(io.BytesIO(data), parse_thumb(spec))
    return Image.open(io.BytesIO(encoded)).convert("RGB")


def colour_at(image: Image.Image, x: int, y: int) -> str:
    """The name of the band colour nearest the pixel (tolerates JPEG/WebP loss)."""
    pixel = image.getpixel((x, y))
    assert isinstance(pixel, tuple)

    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(pixel, COLOURS[name], strict=False))

    return min(COLOURS, key=distance)


def edges(image: Image.Image) -> tuple[str, str, str, str]:
    """Colours at the middle of the top, bottom, left and right edges."""
    width, height = image.size
    return (
        colour_at(image, width // 2, 0),
        colour_at(image, width // 2, height - 1),
        colour_at(image, 0, height // 2),
        colour_at(image, width - 1, height // 2),
    )


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose IHDR declares ``width``x``height`` but whose IDAT is ``idat``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


class ReadTracker(io.BytesIO):
    """A stream that remembers the furthest offset read."""

    furthest = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return data


TALL_PNG = encode(bands(60, 120), "PNG")
WIDE_PNG = encode(bands(120, 60, horizontal=False), "PNG")
SMALL_PNG = encode(bands(20, 10, horizontal=False), "PNG")


# --- parse_thumb -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100x100", ThumbSpec(100, 100, "")),
        ("100x100t", ThumbSpec(100, 100, "t")),
        ("100x100b", ThumbSpec(100, 100, "b")),
        ("100x100f", ThumbSpec(100, 100, "f")),
        ("0x50", ThumbSpec(0, 50, "")),
        ("50x0", ThumbSpec(50, 0, "")),
        ("0x50t", ThumbSpec(0, 50, "t")),
        ("1x1", ThumbSpec(1, 1, "")),
        ("10000x10000f", ThumbSpec(10000, 10000, "f")),
    ],
)
def test_parse_thumb_accepts_pocketbase_sizes(text: str, expected: ThumbSpec) -> None:
    """Every WxH form PocketBase accepts for a field's thumbs parses, and prints back."""
    spec = parse_thumb(text)
    assert expected == spec
    assert text == str(spec)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "100",
        "0x0",
        "0x0f",
        "100x100x",
        "100x100tt",
        "100x100c",
        "-1x100",
        "100x-1",
        "100X100",
        " 100x100",
        "100x100 ",
        "100x100\n",
        "010x10",
        "10x00",
        "10001x1",
        "1x10001",
        "99999999x1",
        "1" * 10_000 + "x1",
        "\uff11\uff10\uff10x\uff11\uff10\uff10",
        "\u0661\u0660x\u0661\u0660",
        "1.5x2",
        "x100",
        "100x",
    ],
)
def test_parse_thumb_rejects_anything_else(text: str) -> None:
    """Zero-by-zero, signs, junk, leading zeros, non-ASCII digits and sides over 10000 fail."""
    with pytest.raises(ValueError):
        parse_thumb(text)


@pytest.mark.parametrize(
    ("width", "height", "mode"),
    [(0, 0, ""), (-1, 10, ""), (10, MAX_THUMB_SIDE + 1, ""), (10, 10, "x"), (10, 10, "tb")],
)
def test_thumb_spec_validates_direct_construction(width: int, height: int, mode: str) -> None:
    """A ThumbSpec built directly is held to the same rules as a parsed one."""
    with pytest.raises(ValueError):
        ThumbSpec(width, height, mode)


@given(
    width=st.integers(0, MAX_THUMB_SIDE),
    height=st.integers(0, MAX_THUMB_SIDE),
    mode=st.sampled_from(["", "t", "b", "f"]),
)
def test_thumb_spec_round_trips_through_its_string(width: int, height: int, mode: str) -> None:
    """Any valid spec prints to a string that parses back to it."""
    if width == 0 and height == 0:
        return
    spec = ThumbSpec(width, height, mode)
    assert spec == parse_thumb(str(spec))


@given(st.text(alphabet="0123456789xtbf-X ", max_size=14) | st.text(max_size=20))
def test_parse_thumb_either_rejects_or_round_trips(text: str) -> None:
    """No input is accepted under a spelling other than its canonical one."""
    try:
        spec = parse_thumb(text)
    except ValueError:
        return
    assert text == str(spec)


# --- thumb_size (pure geometry) --------------------------------------------


@pytest.mark.parametrize(
    ("source", "spec", "expected"),
    [
        # 60x120 portrait
        ((60, 120), "100x100", (100, 100)),
        ((60, 120), "100x100f", (50, 100)),
        ((60, 120), "0x50", (25, 50)),
        ((60, 120), "50x0", (50, 100)),
        ((60, 120), "30x80f", (30, 60)),
        ((60, 120), "80x30f", (15, 30)),
        ((60, 120), "400x400f", (60, 120)),
        ((60, 120), "400x0", (400, 800)),
        ((60, 120), "0x400", (200, 400)),
        # 120x60 landscape
        ((120, 60), "100x100f", (100, 50)),
        ((120, 60), "0x50", (100, 50)),
        ((120, 60), "50x0", (50, 25)),
        ((120, 60), "30x80f", (30, 15)),
        ((120, 60), "80x30f", (60, 30)),
        # 20x10: fill and 0xH/Wx0 enlarge, f does not
        ((20, 10), "100x100", (100, 100)),
        ((20, 10), "100x100f", (20, 10)),
        ((20, 10), "400x0", (400, 200)),
        ((20, 10), "0x400", (800, 400)),
        # 333x77: rounding (0xH/Wx0 round to nearest, f truncates)
        ((333, 77), "0x50", (216, 50)),
        ((333, 77), "50x0", (50, 12)),
        ((333, 77), "400x0", (400, 92)),
        ((333, 77), "0x400", (1730, 400)),
        ((333, 77), "100x100f", (100, 23)),
        ((333, 77), "30x80f", (30, 6)),
        ((333, 77), "80x30f", (80, 18)),
        ((333, 77), "400x400f", (333, 77)),
        ((333, 77), "30x80b", (30, 80)),
        # degenerate: never a zero side
        ((10000, 1), "100x0", (100, 1)),
        ((10000, 1), "100x100f", (100, 1)),
    ],
)
def test_thumb_size_matches_pocketbase(
    source: tuple[int, int], spec: str, expected: tuple[int, int]
) -> None:
    """Output sizes equal PocketBase 0.40.6's for the same source and spec (all but the last
    two rows measured on the real binary)."""
    assert expected == thumb_size(*source, parse_thumb(spec))


# --- make_thumb: crop position, sizes, formats -----------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        # (top, bottom, left, right) of a red/green/blue top-to-bottom 60x120 source
        ("100x100", ("red", "blue", "green", "green")),
        ("100x100t", ("red", "green", "red", "red")),
        ("100x100b", ("green", "blue", "blue", "blue")),
        ("100x100f", ("red", "blue", "green", "green")),
        ("80x30", ("green", "green", "green", "green")),
    ],
)
def test_crop_modes_keep_the_expected_part_of_a_tall_image(
    spec: str, expected: tuple[str, str, str, str]
) -> None:
    """Centre crop keeps the middle, ``t`` the top band, ``b`` the bottom one, ``f`` all
    (same colours as PocketBase's thumbs of the same image)."""
    assert expected == edges(thumb(TALL_PNG, spec))


@pytest.mark.parametrize("spec", ["100x100", "100x100t", "100x100b"])
def test_top_and_bottom_crops_centre_a_wide_image_horizontally(spec: str) -> None:
    """On a wide image ``t`` and ``b`` crop columns from the centre, like PocketBase."""
    assert ("green", "green", "red", "blue") == edges(thumb(WIDE_PNG, spec))


@pytest.mark.parametrize(
    ("data", "spec", "expected"),
    [
        (TALL_PNG, "100x100t", (100, 100)),
        (TALL_PNG, "100x100f", (50, 100)),
        (TALL_PNG, "0x50", (25, 50)),
        (TALL_PNG, "50x0", (50, 100)),
        (WIDE_PNG, "80x30f", (60, 30)),
        (SMALL_PNG, "100x100b", (100, 100)),
        (SMALL_PNG, "400x400f", (20, 10)),
        (SMALL_PNG, "0x400", (800, 400)),
    ],
)
def test_make_thumb_output_size(data: bytes, spec: str, expected: tuple[int, int]) -> None:
    """Encoded thumbs have thumb_size's (PocketBase's) dimensions."""
    assert expected == thumb(data, spec).size


def test_aspect_preserving_resizes_keep_every_band() -> None:
    """``0xH`` and ``Wx0`` scale without cropping: all three bands stay visible."""
    for spec in ("0x50", "50x0", "0x400"):
        assert ("red", "blue", "green", "green") == edges(thumb(TALL_PNG, spec))


@pytest.mark.parametrize(
    ("image_format", "content_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"), ("WEBP", "image/webp")],
)
def test_thumb_keeps_the_source_format(image_format: str, content_type: str) -> None:
    """PNG, JPEG, GIF and WebP thumbs come back in their source's format and type."""
    data = encode(bands(60, 120), image_format)
    encoded, actual_type = make_thumb(io.BytesIO(data), parse_thumb("100x100t"))
    decoded = Image.open(io.BytesIO(encoded))
    assert (content_type, image_format, (100, 100)) == (actual_type, decoded.format, decoded.size)
    assert ("red", "green") == edges(decoded.convert("RGB"))[:2]
    assert content_type in THUMBABLE_TYPES


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        (1, ("red", "green", "red", "red")),
        (3, ("blue", "green", "blue", "blue")),
        (6, ("green", "green", "blue", "red")),
        (8, ("green", "green", "red", "blue")),
    ],
)
def test_jpeg_exif_orientation_is_applied(
    orientation: int, expected: tuple[str, str, str, str]
) -> None:
    """A JPEG is turned upright per EXIF before cropping (``100x100t`` edges as PocketBase)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(bands(60, 120), "JPEG", exif=exif.tobytes())
    assert expected == edges(thumb(data, "100x100t"))


def test_rotated_jpeg_uses_the_upright_size() -> None:
    """``0x50`` of a 60x120 JPEG with orientation 6 is 100x50, as in PocketBase."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(bands(60, 120), "JPEG", exif=exif.tobytes())
    assert (100, 50) == thumb(data, "0x50").size


def test_large_jpeg_downscaled_while_decoding_keeps_geometry() -> None:
    """A big JPEG decoded at reduced scale still gives the exact size and crop."""
    data = encode(bands(2400, 1200), "JPEG", quality=90)
    small = thumb(data, "100x100f")
    assert ((100, 50), ("red", "blue", "green", "green")) == (small.size, edges(small))


def test_gif_thumb_is_the_first_frame() -> None:
    """An animated GIF's thumb shows its first frame only."""
    frames = [Image.new("RGB", (20, 20), colour) for colour in (RED, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    encoded, _ = make_thumb(io.BytesIO(data), parse_thumb("10x10"))
    decoded = Image.open(io.BytesIO(encoded))
    assert (1, "red") == (getattr(decoded, "n_frames", 1), colour_at(decoded.convert("RGB"), 5, 5))


def test_png_transparency_is_kept() -> None:
    """A transparent PNG's thumb is still transparent."""
    data = encode(Image.new("RGBA", (20, 20), (255, 0, 0, 0)), "PNG")
    encoded, _ = make_thumb(io.BytesIO(data), parse_thumb("10x10"))
    pixel = Image.open(io.BytesIO(encoded)).convert("RGBA").getpixel((5, 5))
    assert isinstance(pixel, tuple)
    assert 0 == pixel[3]


def test_jpeg_thumb_drops_exif() -> None:
    """Thumbs carry no EXIF (no GPS leak, no second rotation)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(bands(60, 120), "JPEG", exif=exif.tobytes())
    encoded, _ = make_thumb(io.BytesIO(data), parse_thumb("10x10"))
    assert 0 == len(Image.open(io.BytesIO(encoded)).getexif())


# --- image bombs and bad input ---------------------------------------------


def test_image_size_reads_only_the_header() -> None:
    """image_size gets dimensions from a head of the file, decoding nothing."""
    assert (60, 120) == image_size(TALL_PNG[:64])
    assert (60, 120) == image_size(io.BytesIO(TALL_PNG))


def test_png_bomb_is_rejected_from_its_header() -> None:
    """A PNG declaring 100000x100000 is refused after reading its first 41 bytes only."""
    stream = ReadTracker(png_declaring(100_000, 100_000, idat=bytes(200_000)))
    with pytest.raises(ImageTooLargeError):
        image_size(stream)
    assert 41 == stream.furthest


def test_make_thumb_rejects_a_bomb_before_decoding() -> None:
    """make_thumb refuses the same bomb without reaching its pixel data."""
    stream = ReadTracker(png_declaring(100_000, 100_000, idat=bytes(200_000)))
    with pytest.raises(ImageTooLargeError):
        make_thumb(stream, parse_thumb("100x100"))
    assert 41 == stream.furthest


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (8_000, 8_000),  # over MAX_SOURCE_PIXELS, under Pillow's own limit
        (10_000, 10_000),  # where Pillow warns (DecompressionBombWarning)
        (20_000, 20_000),  # where Pillow raises DecompressionBombError
        (MAX_SOURCE_PIXELS + 1, 1),
    ],
)
def test_images_over_the_pixel_limit_are_rejected(width: int, height: int) -> None:
    """Every size over MAX_SOURCE_PIXELS raises ImageTooLargeError, whichever guard fires."""
    with pytest.raises(ImageTooLargeError):
        image_size(png_declaring(width, height))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_ignored_still_rejects() -> None:
    """Where Pillow's bomb warning is only a warning (production), the size check rejects."""
    with pytest.raises(ImageTooLargeError):
        image_size(png_declaring(10_000, 10_000))


def test_image_at_the_pixel_limit_is_accepted() -> None:
    """Exactly MAX_SOURCE_PIXELS pixels is allowed."""
    assert (MAX_SOURCE_PIXELS, 1) == image_size(png_declaring(MAX_SOURCE_PIXELS, 1))


def test_thumb_larger_than_the_limit_is_rejected() -> None:
    """A small but extreme source cannot make a huge thumb (10000x1 at 0x10000)."""
    data = encode(Image.new("RGB", (10_000, 1)), "PNG")
    with pytest.raises(ImageTooLargeError):
        make_thumb(io.BytesIO(data), parse_thumb("0x10000"))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        bytes(range(256)) * 4,
        TALL_PNG[:60],
        TALL_PNG[: len(TALL_PNG) // 2],
        encode(bands(60, 120), "JPEG")[:300],
        png_declaring(60, 120, idat=b"garbage"),
        encode(bands(60, 120), "BMP"),
        encode(bands(60, 120), "TIFF"),
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    ],
)
def test_corrupt_or_unsupported_input_raises_value_error(data: bytes) -> None:
    """Junk, truncated or corrupt images and non-thumbable formats raise a plain ValueError."""
    with pytest.raises(ValueError) as caught:
        make_thumb(io.BytesIO(data), parse_thumb("10x10"))
    assert not isinstance(caught.value, ImageTooLargeError)
