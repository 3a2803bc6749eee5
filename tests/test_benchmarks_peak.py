"""The measured int8 peak: variant choice and output parsing, and a real build where a compiler exists."""

from __future__ import annotations

import platform

import pytest

from benchmarks import peak
from benchmarks.device import local_cpu_flags


def test_variant_picks_the_widest_instruction_present():
    assert peak.variant(["avx2", "avx512_vnni"], "x86_64")[1] == "EDGEFER_AVX512_VNNI"
    assert peak.variant(["avx2"], "x86_64")[1] == "EDGEFER_AVX2"
    assert peak.variant(["asimd", "asimddp"], "arm64")[1] == "EDGEFER_DOTPROD"
    assert peak.variant(["asimd"], "aarch64")[1] == "EDGEFER_NEON"
    assert peak.variant(["sse2"], "x86_64") is None


def test_parse_output():
    assert peak.parse_output("3.84e+11 vpdpbusd zmm 0\n") == (3.84e11, "vpdpbusd zmm")
    with pytest.raises(ValueError, match="unexpected"):
        peak.parse_output("")
    with pytest.raises(ValueError, match="non-positive"):
        peak.parse_output("0 sdot (neon dotprod) 1")


def test_unknown_cpu_and_missing_compiler_are_reported(monkeypatch):
    assert "no int8 instruction" in peak.measure_int8_peak([], "riscv64")["error"]
    monkeypatch.setattr(peak, "compiler", lambda: None)
    assert "no C compiler" in peak.measure_int8_peak(["avx2"], "x86_64")["error"]


def test_measures_this_cpu():
    flags, machine = local_cpu_flags(), platform.machine()
    if peak.variant(flags, machine) is None:
        pytest.skip(f"no int8 instruction known for {machine} with this CPU's flags")
    if peak.compiler() is None:
        pytest.skip("no C compiler on this machine (set CC or install gcc)")
    result = peak.measure_int8_peak(flags, machine, seconds=0.02)
    assert "error" not in result, result.get("error")
    # At least 1 G MACs/s on any core with these instructions, and below 64 instructions' worth per ns.
    assert 1e9 < result["macs_per_second_per_core"] < 64 * 64 * 1e9
