"""PDFs for the tests, made here: a document as clients send them (text pages and a scanned
page), and the broken, hostile and absurd ones the gateway must refuse."""

from __future__ import annotations

import base64
import io
import zlib
from dataclasses import dataclass

from PIL import Image, ImageDraw
from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

# What the text pages of `report_pdf` say, page by page (None: a scanned page, no text layer).
REPORT_TEXTS = (
    "Invoice 2041 from Acme Optics. Total due: 1,280.00 EUR.",
    None,
    "Terms: payment within 30 days. Thank you for your order.",
)


@dataclass(frozen=True)
class Pdf:
    data: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode()

    @property
    def data_uri(self) -> str:
        return f"data:application/pdf;base64,{self.base64}"


def asking_about(pdf: Pdf, model: str, question: str = "What does it say?") -> dict[str, object]:
    """A chat request asking `model` about `pdf`, sent as a `file` part's data URI."""
    content = [
        {"type": "text", "text": question},
        {"type": "file", "file": {"filename": "x.pdf", "file_data": pdf.data_uri}},
    ]
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def report_pdf(texts: tuple[str | None, ...] = REPORT_TEXTS) -> Pdf:
    """A letter-size document: a page of text for each string, a scanned-looking page (an
    image, no text layer) for each None."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=letter, invariant=True)  # the same bytes every time
    for text in texts:
        if text is None:
            page.drawImage(ImageReader(io.BytesIO(_scan())), 36, 36, width=540, height=720)
        else:
            page.setFont("Helvetica", 14)
            page.drawString(72, 700, text)
        page.showPage()
    page.save()
    return Pdf(out.getvalue())


def encrypted_pdf() -> Pdf:
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=letter, encrypt="secret", invariant=True)
    page.drawString(72, 700, "Confidential")
    page.showPage()
    page.save()
    return Pdf(out.getvalue())


def _scan() -> bytes:
    """A grey photo of a page: slanted lines of ink on paper, as a scanner makes them."""
    image = Image.new("RGB", (600, 800), (236, 230, 214))
    draw = ImageDraw.Draw(image)
    for y in range(60, 760, 28):
        draw.line((50, y, 550, y + 6), fill=(70, 60, 120), width=4)
    draw.ellipse((380, 620, 540, 740), outline=(180, 30, 30), width=6)  # a red stamp
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def written_pdf(objects: list[bytes], root: int = 1) -> Pdf:
    """A PDF of the given objects (numbered from 1), with a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\n" % (len(objects) + 1, root))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return Pdf(out.getvalue())


def pages_pdf(count: int, size_pt: tuple[float, float] = (612, 792)) -> Pdf:
    """`count` blank pages of `size_pt` that share one page object's contents: ten thousand
    pages in a few hundred kilobytes."""
    kids = b" ".join(b"%d 0 R" % (3 + n) for n in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
    ]
    box = b"[0 0 %g %g]" % size_pt
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox %s >>" % box] * count
    return written_pdf(objects)


def deep_pdf(depth: int = 100_000) -> Pdf:
    """A page tree `depth` levels deep, a page at its bottom: a reader that walks it by
    recursion runs out of stack."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for level in range(depth):
        parent = b" /Parent %d 0 R" % (level + 1) if level else b""
        objects.append(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (level + 3, parent))
    objects.append(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] >>" % (depth + 1))
    return written_pdf(objects)


def image_bomb_pdf(side: int = 30_000) -> Pdf:
    """A page drawing one image of `side` by `side` pixels of zeros that packs to a few MB:
    decoding it whole would take 3 times `side`² bytes (2.7 GB by default)."""
    total = side * side * 3
    segment = 1_000_000
    assert total % segment == 0, "the image must be a whole number of segments"
    packer = zlib.compressobj(9)
    head = packer.compress(bytes(segment)) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(bytes(segment)) + packer.flush(zlib.Z_FULL_FLUSH)
    # A full flush leaves no state behind: every later segment packs the same. Then the final
    # empty block, and the checksum of that many zeros (Adler-32: a = 1, b = the length).
    adler = ((total % 65521) << 16) | 1
    stream = head + again * (total // segment - 1) + b"\x03\x00" + adler.to_bytes(4, "big")
    contents = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    return written_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /XObject << /Im1 5 0 R >> >> /Contents 4 0 R >>",
            b"<< /Length %d >>\nstream\n" % len(contents) + contents + b"\nendstream",
            b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB "
            b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
            % (side, side, len(stream))
            + stream
            + b"\nendstream",
        ]
    )


def slow_pdf(pages: int = 3, draws: int = 10, curves: int = 2000) -> Pdf:
    """Pages that each draw one tangle of `curves` Bézier curves `draws` times over: a small
    document that takes PDFium seconds to render."""
    points = [((i * 7919) % 612, (i * 104729) % 792) for i in range(curves * 3 + 1)]
    path = [b"%d %d m" % points[0]]
    for i in range(curves):
        a, b, c = points[3 * i + 1 : 3 * i + 4]
        path.append(b"%d %d %d %d %d %d c" % (*a, *b, *c))
    tangle = b"\n".join([*path, b"S"])
    contents = b"\n".join([b"q /Tangle Do Q"] * draws)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (5 + n) for n in range(pages)), pages),
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Length %d >>\nstream\n"
        % len(tangle)
        + tangle
        + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(contents) + contents + b"\nendstream",
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /XObject << /Tangle 3 0 R >> >> /Contents 4 0 R >>"
    ] * pages
    return written_pdf(objects)
