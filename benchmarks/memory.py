"""Peak memory of the current process, measured the same way for both contenders (stdlib only)."""

from __future__ import annotations

import resource
import sys
from pathlib import Path


def peak_rss_mib(status: Path = Path("/proc/self/status")) -> float:
    """Peak resident memory of this process image so far, in MiB.

    On Linux this is ``VmHWM``, the high-water mark of this address space. Not
    ``ru_maxrss``: across ``execve`` Linux carries the parent's high-water mark into
    the child's ``ru_maxrss`` (a child spawned by a 300 MiB parent reports at least
    300 MiB), which would charge each benchmarked process with its launcher's memory.
    Elsewhere (macOS) ``ru_maxrss`` is all there is; it reports bytes there.
    """
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)
