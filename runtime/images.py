"""Reading image files safely: size checked from the header before decoding, truncation detected.

OpenCV decodes whatever it is given: a 1.4 MB PNG of 20000 x 20000 pixels becomes a
1.2 GB array (enough to kill a Pi), and a JPEG cut short decodes "fine" with a grey
remainder. :func:`read_image` reads the width and height from the file's header
(PNG, JPEG, BMP, TIFF, WebP, PNM; nothing is decoded), refuses an image over the pixel
budget or a file that ends before its format's end marker, and only then decodes.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageError
from .limits import DEFAULT_MAX_IMAGE_PIXELS

FORMATS = "PNG, JPEG, BMP, TIFF, WebP, PGM/PPM"

__all__ = ["ImageError", "ImageHeader", "probe", "read_image"]


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    #: Why the file is incomplete (its format's end marker is missing), or None.
    truncated: str | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _png(data: bytes) -> ImageHeader:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageError("PNG header is cut short")
    width, height = struct.unpack(">II", data[16:24])
    # The last chunk is IEND (a few bytes of trailing junk are tolerated, as decoders do).
    truncated = None if data.rfind(b"IEND", 33) >= 0 else "the PNG ends before its IEND chunk"
    return ImageHeader("PNG", width, height, truncated)


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg(data: bytes) -> ImageHeader:
    pos, size, n = 2, None, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ImageError("JPEG marker structure is broken")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # stand-alone markers
            pos += 2
            continue
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _SOF and pos + 9 <= n:
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            size = (width, height)
        if marker == 0xDA:  # start of scan: entropy-coded data follows, the headers are done
            if size is None:
                raise ImageError("JPEG has no frame header before its image data")
            # Inside the scan data 0xFF is always followed by 0x00 or a restart marker, so an FF D9 after
            # the first scan is the end-of-image marker; trailing bytes after it are tolerated.
            truncated = None if data.rfind(b"\xff\xd9", pos) >= 0 else \
                "the JPEG ends before its end-of-image marker (the file is cut short)"
            return ImageHeader("JPEG", size[0], size[1], truncated)
        pos += 2 + length
    if size is None:
        raise ImageError("JPEG header is cut short")
    return ImageHeader("JPEG", size[0], size[1], "the JPEG ends before its image data")


def _bmp(data: bytes) -> ImageHeader:
    if len(data) < 26:
        raise ImageError("BMP header is cut short")
    header_size = struct.unpack("<I", data[14:18])[0]
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    declared = struct.unpack("<I", data[2:6])[0]
    truncated = f"the BMP holds {len(data)} of its {declared} bytes" if declared > len(data) else None
    return ImageHeader("BMP", abs(width), abs(height), truncated)


def _tiff(data: bytes) -> ImageHeader:
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        raise ImageError("TIFF header is cut short")
    ifd = struct.unpack(order + "I", data[4:8])[0]
    if ifd + 2 > len(data):
        raise ImageError("TIFF directory lies beyond the end of the file (cut short?)")
    count = struct.unpack(order + "H", data[ifd:ifd + 2])[0]
    dims: dict[int, int] = {}
    for i in range(count):
        entry = data[ifd + 2 + 12 * i: ifd + 14 + 12 * i]
        if len(entry) < 12:
            raise ImageError("TIFF directory is cut short")
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG
            dims[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10] if kind == 3 else entry[8:12])[0]
    if 256 not in dims or 257 not in dims:
        raise ImageError("TIFF has no image width/length")
    return ImageHeader("TIFF", dims[256], dims[257])


def _webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    declared = struct.unpack("<I", data[4:8])[0] + 8 if len(data) >= 8 else 0
    truncated = f"the WebP holds {len(data)} of its {declared} bytes" if declared > len(data) else None
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return ImageHeader("WebP", width & 0x3FFF, height & 0x3FFF, truncated)
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return ImageHeader("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, truncated)
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageHeader("WebP", width, height, truncated)
    raise ImageError("WebP header is cut short or of an unknown kind")


_SEP = rb"(?:\s|#[^\n]*\n)+"
_PNM = re.compile(rb"^P([1-6])" + _SEP + rb"(\d+)" + _SEP + rb"(\d+)(?:" + _SEP + rb"(\d+)\s)?")


def _pnm(data: bytes) -> ImageHeader:
    found = _PNM.match(data[:1024])
    if not found:
        raise ImageError("PGM/PPM header is cut short")
    kind, width, height = int(found.group(1)), int(found.group(2)), int(found.group(3))
    truncated = None
    if kind in (5, 6) and found.group(4):  # binary: the pixel bytes follow the header exactly
        sample = 2 if int(found.group(4)) > 255 else 1
        need = found.end() + width * height * sample * (3 if kind == 6 else 1)
        if len(data) < need:
            truncated = f"the {'PGM' if kind == 5 else 'PPM'} holds {len(data)} of its {need} bytes"
    return ImageHeader("PNM", width, height, truncated)


def probe(data: bytes) -> ImageHeader:
    """Format, width and height from the first bytes of an image file; ImageError when it is none we read."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return _png(data)
    if data[:3] == b"\xff\xd8\xff":
        return _jpeg(data)
    if data[:2] == b"BM":
        return _bmp(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if len(data) >= 2 and data[:1] == b"P" and data[1:2] in b"123456":
        return _pnm(data)
    if not data:
        raise ImageError("the file is empty")
    raise ImageError(f"not an image in a supported format ({FORMATS})")


def read_image(path: str | Path, grey: bool = False, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image file as BGR (or grey) uint8, refusing it before decoding when it is
    over ``max_pixels``, cut short, or not an image; the ImageError says which and names the file."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            # No real file of an image within the budget is larger than it is uncompressed at
            # 16 bits x 4 channels: a bigger one is junk and is not read into memory.
            size = os.fstat(fh.fileno()).st_size
            if size > 8 * max_pixels + (1 << 20):
                raise ImageError(f"refusing {path}: {size / 1e6:.0f} MB is more than any image within the "
                                 f"{max_pixels / 1e6:g} MP budget needs")
            data = fh.read()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        header = probe(data)
    except ImageError as exc:
        raise ImageError(f"cannot decode {path}: {exc}") from None
    if header.pixels > max_pixels:
        raise ImageError(
            f"refusing {path}: {header.width} x {header.height} = {header.pixels / 1e6:.1f} MP is over the "
            f"{max_pixels / 1e6:g} MP budget (raise it with --max-image-pixels / [source] max_image_pixels)")
    if header.pixels == 0:
        raise ImageError(f"cannot decode {path}: its header says {header.width} x {header.height} pixels")
    if header.truncated:
        raise ImageError(f"cannot decode {path}: {header.truncated}")
    # IMREAD_COLOR / GRAYSCALE also bring 16-bit, 1- and 4-channel files to 8-bit BGR or grey.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if image is None:
        raise ImageError(f"cannot decode {path}: not a readable image (corrupt or unsupported {header.format})")
    return image
