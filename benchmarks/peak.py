"""The CPU's int8 peak, measured: build ``native/int8_peak.c`` with the system C compiler and run it.

The table in :mod:`benchmarks.macs` gives int8 MACs per cycle; multiplied by the clock
``/proc/cpuinfo`` reports it is only as good as that clock, and a VM (or a CPU that
boosts) reports its nominal one: on the 2-core Xeon these benchmarks ran on, 2.3 GHz
nominal against about 3.0 GHz real, which made the bound a third too lenient. So the
peak is measured instead: one core issues the widest int8 multiply-accumulate
instruction in independent chains, and the best of five timed passes is its peak.
Where no compiler exists (or the build fails) the caller falls back to the table and
says so.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any, Sequence

from benchmarks.device import local_cpu_flags
from benchmarks.macs import best_int8_flag, int8_peak

SOURCE = Path(__file__).resolve().parent / "native" / "int8_peak.c"

# cpuinfo flag -> (macro of int8_peak.c, compiler flags), for each int8 instruction of
# benchmarks.macs.INT8_RATES, whose order decides which one a CPU is measured with.
BUILDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "avx512_vnni": ("EDGEFER_AVX512_VNNI", ("-mavx512f", "-mavx512vnni")),
    "avx_vnni": ("EDGEFER_AVX_VNNI", ("-mavxvnni",)),
    "avx2": ("EDGEFER_AVX2", ("-mavx2",)),
    "asimddp": ("EDGEFER_DOTPROD", ("-march=armv8.2-a+dotprod",)),
    "asimd": ("EDGEFER_NEON", ()),
}


def variant(flags: Sequence[str], machine: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(flag, macro, compiler flags)`` of the best int8 instruction this CPU has, or None."""
    flag = best_int8_flag(flags, machine)
    if flag is None or flag not in BUILDS:
        return None
    return (flag, *BUILDS[flag])


def compiler() -> str | None:
    """The C compiler to build with: the one the native backend uses (``$CC``, cc, gcc or clang)."""
    from edgefer.runtime.backends.native_build import find_compiler

    return find_compiler()


def parse_output(text: str) -> tuple[float, str]:
    """``(MACs per second, instruction)`` from the program's one line of output."""
    parts = text.split()
    if len(parts) < 3:
        raise ValueError(f"unexpected int8_peak output: {text!r}")
    rate = float(parts[0])
    if not rate > 0:
        raise ValueError(f"int8_peak measured a non-positive rate: {text!r}")
    return rate, " ".join(parts[1:-1])


def measure_int8_peak(flags: Sequence[str], machine: str, seconds: float = 0.2,
                      timeout: float = 60.0) -> dict[str, Any]:
    """Measure one core's int8 peak; ``{"macs_per_second_per_core": ...}`` or ``{"error": why}``."""
    chosen = variant(flags, machine)
    if chosen is None:
        return {"error": f"no int8 instruction known for {machine} with these CPU flags"}
    flag, macro, cflags = chosen
    cc = compiler()
    if cc is None:
        return {"error": "no C compiler (set CC, or install gcc) to build benchmarks/native/int8_peak.c"}
    with tempfile.TemporaryDirectory(prefix="edgefer-peak-") as tmp:
        exe = Path(tmp) / "int8_peak"
        build = [cc, "-O2", f"-D{macro}", *cflags, str(SOURCE), "-o", str(exe)]
        try:
            done = subprocess.run(build, capture_output=True, text=True, timeout=timeout)
            if done.returncode != 0:
                return {"error": f"{' '.join(build)} failed: {done.stderr.strip()[-400:]}"}
            ran = subprocess.run([str(exe), str(seconds)], capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"int8_peak could not be built or run: {exc}"}
        if ran.returncode != 0:
            return {"error": f"int8_peak exited {ran.returncode}: {ran.stderr.strip()[-400:]}"}
        try:
            rate, instruction = parse_output(ran.stdout)
        except ValueError as exc:
            return {"error": str(exc)}
    return {"macs_per_second_per_core": rate, "instruction": instruction, "flag": flag,
            "build": " ".join([Path(cc).name, "-O2", f"-D{macro}", *cflags]),
            "method": "independent chains of the instruction on one core, best of 5 timed passes"}


def local_int8_peak(info: dict[str, Any], cores: int) -> dict[str, Any]:
    """This machine's int8 peak on ``cores`` cores (:func:`benchmarks.macs.int8_peak`), measured where it can be.

    ``info`` is :func:`benchmarks.device.device_info`'s description of this machine.
    """
    flags = local_cpu_flags()
    return int8_peak(flags, info["machine"], info["cpu_max_mhz"], cores, measure_int8_peak(flags, info["machine"]))
