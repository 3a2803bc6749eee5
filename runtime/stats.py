"""Streaming statistics in fixed memory, for summaries of runs of any length.

A camera at 30 fps yields 2.6 million frames a day; keeping every timing sample grew
``edgefer detect`` by about 216 bytes per frame. :class:`StreamingStats` keeps a count,
the mean, the extremes and a histogram of logarithmic buckets instead: percentiles come
out within 1 % of the exact value, in the same few kilobytes after a day as after a
second.
"""

from __future__ import annotations

import math

import numpy as np


class StreamingStats:
    """Count, mean, min, max and percentiles (to ``rel_error``) of non-negative samples, in constant memory.

    Sample ``v`` falls into bucket ``floor(log(v / low) / log(1 + 2 * rel_error))``; a
    percentile is reported as its bucket's geometric middle, so it is within
    ``rel_error`` of the exact one. Values below ``low`` share the first bucket and
    above ``high`` the last (then min and max still hold the exact extremes).
    """

    def __init__(self, low: float = 1e-4, high: float = 1e6, rel_error: float = 0.01):
        self.low = low
        self._step = math.log1p(2 * rel_error)
        self._counts = np.zeros(int(math.ceil(math.log(high / low) / self._step)) + 1, np.int64)
        self.count = 0
        self.mean = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            return
        self.count += 1
        self.mean += (value - self.mean) / self.count
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        bucket = 0 if value <= self.low else int(math.log(value / self.low) / self._step)
        self._counts[min(bucket, len(self._counts) - 1)] += 1

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100), within the relative error; NaN before any sample."""
        if not self.count:
            return math.nan
        rank = max(1, math.ceil(q / 100 * self.count))
        bucket = int(np.searchsorted(np.cumsum(self._counts), rank))
        middle = self.low * math.exp((bucket + 0.5) * self._step)
        return min(max(middle, self.min), self.max)  # never outside what was seen
