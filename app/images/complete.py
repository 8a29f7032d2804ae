"""Cheap checks that an image's bytes are all there, for images that go upstream undecoded.

Reading a header tells an image's type and size, not whether the rest of the file followed:
a truncated upload, or a bare JPEG header claiming 2000x2000, reads just as well. Each format
says where a whole file ends: a JPEG's end-of-image marker after its scan data, a PNG's
`IEND` chunk (found by walking the chunks' lengths), a GIF's trailer (found by walking its
blocks), a WEBP's RIFF size. Bytes after that end are allowed, as decoders allow them.
`ImageEnd` looks for it in the bytes as they stream past, so a data URI scanned a window at
a time is never held whole for it.
"""

from __future__ import annotations

from collections.abc import Callable

from app.errors import ImageError

_JPEG_START, _JPEG_END, _START_OF_SCAN = b"\xff\xd8", b"\xff\xd9", 0xDA
_PNG_START, _PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND"
_PNG_CHUNK_HEADER, _PNG_CHUNK_EXTRA = 8, 12  # length and type; those and the CRC
_PNG_MAX_CHUNK = 2**31 - 1
_GIF_SCREEN = 13  # signature, version and logical screen descriptor
_GIF_EXTENSION, _GIF_IMAGE, _GIF_TRAILER = 0x21, 0x2C, 0x3B
_GIF_DESCRIPTOR = 9  # an image descriptor after its introducer
_MARKERS_WITHOUT_LENGTH = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
# Where location and identity metadata live (see `ImageEnd.metadata`).
_JPEG_METADATA = frozenset({0xE1, 0xED, 0xFE})  # EXIF and XMP, IPTC, comments
_PNG_METADATA = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf"})
_GIF_COMMENT, _GIF_APPLICATION = 0xFE, 0xFF
_GIF_XMP = b"XMP DataXMP"
# Enough for any header worth the name; a JPEG's beyond it is searched for its end from there.
HEAD_BYTES = 64 * 1024
# Sub-blocks of a GIF followed at most. Encoders fill them (255 bytes each: 80,000 in a 20 MB
# GIF); one cut into 1-byte blocks has millions, each a step of this walk (18 MB: 9 s of CPU).
MAX_GIF_BLOCKS = 1 << 18


class ImageEnd:
    """Fed an image's bytes in order, from the first: whether they end as a whole file of
    their format does. Formats it doesn't know (they are converted, so fully decoded) pass."""

    def __init__(self) -> None:
        self._head: bytearray | None = bytearray()  # until the format's header is in hand
        self._size = 0
        self._marker = b""  # an end marker to find at or after `_after`
        self._after = 0
        self._found = False
        self._carry = b""  # the previous piece's last bytes: a marker may span two pieces
        self._gif: _GifBlocks | None = None
        self._riff_size = -1
        self._png_next = -1  # where the next PNG chunk starts
        self._png_header = b""  # a chunk header split between two pieces, so far
        self._png_end = -1  # where the IEND chunk ends
        self._metadata = False  # location or identity metadata seen (see `metadata`)

    def feed(self, piece: bytes) -> None:
        if self._head is None:
            self._scan(piece)
            return
        self._head += piece
        if len(self._head) >= HEAD_BYTES:
            self._settle()

    def whole(self) -> bool:
        self._settle()
        if self._png_next >= 0:
            return 0 <= self._png_end <= self._size
        if self._marker:
            return self._found
        if self._gif is not None:
            return self._gif.ended
        return self._riff_size < 0 or self._size >= self._riff_size + 8

    @property
    def metadata(self) -> bool:
        """Whether the bytes fed so far hold metadata `strip_metadata` takes out: a JPEG's EXIF,
        XMP, IPTC or comment segment, a PNG's text or EXIF chunk, a WEBP's EXIF or XMP, a GIF's
        comment or XMP."""
        self._settle()
        return self._metadata or (self._gif is not None and self._gif.metadata)

    def check(self) -> None:
        """400 `invalid_image` unless the bytes fed so far are a whole image."""
        if self._gif is not None and self._gif.blocks > MAX_GIF_BLOCKS:
            raise ImageError(
                f"the GIF's data is cut into more than {MAX_GIF_BLOCKS} blocks; no encoder "
                "makes so many"
            )
        if not self.whole():
            raise ImageError("the image data is truncated: its end is missing")

    def _settle(self) -> None:
        if self._head is None:
            return
        head, self._head = bytes(self._head), None
        if head.startswith(_JPEG_START):
            self._after, self._metadata = _scan_data_start(head)
            self._marker = _JPEG_END
        elif head.startswith(_PNG_START):
            self._png_next = len(_PNG_START)
        elif head[:4] == b"GIF8":
            self._gif = _GifBlocks()
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            self._riff_size = int.from_bytes(head[4:8], "little")
            extended = len(head) > 20 and head[12:16] == b"VP8X"
            self._metadata = extended and bool(head[20] & 0x0C)  # its EXIF or XMP flag
        self._scan(head)

    def _scan(self, piece: bytes) -> None:
        if self._png_next >= 0 and self._png_end < 0:
            self._walk_png(piece)
        if self._marker and not self._found:
            self._found = self._find_marker(piece)
        if self._gif is not None:
            self._gif.feed(piece)
        self._size += len(piece)

    def _find_marker(self, piece: bytes) -> bool:
        """Whether the end marker is in `piece` at or after `_after`, or spans the previous
        piece's last bytes and this one's first: only those few bytes are ever copied."""
        marker, reach = self._marker, len(self._marker) - 1
        carry, self._carry = self._carry, (self._carry + piece[:reach])[-reach:]
        if len(piece) >= reach:
            self._carry = piece[len(piece) - reach :]
        joint = carry + piece[:reach]
        joint_at = self._size - len(carry)
        if joint.find(marker, max(0, self._after - joint_at)) >= 0:
            return True
        return piece.find(marker, max(0, self._after - self._size)) >= 0

    def _walk_png(self, piece: bytes) -> None:
        """Follow the chunks that start in `piece` (it starts at `_size`) to the `IEND` one;
        a header split between two pieces is put together from both."""
        start, end = self._size, self._size + len(piece)
        while self._png_next < end:
            at = self._png_next + len(self._png_header) - start
            self._png_header += piece[at : at + _PNG_CHUNK_HEADER - len(self._png_header)]
            if len(self._png_header) < _PNG_CHUNK_HEADER:
                return  # the rest of the header is in the next piece
            length = int.from_bytes(self._png_header[:4], "big")
            kind, self._png_header = self._png_header[4:], b""
            if kind in _PNG_METADATA:
                self._metadata = True
            if length > _PNG_MAX_CHUNK:
                self._png_next = 1 << 62  # not a PNG's chunk: never whole
                return
            if kind == _PNG_END:
                self._png_end = self._png_next + _PNG_CHUNK_EXTRA + length
                return
            self._png_next += _PNG_CHUNK_EXTRA + length


class _GifBlocks:
    """A GIF's blocks followed to its trailer: the screen descriptor and colour table, then
    extensions and images, each ending with its run of sub-blocks. Each step wants a few
    bytes (`_want`) after skipping some (`_skip`); fields split between pieces are put
    together from both."""

    def __init__(self) -> None:
        self.ended = False
        self.metadata = False  # a comment or XMP seen
        self.blocks = 0  # sub-blocks followed so far
        self._broken = False
        self._skip = 0
        self._want = _GIF_SCREEN
        self._have = b""
        self._step: Callable[[bytes], None] = self._screen

    def feed(self, piece: bytes) -> None:
        at, size = 0, len(piece)
        while not (self.ended or self._broken):
            if self._skip:
                taken = min(self._skip, size - at)
                at += taken
                self._skip -= taken
                if self._skip:
                    return
            need = self._want - len(self._have)
            self._have += piece[at : at + need]
            at += need
            if len(self._have) < self._want:
                return
            field, self._have = self._have, b""
            self._step(field)

    def _next(self, step: Callable[[bytes], None], want: int = 1, skip: int = 0) -> None:
        self._step, self._want, self._skip = step, want, skip

    def _screen(self, field: bytes) -> None:
        self._next(self._block, skip=_colour_table(field[10]))

    def _block(self, field: bytes) -> None:
        if field[0] == _GIF_TRAILER:
            self.ended = True
        elif field[0] == _GIF_EXTENSION:
            self._next(self._extension)
        elif field[0] == _GIF_IMAGE:
            self._next(self._descriptor, _GIF_DESCRIPTOR)
        else:
            self._broken = True  # not a GIF block: never whole

    def _extension(self, field: bytes) -> None:
        if field[0] == _GIF_COMMENT:
            self.metadata = True
        if field[0] == _GIF_APPLICATION:  # its first sub-block: its length and name
            self._next(self._application, 1 + len(_GIF_XMP))
        else:
            self._next(self._sub_blocks)

    def _application(self, field: bytes) -> None:
        if field[1:] == _GIF_XMP:
            self.metadata = True
        if field[0] < len(_GIF_XMP):  # a sub-block shorter than a name: not one to read
            self._broken = True
        else:
            self._next(self._sub_blocks, skip=field[0] - len(_GIF_XMP))

    def _descriptor(self, field: bytes) -> None:
        # The local colour table, then the LZW code size, then the image's sub-blocks.
        self._next(self._sub_blocks, skip=_colour_table(field[8]) + 1)

    def _sub_blocks(self, field: bytes) -> None:
        self.blocks += 1
        if self.blocks > MAX_GIF_BLOCKS:
            self._broken = True  # refused by `ImageEnd.check`, read no further
        elif field[0]:
            self._next(self._sub_blocks, skip=field[0])
        else:
            self._next(self._block)


def _colour_table(packed: int) -> int:
    """The bytes of the colour table a GIF's packed field announces (none without its flag)."""
    return 3 << ((packed & 0x07) + 1) if packed & 0x80 else 0


def check_whole(data: bytes) -> None:
    """`ImageEnd.check` for an image held whole."""
    end = ImageEnd()
    end.feed(data)
    end.check()


def _scan_data_start(head: bytes) -> tuple[int, bool]:
    """Where a JPEG's entropy-coded data starts: after its first start-of-scan segment.
    Found by walking the segments before it (an embedded EXIF thumbnail's own end marker
    is inside one of them); past `head` when the header goes on beyond it. And whether one
    of those segments holds metadata (see `ImageEnd.metadata`)."""
    at, metadata = len(_JPEG_START), False
    while at + 4 <= len(head):
        if head[at] != 0xFF:
            return at, metadata  # not a segment: look for the end marker from here
        marker = head[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
        elif marker in _MARKERS_WITHOUT_LENGTH:
            at += 2
        else:
            segment_end = at + 2 + int.from_bytes(head[at + 2 : at + 4], "big")
            if marker == _START_OF_SCAN:
                return segment_end, metadata
            metadata = metadata or marker in _JPEG_METADATA
            at = segment_end
    return len(head), metadata
