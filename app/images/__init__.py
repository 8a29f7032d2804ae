"""Images in requests: intake checks, the SSRF-safe fetcher, Pillow processing, the pipeline."""

from __future__ import annotations

from app.images.intake import check_image_parts, decode_data_uri
from app.images.pipeline import ImageNeeds, ImagePipeline, PreparedImage, with_images

__all__ = [
    "ImageNeeds",
    "ImagePipeline",
    "PreparedImage",
    "check_image_parts",
    "decode_data_uri",
    "with_images",
]
