"""Small statistics helpers for the report."""

from __future__ import annotations

import math


def percentile_ms(samples_s: list[float], percent: float) -> float | None:
    """The nearest-rank percentile of samples in seconds, in milliseconds; None without samples."""
    if not samples_s:
        return None
    ordered = sorted(samples_s)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1] * 1000


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator
