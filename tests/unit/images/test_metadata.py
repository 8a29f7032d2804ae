"""Location and identity metadata taken out of images that go upstream as they came, their
pixels untouched and their orientation kept."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from app.images import ImageNeeds
from app.images.metadata import strip_metadata
from tests.unit.images.chat import make_pipeline, part, request_with
from tests.unit.images.conftest import Fetchers
from tests.unit.images.samples import data_uri

GPS_IFD, ORIENTATION, ARTIST, OWNER = 0x8825, 0x0112, 0x013B, 0xA430
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><dc:creator>Jane Doe</dc:creator></x:xmpmeta>'
SECRETS = (b"Jane Doe", b"Backyard", b"48/1")


def exif(orientation: int = 1) -> Image.Exif:
    found = Image.Exif()
    found[ARTIST] = "Jane Doe"
    found[OWNER] = "Jane Doe"
    if orientation != 1:
        found[ORIENTATION] = orientation
    found.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 27: "Backyard"})
    return found


def picture() -> Image.Image:
    return Image.effect_noise((48, 32), 64).convert("RGB")


def saved(kind: str, **options: object) -> bytes:
    out = io.BytesIO()
    picture().save(out, kind, **options)
    return out.getvalue()


def orientation_of(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as image:
        value = image.getexif().get(ORIENTATION, 1)
        return int(value)


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


@pytest.mark.parametrize(
    ("kind", "mime", "options"),
    [
        ("JPEG", "image/jpeg", {"exif": exif(6), "xmp": XMP, "comment": b"Jane Doe was here"}),
        ("PNG", "image/png", {"exif": exif(6), "pnginfo": None}),
        ("WEBP", "image/webp", {"exif": exif(6), "xmp": XMP, "lossless": True}),
    ],
)
def test_location_and_identity_go_and_the_pixels_and_orientation_stay(
    kind: str, mime: str, options: dict[str, object]
) -> None:
    if kind == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Author", "Jane Doe")
        info.add_text("XML:com.adobe.xmp", XMP.decode())
        options = {**options, "pnginfo": info}
    data = saved(kind, **options)
    assert all(secret in data for secret in SECRETS[:1])

    stripped = strip_metadata(data, mime)

    assert stripped is not None
    assert not any(secret in stripped for secret in SECRETS)
    assert pixels(stripped) == pixels(data)
    assert orientation_of(stripped) == 6
    assert strip_metadata(stripped, mime) is None  # nothing left to take out


def test_a_gifs_comment_goes() -> None:
    data = saved("GIF", comment=b"Jane Doe was here")
    stripped = strip_metadata(data, "image/gif")
    assert stripped is not None
    assert b"Jane Doe" not in stripped
    assert pixels(stripped) == pixels(data)


@pytest.mark.parametrize(("kind", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_an_image_without_metadata_is_left_as_it_is(kind: str, mime: str) -> None:
    assert strip_metadata(saved(kind), mime) is None


def test_an_orientation_alone_needs_no_exif_of_its_own() -> None:
    data = saved("JPEG", exif=exif())
    stripped = strip_metadata(data, "image/jpeg")
    assert stripped is not None
    assert orientation_of(stripped) == 1
    assert b"Exif" not in stripped


@pytest.mark.anyio
async def test_a_photo_sent_again_goes_without_its_metadata_again(fetchers: Fetchers) -> None:
    data = saved("JPEG", exif=exif(6))
    pipeline = make_pipeline(fetchers.make())
    request = request_with([part(data_uri(data, "image/jpeg"))])

    for _ in range(2):  # the second time from the cache of what was found
        (prepared,) = await pipeline.prepare(request, ImageNeeds())
        assert prepared.replaced
        assert prepared.image is not None
        assert prepared.image.conversions == ("location and identity metadata removed",)
        assert b"Jane Doe" not in prepared.image.data
        assert pixels(prepared.image.data) == pixels(data)


@pytest.mark.anyio
async def test_images_keep_metadata_keeps_it(fetchers: Fetchers) -> None:
    data = saved("JPEG", exif=exif(6))
    pipeline = make_pipeline(fetchers.make(), keep_metadata=True)
    request = request_with([part(data_uri(data, "image/jpeg"))])

    (prepared,) = await pipeline.prepare(request, ImageNeeds())

    assert not prepared.replaced
