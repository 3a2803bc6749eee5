"""What machine a benchmark ran on: CPU, board, OS, library versions, temperature, throttling, load, memory."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions go into every result (absent ones are recorded as ``None``).
LIBRARIES = ("edgefer", "numpy", "opencv-python-headless", "opencv-python", "opencv-contrib-python",
             "ai-edge-litert", "tflite-runtime", "onnxruntime", "onnxruntime-gpu", "tensorrt", "fer",
             "tensorflow", "tensorflow-cpu")

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware documentation).
_THROTTLE_BITS = {
    0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now", 3: "soft temperature limit now",
    16: "under-voltage has occurred", 17: "ARM frequency capping has occurred", 18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def cpuinfo_fields(text: str) -> dict[str, str]:
    """The first value of each ``key : value`` line of ``/proc/cpuinfo``."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def cpu_model(fields: dict[str, str]) -> str:
    """A readable CPU name from cpuinfo fields (x86 ``model name``; ARM ``Model``/``Hardware``/part number)."""
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if fields.get(key):
            return fields[key]
    part = fields.get("CPU part")
    arm_parts = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76", "0xd42": "Cortex-A78AE",
                 "0xd05": "Cortex-A55", "0xd41": "Cortex-A78"}
    if part:
        return f"ARM {arm_parts.get(part.lower(), 'part ' + part)}"
    return platform.processor() or platform.machine()


def cpu_flags(fields: dict[str, str]) -> list[str]:
    """ISA feature flags (x86 ``flags``, ARM ``Features``)."""
    return sorted(set((fields.get("flags") or fields.get("Features") or "").split()))


def local_cpu_flags() -> list[str]:
    """This machine's ISA feature flags, from ``/proc/cpuinfo`` (none where it cannot be read)."""
    return cpu_flags(cpuinfo_fields(_read("/proc/cpuinfo") or ""))


def cpu_max_mhz(fields: dict[str, str]) -> tuple[float | None, str]:
    """The highest CPU clock this machine states, and where it came from."""
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if khz and khz.isdigit():
        return int(khz) / 1000.0, "cpufreq cpuinfo_max_freq"
    if fields.get("cpu MHz"):
        return float(fields["cpu MHz"]), "/proc/cpuinfo cpu MHz (a VM or no cpufreq: the nominal clock, turbo unknown)"
    return None, "unknown"


def cpu_temperature_c() -> float | None:
    """CPU/SoC temperature from the thermal zones (Pi: ``cpu-thermal``; Jetson: ``CPU-therm``), if any."""
    zones = sorted(Path("/sys/class/thermal").glob("thermal_zone*"))
    preferred = [z for z in zones if re.search(r"cpu|soc|x86_pkg", (_read(z / "type") or ""), re.I)]
    for zone in preferred or zones:
        raw = _read(zone / "temp")
        if raw and raw.lstrip("-").isdigit():
            return int(raw) / 1000.0
    return None


def decode_throttled(value: int) -> list[str]:
    """The conditions set in a ``get_throttled`` bit mask."""
    return [text for bit, text in _THROTTLE_BITS.items() if value & (1 << bit)]


def throttling() -> dict[str, Any] | None:
    """``vcgencmd get_throttled`` on a Raspberry Pi; ``None`` where vcgencmd does not exist."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": str(exc)}
    match = re.search(r"0x[0-9a-fA-F]+", out)
    if not match:
        return {"raw": out, "error": "unexpected vcgencmd output"}
    value = int(match.group(0), 16)
    return {"raw": out, "value": value, "conditions": decode_throttled(value)}


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that matter here, read from metadata (nothing is imported)."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {k: v for k, v in versions.items() if v is not None}


def _cpu_times(stat: str) -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from the first line of ``/proc/stat``."""
    fields = stat.split("\n", 1)[0].split()
    if not fields or fields[0] != "cpu" or len(fields) < 5:
        return None
    values = [int(v) for v in fields[1:9]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def cpu_busy_fraction(window_s: float = 1.0, stat: str = "/proc/stat") -> float | None:
    """Share of all CPUs busy over the next ``window_s`` seconds (this process idles meanwhile).

    Unlike the load average, which decays over a minute, it shows other work that
    runs right now, not work that stopped a moment ago.
    """
    first = _cpu_times(_read(stat) or "")
    if first is None:
        return None
    time.sleep(window_s)
    second = _cpu_times(_read(stat) or "")
    if second is None or second[1] <= first[1]:
        return None
    return round((second[0] - first[0]) / (second[1] - first[1]), 3)


def conditions(busy_window_s: float = 0.0) -> dict[str, Any]:
    """What may change during a run: load average, CPU busy share (if sampled), temperature, throttling."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = {"loadavg_1_5_15": [round(v, 2) for v in load] if load else None,
           "cpu_temperature_c": cpu_temperature_c(), "throttled": throttling()}
    if busy_window_s > 0:
        out["cpu_busy_fraction"] = cpu_busy_fraction(busy_window_s)
    return out


def device_info() -> dict[str, Any]:
    """The machine's description recorded in every benchmark result."""
    fields = cpuinfo_fields(_read("/proc/cpuinfo") or "")
    mhz, mhz_source = cpu_max_mhz(fields)
    os_release = _read("/etc/os-release") or ""
    pretty = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', os_release, re.M)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": cpu_model(fields),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "cpu_max_mhz": mhz,
        "cpu_mhz_source": mhz_source,
        "board": _read("/proc/device-tree/model"),
        "os": pretty.group(1) if pretty else platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "memory_mib": _mem_total_mib(),
    }


def _mem_total_mib() -> float | None:
    match = re.search(r"MemTotal:\s+(\d+) kB", _read("/proc/meminfo") or "")
    return round(int(match.group(1)) / 1024, 1) if match else None
