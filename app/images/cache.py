"""A bounded cache of processed images by content hash, so repeats are decoded once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from app.images.process import ProcessedImage

DEFAULT_CACHE_BYTES = 16 * 1024 * 1024
MAX_ENTRIES = 10_000  # unconverted images cost no bytes, only their facts


class ImageCache:
    """Least-recently-used, bounded by the bytes it holds (unconverted images hold none).
    Conversion threads and the event loop share it, hence the lock."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, ProcessedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _cost(image: ProcessedImage) -> int:
        return len(image.data) if image.converted else 0

    def get(self, key: Hashable) -> ProcessedImage | None:
        with self._lock:
            image = self._entries.get(key)
            if image is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return image

    def peek(self, key: Hashable) -> ProcessedImage | None:
        """`get` once more for a key just missed (after waiting a turn), counting nothing."""
        with self._lock:
            return self._entries.get(key)

    def put(self, key: Hashable, image: ProcessedImage) -> None:
        cost = self._cost(image)
        if cost > self._max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._bytes -= self._cost(self._entries.pop(key))
            self._entries[key] = image
            self._bytes += cost
            while self._bytes > self._max_bytes or len(self._entries) > MAX_ENTRIES:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= self._cost(evicted)
