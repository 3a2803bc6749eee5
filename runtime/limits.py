"""Bounds of the numeric options: one place for what the CLI, the service config and the library accept.

A value outside them is refused with a message naming the option, before it can reach a
library that would crash on it (LiteRT segfaults on ``threads = 100000``) or an image
that would exhaust a Pi's memory.
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Callable

#: Images with more pixels than this are refused before they are decoded (50 MP: about 150 MB as BGR).
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
#: The largest pixel budget one may configure (a 2**31-byte BGR image is what OpenCV's decoders allow).
MAX_IMAGE_PIXELS_LIMIT = 700_000_000
#: Frame sizes (capture, detect width, face sides) beyond 8K make no sense on the devices this serves.
MAX_SIDE = 16384


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the whole machine)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def max_threads() -> int:
    """The most inference threads accepted: 4 per usable core (at least 4); more only thrash."""
    return max(4, 4 * usable_cores())


def check_threads(threads: int | None, name: str = "threads") -> int | None:
    """``threads`` if it is None (the backend's default) or 1 .. :func:`max_threads`; else a ValueError."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= max_threads():
        raise ValueError(f"{name} must be an integer from 1 to {max_threads()} (4 per usable core), "
                         f"got {threads!r}")
    return threads


def check_max_pixels(value: int, name: str = "max_image_pixels") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_IMAGE_PIXELS_LIMIT:
        raise ValueError(f"{name} must be an integer from 1 to {MAX_IMAGE_PIXELS_LIMIT}, got {value!r}")
    return value


# -- argparse types: the error names the option (argparse prefixes "argument --NAME:") ----------------------

def int_between(low: int, high: int | Callable[[], int] | None = None) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers in ``[low, high]`` (``high`` may be a function)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        top = high() if callable(high) else high
        if value < low or (top is not None and value > top):
            raise argparse.ArgumentTypeError(
                f"must be {'>= ' + str(low) if top is None else f'from {low} to {top}'}, got {value}")
        return value
    return parse


def float_between(low: float, high: float, low_open: bool = False, high_open: bool = False
                  ) -> Callable[[str], float]:
    """An argparse ``type`` accepting finite numbers in the given interval."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        ok = math.isfinite(value) and (low < value if low_open else low <= value) and (
            value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(
                f"must be a finite number {'>' if low_open else '>='} {low:g} and {'<' if high_open else '<='} "
                f"{high:g}, got {text}")
        return value
    return parse
