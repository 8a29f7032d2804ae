"""Location and identity metadata taken out of an image without touching its pixels.

A photo's EXIF holds where it was taken (GPS), the camera's owner and serial number; XMP, IPTC
and text chunks hold authors, places and comments. None of that is the image a model is asked
about, so it is taken out of every image that goes upstream as it came (a converted image is
encoded afresh and carries none): the file's metadata segments or chunks are dropped, its
compressed pixels copied as they are. The EXIF orientation is kept, in an EXIF block of its
own, since it says which way up the pixels go.
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image

from app.images.complete import MAX_GIF_BLOCKS

_ORIENTATION = 0x0112
# JPEG: APP1 (EXIF, XMP), APP13 (Photoshop and IPTC), comments.
_JPEG_DROPPED = frozenset({0xE1, 0xED, 0xFE})
_JPEG_SOS, _JPEG_NO_LENGTH = 0xDA, frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
_EXIF_ID = b"Exif\x00\x00"
# PNG: text of any kind, and EXIF.
_PNG_DROPPED = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# WEBP: its EXIF and XMP chunks, and their flags in its extended header.
_WEBP_DROPPED = frozenset({b"EXIF", b"XMP "})
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04
# GIF: comments, and XMP in an application extension.
_GIF_COMMENT, _GIF_APPLICATION = 0xFE, 0xFF
_GIF_XMP = b"XMP DataXMP"


def strip_metadata(data: bytes, mime: str) -> bytes | None:
    """`data` without its location and identity metadata; None when it has none (or is not
    made the way the walk expects: a decoder will say what is wrong with it)."""
    try:
        if mime == "image/jpeg":
            return _jpeg(data)
        if mime == "image/png":
            return _png(data)
        if mime == "image/webp":
            return _webp(data)
        if mime == "image/gif":
            return _gif(data)
    except (IndexError, ValueError, struct.error):
        return None
    return None


def minimal_exif(orientation: int) -> bytes:
    """An EXIF block (a TIFF header and one entry) that says the orientation and nothing else."""
    entry = struct.pack(">HHIHH", _ORIENTATION, 3, 1, orientation, 0)
    return b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + entry + struct.pack(">I", 0)


def _minimal(block: bytes) -> bool:
    """Whether an EXIF block (with its `Exif` id or without) says an orientation only."""
    block = _without_exif_id(block)
    return len(block) == len(minimal_exif(1)) and block == minimal_exif(_orientation(block))


def _orientation(exif: bytes) -> int:
    try:
        found = Image.Exif()
        found.load(exif)
        value = found.get(_ORIENTATION, 1)
    except Exception:  # an EXIF block Pillow can't read says nothing of use
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _jpeg(data: bytes) -> bytes | None:
    kept, at, dropped = [data[:2]], 2, False
    while at + 4 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            kept.append(data[at : at + 1])
            at += 1
            continue
        if marker in _JPEG_NO_LENGTH:
            kept.append(data[at : at + 2])
            at += 2
            continue
        end = at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")
        if marker == _JPEG_SOS:
            break
        segment = data[at + 4 : end]
        if marker in _JPEG_DROPPED and not (marker == 0xE1 and _minimal(segment)):
            dropped = True
            if marker == 0xE1 and segment.startswith(_EXIF_ID):
                orientation = _orientation(segment[len(_EXIF_ID) :])
                if orientation != 1:
                    block = _EXIF_ID + minimal_exif(orientation)
                    kept.append(b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block)
        else:
            kept.append(data[at:end])
        at = end
    if not dropped:
        return None
    return b"".join([*kept, data[at:]])


def _png(data: bytes) -> bytes | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    kept, at, dropped = [_PNG_SIGNATURE], len(_PNG_SIGNATURE), False
    while at + 8 <= len(data):
        length = int.from_bytes(data[at : at + 4], "big")
        kind, end = data[at + 4 : at + 8], at + 12 + length
        if kind in _PNG_DROPPED and not (kind == b"eXIf" and _minimal(data[at + 8 : end - 4])):
            dropped = True
            orientation = _orientation(data[at + 8 : at + 8 + length]) if kind == b"eXIf" else 1
            if orientation != 1:
                kept.append(_png_chunk(b"eXIf", minimal_exif(orientation)))
        else:
            kept.append(data[at:end])
        at = end
        if kind == b"IEND":
            break
    if not dropped:
        return None
    return b"".join([*kept, data[at:]])


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _webp(data: bytes) -> bytes | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or data[12:16] != b"VP8X":
        return None  # only an extended WEBP has room for metadata
    end = min(len(data), 8 + int.from_bytes(data[4:8], "little"))
    chunks, at, dropped, orientation = [], 12, False, 1
    while at + 8 <= end:
        kind, size = data[at : at + 4], int.from_bytes(data[at + 4 : at + 8], "little")
        stop = at + 8 + size + (size & 1)
        body = data[at + 8 : at + 8 + size]
        if kind == b"EXIF":
            orientation = _orientation(_without_exif_id(body))
        if kind in _WEBP_DROPPED and not (kind == b"EXIF" and _minimal(body)):
            dropped = True
        elif kind != b"EXIF":
            chunks.append(bytearray(data[at:stop]))
        at = stop
    if not dropped:
        return None
    header = chunks[0]
    header[8] &= ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
    if orientation != 1:
        exif = minimal_exif(orientation)
        chunks.append(bytearray(b"EXIF" + struct.pack("<I", len(exif)) + exif))
        header[8] |= _VP8X_EXIF
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body + data[end:]


def _without_exif_id(block: bytes) -> bytes:
    return block[len(_EXIF_ID) :] if block.startswith(_EXIF_ID) else block


def _gif(data: bytes) -> bytes | None:
    if b"\x21\xfe" not in data and _GIF_XMP not in data:
        return None  # nothing to look for: the blocks need no walk
    flags = data[10]
    at = 13 + (3 << ((flags & 0x07) + 1) if flags & 0x80 else 0)
    kept, dropped, blocks = [data[:at]], False, 0
    while at < len(data) and data[at] != 0x3B:
        start = at
        if data[at] == 0x21:  # an extension: its label, then sub-blocks
            label = data[at + 1]
            at += 2
            first = data[at + 1 : at + 1 + data[at]]
        elif data[at] == 0x2C:  # an image: its descriptor, colour table, code size, sub-blocks
            packed = data[at + 9]
            at += 10 + (3 << ((packed & 0x07) + 1) if packed & 0x80 else 0) + 1
            label, first = 0, b""
        else:
            return None
        while data[at]:
            blocks += 1
            if blocks > MAX_GIF_BLOCKS:
                return None
            at += data[at] + 1
        at += 1
        if label == _GIF_COMMENT or (label == _GIF_APPLICATION and first == _GIF_XMP):
            dropped = True
        else:
            kept.append(data[start:at])
    if not dropped:
        return None
    return b"".join([*kept, data[at:]])
