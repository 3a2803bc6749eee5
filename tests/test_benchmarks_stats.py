"""Pure helpers of the benchmarks: statistics, device parsing, int8 rates, face matching, result tables."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks.compare import RESULT_SCHEMA, load_results, markdown_table
from benchmarks.device import cpu_model, cpuinfo_fields, decode_throttled
from benchmarks.frames import fit_frame, parse_size
from benchmarks.macs import int8_peak, int8_rate
from benchmarks.memory import peak_rss_mib
from benchmarks.peer import lost_faces, same_face
from benchmarks.stats import pass_p50s, percentile, ratio, split_counts, stage_sums, summarize


@pytest.mark.parametrize("q", [0, 1, 10, 25, 50, 90, 99, 100])
def test_percentile_matches_numpy_linear(q):
    values = list(np.random.default_rng(3).gamma(2.0, 3.0, 57))
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], 101)


def test_summarize_known_sample():
    s = summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert s["count"] == 5
    assert s["mean_ms"] == 4.0 and s["p50_ms"] == 3.0 and s["min_ms"] == 1.0 and s["max_ms"] == 10.0
    assert s["p90_ms"] == pytest.approx(7.6) and s["p99_ms"] == pytest.approx(9.76)
    assert s["per_second"] == 250.0
    assert s["std_ms"] == pytest.approx(float(np.std([1, 2, 3, 4, 10], ddof=1)), abs=1e-3)


def test_summarize_single_and_invalid():
    assert summarize([2.5])["std_ms"] == 0.0
    with pytest.raises(ValueError, match="empty"):
        summarize([])
    with pytest.raises(ValueError, match="finite"):
        summarize([1.0, math.nan])
    with pytest.raises(ValueError, match="non-negative"):
        summarize([-1.0])


def test_stage_sums_and_ratio():
    assert stage_sums({"a": [1, 2], "b": [10, 20], "c": [5]}, ["a", "b"]) == [11, 22]
    with pytest.raises(ValueError, match="different numbers"):
        stage_sums({"a": [1, 2], "c": [5]}, ["a", "c"])
    assert ratio(10, 4) == 2.5 and ratio(1, 0) is None


def test_passes_split_in_order_and_keep_each_p50():
    assert split_counts(11, 5) == [3, 2, 2, 2, 2] and split_counts(3, 5) == [1, 1, 1] and split_counts(4, 0) == [4]
    # a slow stretch in the middle shows as one slow pass; the other passes keep their own p50
    samples = [1.0, 1.2, 1.1, 5.0, 5.2, 5.1, 1.3, 0.9, 1.0]
    assert pass_p50s(samples, [3, 3, 3]) == [1.1, 5.1, 1.0]
    with pytest.raises(ValueError, match="cannot be split"):
        pass_p50s(samples, [3, 3])


def test_cpuinfo_parsing_x86_and_pi():
    x86 = cpuinfo_fields("processor : 0\nmodel name : Intel(R) Xeon(R)\nflags : avx2 fma\nprocessor : 1\n"
                         "model name : other\n")
    assert cpu_model(x86) == "Intel(R) Xeon(R)"
    pi4 = cpuinfo_fields("processor : 0\nCPU part : 0xd08\nFeatures : fp asimd crc32\n")
    assert cpu_model(pi4) == "ARM Cortex-A72"
    pi5 = cpuinfo_fields("CPU part : 0xd0b\nModel : Raspberry Pi 5 Model B Rev 1.0\n")
    assert cpu_model(pi5) == "Raspberry Pi 5 Model B Rev 1.0"


def test_throttle_bits_decoded():
    assert decode_throttled(0) == []
    assert decode_throttled(0x50005) == ["under-voltage now", "throttled now", "under-voltage has occurred",
                                         "throttling has occurred"]


def test_int8_rates_and_peak():
    assert int8_rate(["avx2", "avx512_vnni"], "x86_64")[0] == 128
    assert int8_rate(["asimd", "asimddp"], "aarch64")[0] == 32
    assert int8_rate(["asimd"], "aarch64")[0] == 16
    assert int8_rate([], "riscv64")[0] is None
    peak = int8_peak(["asimddp"], "aarch64", 2400.0, 4)
    assert peak["macs_per_second"] == 32 * 2400e6 * 4 and peak["mhz"] == 2400.0 and peak["cores"] == 4
    assert int8_peak(["avx2"], "x86_64", None, 2)["macs_per_second"] is None
    assert "no int8 rate" in int8_peak([], "riscv64", 2000.0, 1)["why"]


def test_face_matching_counts_only_lost_peer_faces():
    assert same_face([0, 0, 10, 10], [4, 4, 20, 20]) and not same_face([0, 0, 10, 10], [50, 50, 10, 10])
    ours = [[[10, 10, 50, 50]], [], [[100, 100, 40, 40]]]
    peer = [[[12, 8, 48, 52], [300, 300, 60, 60]], [], [[105, 98, 42, 44]]]
    res = lost_faces(ours, peer)
    assert res["peer_faces"] == 3 and res["our_faces"] == 2 and res["lost"] == 1
    assert res["lost_faces"] == [{"frame": 0, "box": [300, 300, 60, 60]}]
    with pytest.raises(ValueError, match="frames"):
        lost_faces(ours, peer[:2])
    judged = lost_faces(ours, peer, truth=[[[10, 10, 50, 50]], [], [[100, 100, 40, 40]]])
    assert judged["lost_confirmed"] == 0 and judged["peer_real_faces"] == 2  # the lost box is no real face
    assert judged["lost_faces"][0]["real_face"] is False


def test_frame_size_parsing_and_fit():
    assert parse_size("640x480") == (640, 480) and parse_size("native") is None and parse_size(None) is None
    for bad in ("640", "axb", "8x8"):
        with pytest.raises(ValueError, match="640x480"):
            parse_size(bad)
    assert fit_frame(np.zeros((336, 596, 3), np.uint8), (640, 480)).shape == (480, 640, 3)


def _result(backend: str, total: list[float]) -> dict:
    stats = summarize(total)
    return {"schema": RESULT_SCHEMA, "device": {"cpu_model": "Test CPU", "cores": 4, "usable_cores": 4},
            "conditions_before": {"loadavg_1_5_15": [0.1, 0.1, 0.1]},
            "runs": [{"backend": backend, "precision": "int8", "threads": 2, "peak_rss_mib": 80.0,
                      "model_alone": {"stats": summarize([0.5, 0.6])},
                      "pipeline": {"fps": stats["per_second"], "stages": {"total": stats, "detect": stats,
                                                                          "infer": stats},
                                   "samples_ms": {"total": total}}}]}


def test_markdown_table_merges_files(tmp_path):
    import json

    for name, backend in (("a.json", "litert"), ("b.json", "onnx")):
        (tmp_path / name).write_text(json.dumps(_result(backend, [4.0, 5.0, 6.0])))
    table = markdown_table(load_results([tmp_path / "a.json", tmp_path / "b.json"]))
    lines = table.splitlines()
    assert len(lines) == 4 and "edgefer litert int8" in lines[2] and "edgefer onnx int8" in lines[3]
    assert "| 200.0 |" in lines[2]  # 1000 / 5 ms mean


def test_compare_rejects_foreign_json(tmp_path):
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a latency result"):
        load_results([tmp_path / "x.json"])


def test_peak_rss_reads_this_address_space_high_water_mark(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  102400 kB\nVmRSS:\t   51200 kB\n")
    assert peak_rss_mib(status) == 100.0


def test_peak_rss_falls_back_to_getrusage_without_proc(tmp_path):
    assert peak_rss_mib(tmp_path / "missing") > 0


def test_peak_rss_of_a_child_is_not_its_launchers(tmp_path):
    """ru_maxrss would report the parent's 200 MiB in the child; VmHWM does not."""
    import subprocess
    import sys
    from pathlib import Path

    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc")
    ballast = bytearray(200 * 1024 * 1024)
    ballast[::4096] = b"\x01" * len(ballast[::4096])
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", "from benchmarks.memory import peak_rss_mib; print(peak_rss_mib())"],
                         capture_output=True, text=True, cwd=root, check=True).stdout
    del ballast
    assert float(out) < 150


def test_cpu_busy_fraction_from_proc_stat(tmp_path, monkeypatch):
    from benchmarks import device

    stat = tmp_path / "stat"
    samples = iter(["cpu  100 0 100 800 0 0 0 0\ncpu0 1 1 1 1\n", "cpu  250 0 150 900 0 0 0 0\n"])

    def fake_sleep(_seconds):
        stat.write_text(next(samples))

    stat.write_text(next(samples))
    monkeypatch.setattr(device.time, "sleep", fake_sleep)
    assert device.cpu_busy_fraction(1.0, str(stat)) == pytest.approx(200 / 300, abs=1e-3)
    assert device.cpu_busy_fraction(1.0, str(tmp_path / "missing")) is None


def test_busy_note_prefers_the_sampled_busy_share_over_the_load_average():
    from benchmarks.latency import busy_note

    assert busy_note({"loadavg_1_5_15": [1.8, 2.0, 2.0], "cpu_busy_fraction": 0.02}, 2) is None
    assert "60%" in busy_note({"loadavg_1_5_15": [0.1, 0.1, 0.1], "cpu_busy_fraction": 0.6}, 2)
    assert "load average 1.80" in busy_note({"loadavg_1_5_15": [1.8, 2.0, 2.0]}, 2)
