"""Percentiles and rates, the same way for every figure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def summary(values: Sequence[float], *, digits: int = 3) -> dict[str, Any]:
    """count, min, median, p95, p99, max and mean of ``values`` (None when empty)."""
    data = sorted(values)
    if not data:
        return {"count": 0, "min": None, "median": None, "p95": None, "p99": None, "max": None}
    return {
        "count": len(data),
        "min": round(data[0], digits),
        "median": round(percentile(data, 50), digits),
        "p95": round(percentile(data, 95), digits),
        "p99": round(percentile(data, 99), digits),
        "max": round(data[-1], digits),
        "mean": round(sum(data) / len(data), digits),
    }


def rate(count: float, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None
