"""Thumbnails of uploaded images, with PocketBase's ``?thumb=WxH[t|b|f]`` sizes.

A thumb spec (:class:`ThumbSpec`, parsed by :func:`parse_thumb`) is one of:

- ``WxH``  crop to fill ``W``x``H`` from the centre;
- ``WxHt`` / ``WxHb`` crop to fill from the top / bottom (centred across);
- ``WxHf`` fit inside ``W``x``H`` keeping the aspect ratio, never enlarging;
- ``0xH`` / ``Wx0`` resize to that height / width keeping the aspect ratio.

Output sizes follow PocketBase (its ``imaging`` calls), checked against the real
0.40.6 binary: filling and ``0xH``/``Wx0`` also enlarge small images, ``f``
does not, and the same rounding gives the same sizes (:func:`thumb_size`).

Decoding untrusted images is guarded: :func:`image_size` reads only the header,
and :func:`make_thumb` refuses any source over :data:`MAX_SOURCE_PIXELS` (or a
result over it) before a pixel is decoded, so a small file declaring a huge
image (an image bomb) costs nothing. Only PNG, JPEG, GIF and WebP are opened,
so no other Pillow decoder ever sees untrusted bytes.

Note:
    Decoding and encoding are blocking CPU work; call :func:`make_thumb` from a
    worker thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import io
import math
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from PIL import ExifTags, Image, ImageOps

#: Largest source image, in pixels (width * height), that is ever decoded; also
#: the largest thumb made. 50 MP covers any camera photo and bounds a decode to
#: about 200 MB (RGBA) of memory; it is below Pillow's own bomb limit (~89 MP).
MAX_SOURCE_PIXELS = 50_000_000
#: Largest thumb width or height :func:`parse_thumb` accepts.
MAX_THUMB_SIDE = 10_000
#: Content types :func:`make_thumb` handles (PocketBase makes thumbs of the same).
THUMBABLE_TYPES: frozenset[str] = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: JPEG and WebP thumb quality (Pillow's 0-95 scale).
QUALITY = 85

_FORMAT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
_FORMATS = tuple(_FORMAT_TYPES)
_MODES = frozenset({"", "t", "b", "f"})
# ASCII digits only (``\d`` would take other scripts' digits), no leading zeros;
# five digits at most, so int() never sees a long string.
_SPEC = re.compile(r"(0|[1-9][0-9]{0,4})x(0|[1-9][0-9]{0,4})([tbf]?)")
# Orientations (EXIF 5-8) that swap width and height.
_TRANSPOSED = frozenset({5, 6, 7, 8})
# What malformed image data makes Pillow and its decoders raise.
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, IndexError, struct.error)

Box = tuple[float, float, float, float]


class ImageTooLargeError(ValueError):
    """The image (or the thumb asked of it) has more than :data:`MAX_SOURCE_PIXELS` pixels."""

    code = "image_too_large"


@dataclass(frozen=True)
class ThumbSpec:
    """A validated thumb size; ``str(spec)`` is its canonical form (``"100x50t"``).

    Raises:
        ValueError: a side is negative or over :data:`MAX_THUMB_SIDE`, both are
            0, or ``mode`` is not ``""``, ``"t"``, ``"b"`` or ``"f"``.
    """

    width: int
    """Thumb width in pixels; 0 means "keep the aspect ratio from ``height``"."""
    height: int
    """Thumb height in pixels; 0 means "keep the aspect ratio from ``width``"."""
    mode: str = ""
    """``""`` crop from the centre, ``"t"`` top, ``"b"`` bottom, ``"f"`` fit.

    Ignored when a side is 0 (PocketBase accepts ``0x50t`` and ignores the ``t``)."""

    def __post_init__(self) -> None:
        if not (0 <= self.width <= MAX_THUMB_SIDE and 0 <= self.height <= MAX_THUMB_SIDE):
            raise ValueError(f"thumb sides must be 0 to {MAX_THUMB_SIDE}")
        if self.width == 0 and self.height == 0:
            raise ValueError("thumb width and height cannot both be 0")
        if self.mode not in _MODES:
            raise ValueError(f"invalid thumb mode {self.mode!r}")

    def __str__(self) -> str:
        return f"{self.width}x{self.height}{self.mode}"


def parse_thumb(text: str) -> ThumbSpec:
    """The :class:`ThumbSpec` written as ``WxH``, ``WxHt``, ``WxHb`` or ``WxHf``.

    ``W`` and ``H`` are ASCII decimals from 0 to :data:`MAX_THUMB_SIDE` without
    leading zeros, not both 0. Leading zeros are refused (PocketBase takes
    them) so that every spec has one spelling: ``str(parse_thumb(text)) == text``
    for every accepted ``text``, and thumbs cache under that string.

    Raises:
        ValueError: ``text`` is anything else (``100``, ``0x0``, ``100x100x``,
            ``-1x5``, ``010x10``, ``100X100``, ``10001x1``, surrounding spaces).
    """
    match = _SPEC.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid thumb size {text!r}: expected WxH, WxHt, WxHb or WxHf")
    return ThumbSpec(int(match[1]), int(match[2]), match[3])


def thumb_size(width: int, height: int, spec: ThumbSpec) -> tuple[int, int]:
    """The size of the thumb ``spec`` makes of a ``width``x``height`` image.

    ``width`` and ``height`` are the upright size (after EXIF orientation).
    Matches PocketBase: filling modes give exactly ``W``x``H`` (enlarging if
    needed); ``0xH``/``Wx0`` round the other side to the nearest pixel and may
    enlarge; ``f`` scales down to touch the box, truncating the other side, and
    keeps the source's size when it already fits. No side is ever 0.
    """
    return _plan(width, height, spec)[0]


def _plan(width: int, height: int, spec: ThumbSpec) -> tuple[tuple[int, int], Box]:
    # The output size and the source box (in source pixels) resized into it,
    # with the arithmetic of imaging's Resize, Fit and Fill so sizes match.
    full: Box = (0.0, 0.0, float(width), float(height))
    out_w, out_h = spec.width, spec.height
    if out_w == 0:
        return (max(1, math.floor(out_h * width / height + 0.5)), out_h), full
    if out_h == 0:
        return (out_w, max(1, math.floor(out_w * height / width + 0.5))), full
    if spec.mode == "f":
        if width <= out_w and height <= out_h:
            return (width, height), full
        source_ratio = width / height
        if source_ratio > out_w / out_h:
            return (out_w, max(1, int(out_w / source_ratio))), full
        return (max(1, int(out_h * source_ratio)), out_h), full
    if width * out_h < height * out_w:
        # Taller than the box: crop rows; "t" keeps the top, "b" the bottom.
        crop = width * out_h / out_w
        top = {"t": 0.0, "b": height - crop}.get(spec.mode, (height - crop) / 2)
        return (out_w, out_h), (0.0, top, float(width), top + crop)
    # Wider (or the same shape): crop columns, always from the centre.
    crop = height * out_w / out_h
    left = (width - crop) / 2
    return (out_w, out_h), (left, 0.0, left + crop, float(height))


def image_size(source: bytes | BinaryIO) -> tuple[int, int]:
    """The ``(width, height)`` of a PNG, JPEG, GIF or WebP, from its header only.

    No pixel is decoded: Pillow's ``Image.open`` is lazy. ``source`` is the whole
    file or its head; a head must reach past the header (64 KiB covers a JPEG's
    EXIF block). The size is as stored, before any EXIF orientation. A stream
    is read from its start (it must be seekable).

    Raises:
        ImageTooLargeError: the image has more than :data:`MAX_SOURCE_PIXELS`
            pixels (also when Pillow's own ``MAX_IMAGE_PIXELS`` guard fires).
        ValueError: ``source`` is not one of those formats, or its header is corrupt.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    with _open(stream) as image:
        return image.size


def _open(stream: BinaryIO) -> Image.Image:
    try:
        image = Image.open(stream, formats=_FORMATS)
    # Pillow raises its bomb error (over 2x MAX_IMAGE_PIXELS) itself, and only
    # warns between 1x and 2x; where warnings are errors the warning is raised.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"image over {MAX_SOURCE_PIXELS} pixels") from exc
    except _DECODE_ERRORS as exc:
        raise ValueError("not a valid PNG, JPEG, GIF or WebP image") from exc
    width, height = image.size
    if width * height > MAX_SOURCE_PIXELS:
        image.close()
        raise ImageTooLargeError(f"image is {width}x{height}, over {MAX_SOURCE_PIXELS} pixels")
    return image


def make_thumb(source: BinaryIO, spec: ThumbSpec) -> tuple[bytes, str]:
    """A ``spec`` thumb of the PNG, JPEG, GIF or WebP image in ``source``.

    The size is checked from the header before anything is decoded. A JPEG is
    turned upright per its EXIF orientation first (as PocketBase does) and
    decoded at a reduced scale when the thumb is much smaller; a GIF or
    animated WebP gives its first frame. Resampling is Lanczos. The thumb keeps
    the source's format: PNG, JPEG (quality :data:`QUALITY`), GIF or WebP
    (quality :data:`QUALITY`); metadata other than the ICC profile is dropped.

    Note:
        PocketBase 0.40.6 encodes WebP sources' thumbs as PNG (served as
        ``image/png``); here they stay WebP.

    Args:
        source: A seekable binary stream, read from its start.
        spec: The thumb size.

    Returns:
        The encoded thumb and its content type, one of :data:`THUMBABLE_TYPES`.

    Raises:
        ImageTooLargeError: the source, or the thumb, would have more than
            :data:`MAX_SOURCE_PIXELS` pixels.
        ValueError: ``source`` is not a PNG, JPEG, GIF or WebP, or is corrupt or truncated.
    """
    with _open(source) as image:
        image_format = image.format or ""
        icc_profile = image.info.get("icc_profile")
        orientation = 1
        if image_format == "JPEG":
            orientation = _orientation(image)
        width, height = image.size
        if orientation in _TRANSPOSED:
            width, height = height, width
        (out_w, out_h), box = _plan(width, height, spec)
        if out_w * out_h > MAX_SOURCE_PIXELS:
            raise ImageTooLargeError(f"thumb {out_w}x{out_h} is over {MAX_SOURCE_PIXELS} pixels")
        try:
            if image_format == "JPEG":
                _draft(image, out_w / (box[2] - box[0]), out_h / (box[3] - box[1]))
            image.load()
            upright: Image.Image = image
            if orientation != 1:
                upright = ImageOps.exif_transpose(image)
            # A reduced-scale JPEG decode is smaller than planned: scale the box.
            x_scale, y_scale = upright.width / width, upright.height / height
            box = (box[0] * x_scale, box[1] * y_scale, box[2] * x_scale, box[3] * y_scale)
            has_alpha = upright.mode in {"RGBA", "LA", "PA"} or "transparency" in upright.info
            rgb = upright.convert("RGBA" if has_alpha and image_format != "JPEG" else "RGB")
            thumb = rgb.resize((out_w, out_h), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
        except _DECODE_ERRORS as exc:
            raise ValueError("corrupt or truncated image") from exc
    return _encode(thumb, image_format, icc_profile), _FORMAT_TYPES[image_format]


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except _DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _draft(image: Image.Image, x_scale: float, y_scale: float) -> None:
    # Let the JPEG decoder downscale by 1/2, 1/4 or 1/8 while the result stays
    # at least as large as needed; resizing does the rest.
    scale = max(x_scale, y_scale)
    if scale < 1:
        width, height = image.size
        image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))


def _encode(thumb: Image.Image, image_format: str, icc_profile: object) -> bytes:
    out = io.BytesIO()
    if image_format == "GIF":
        thumb.save(out, "GIF")
    elif image_format == "PNG":
        thumb.save(out, "PNG", icc_profile=icc_profile, exif=b"")
    else:  # JPEG, WEBP
        thumb.save(out, image_format, quality=QUALITY, icc_profile=icc_profile, exif=b"")
    return out.getvalue()
