"""The duration histogram of the job metrics: its buckets, and the percentiles read from it."""

from __future__ import annotations

from bisect import bisect_left

#: Upper bounds, in milliseconds, of the duration histogram's buckets of ``JobMinute.durations``;
#: one more bucket after the last holds every longer run.
DURATION_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000)


def duration_bucket(duration_ms: float) -> int:
    """The index in ``JobMinute.durations`` of the bucket a run of this duration falls in."""
    return bisect_left(DURATION_BUCKETS_MS, duration_ms)


def percentile_ms(histogram: list[int], fraction: float) -> float | None:
    """An estimate of the ``fraction`` quantile of a duration histogram (linear within its bucket); None if empty."""
    total = sum(histogram)
    if not total:
        return None
    rank = fraction * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = DURATION_BUCKETS_MS[index - 1] if index else 0
            high = DURATION_BUCKETS_MS[index] if index < len(DURATION_BUCKETS_MS) else low * 2
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(DURATION_BUCKETS_MS[-1])
