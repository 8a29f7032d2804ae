"""The processed-image cache: least recently used first out, bounded by the bytes it holds."""

from __future__ import annotations

from app.images.cache import ImageCache
from app.images.process import ProcessedImage


def converted(size: int, tag: str = "") -> ProcessedImage:
    return ProcessedImage(bytes(size), "image/png", 4, 4, tag, conversions=("resized",))


def test_a_stored_image_is_a_hit_and_an_unknown_key_a_miss() -> None:
    cache = ImageCache(max_bytes=1_000)
    image = converted(100)

    cache.put("a", image)

    assert cache.get("a") is image
    assert cache.get("b") is None
    assert (cache.hits, cache.misses) == (1, 1)


def test_the_least_recently_used_entry_is_evicted_past_the_byte_bound() -> None:
    cache = ImageCache(max_bytes=250)
    for key in "abc":
        cache.put(key, converted(100, key))

    assert cache.get("a") is None
    assert cache.get("b") is not None
    assert cache.get("c") is not None


def test_reading_an_entry_keeps_it() -> None:
    cache = ImageCache(max_bytes=250)
    cache.put("a", converted(100))
    cache.put("b", converted(100))

    cache.get("a")
    cache.put("c", converted(100))

    assert cache.get("a") is not None
    assert cache.get("b") is None


def test_an_image_larger_than_the_bound_is_not_kept() -> None:
    cache = ImageCache(max_bytes=250)
    cache.put("a", converted(100))

    cache.put("big", converted(300))

    assert cache.get("big") is None
    assert cache.get("a") is not None


def test_replacing_an_entry_does_not_count_it_twice() -> None:
    cache = ImageCache(max_bytes=250)
    cache.put("a", converted(100))
    cache.put("a", converted(100))

    cache.put("b", converted(100))

    assert cache.get("a") is not None
    assert cache.get("b") is not None


def test_unconverted_images_cost_nothing() -> None:
    cache = ImageCache(max_bytes=100)
    for key in range(50):
        cache.put(key, ProcessedImage(b"", "image/png", 4, 4, str(key)))
    cache.put("c", converted(100))

    assert all(cache.get(key) is not None for key in range(50))
    assert cache.get("c") is not None
