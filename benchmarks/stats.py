"""Latency statistics in plain Python: no numpy, no I/O, no clock (unit-tested in tests/test_benchmarks_stats.py)."""

from __future__ import annotations

import math
from typing import Sequence

def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(samples_ms: Sequence[float], digits: int = 3) -> dict[str, float]:
    """Mean, p50, p90, p99, min, max, standard deviation (ms), count and the rate the mean allows (per second)."""
    values = [float(v) for v in samples_ms]
    if not values:
        raise ValueError("cannot summarise an empty sample")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError("latency samples must be finite and non-negative")
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    out = {
        "count": n,
        "mean_ms": mean,
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "min_ms": min(values),
        "max_ms": max(values),
        "std_ms": std,
        "per_second": 1000.0 / mean if mean > 0 else math.inf,
    }
    return {k: (v if k == "count" else round(v, digits)) for k, v in out.items()}


def stage_sums(stages: dict[str, Sequence[float]], names: Sequence[str]) -> list[float]:
    """Per-sample sum of the named stages (e.g. the end-to-end time of each frame)."""
    lengths = {len(stages[n]) for n in names}
    if len(lengths) != 1:
        raise ValueError(f"stages {', '.join(names)} hold different numbers of samples: {sorted(lengths)}")
    return [sum(parts) for parts in zip(*(stages[n] for n in names))]


def split_counts(total: int, parts: int) -> list[int]:
    """``total`` items in ``parts`` consecutive, nearly equal runs (the first ones one longer)."""
    parts = max(1, min(parts, total))
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def pass_p50s(samples_ms: Sequence[float], counts: Sequence[int]) -> list[float]:
    """The p50 of each pass, the samples being the passes' samples one pass after the other."""
    if sum(counts) != len(samples_ms) or any(c < 1 for c in counts):
        raise ValueError(f"{len(samples_ms)} samples cannot be split into passes of {list(counts)}")
    out, start = [], 0
    for count in counts:
        out.append(percentile(samples_ms[start:start + count], 50))
        start += count
    return out


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is zero or missing."""
    if not denominator:
        return None
    return numerator / denominator
