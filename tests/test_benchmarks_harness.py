"""The latency and accuracy harness on short runs (structure only: no timing is asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import pytest

from benchmarks import accuracy, latency
from benchmarks.macs import count_macs
from benchmarks.peer import PeerSession
from edgefer.runtime.labels import EMOTIONS

ITER = 6


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory) -> Path:
    """A 4-frame video of the astronaut photo (one real face), so every stage runs."""
    from edgefer.samples import astronaut_bgr

    path = tmp_path_factory.mktemp("clip") / "astronaut.avi"
    img = astronaut_bgr()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (img.shape[1], img.shape[0]))
    for _ in range(4):
        writer.write(img)
    writer.release()
    return path


@pytest.fixture(scope="module")
def results(tiny_artifacts, face_clip, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("latency")
    files = {}
    for backend, model in (("litert", "tiny_int8.tflite"), ("onnx", "tiny_fp32.onnx")):
        files[backend] = out / f"{backend}.json"
        rc = latency.main(["--backend", backend, "--model", str(tiny_artifacts / model), "--source", str(face_clip),
                           "--warmup", "2", "--iterations", str(ITER), "--threads", "1", "--pass-gap", "0",
                           "--json", str(files[backend])])
        assert rc == 0
    return files


def test_result_records_stages_device_and_memory(results):
    res = json.loads(results["litert"].read_text())
    assert res["schema"] == "edgefer-latency/1" and res["command"].startswith("python benchmarks/latency.py")
    dev = res["device"]
    for key in ("cpu_model", "cores", "os", "python", "libraries", "board"):
        assert key in dev
    assert "numpy" in dev["libraries"] and "ai-edge-litert" in dev["libraries"]
    assert res["conditions_before"]["loadavg_1_5_15"] is not None
    (run,) = res["runs"]
    assert run["backend"] == "litert" and run["precision"] == "int8" and run["threads"] == 1
    assert run["model_alone"]["stats"]["count"] == ITER and len(run["model_alone"]["samples_ms"]) == ITER
    pipe = run["pipeline"]
    assert set(pipe["stages"]) == {"read", "detect", "preprocess", "infer", "postprocess", "total"}
    for stats in pipe["stages"].values():
        assert stats["count"] == ITER
        assert stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert pipe["frames"] == ITER and pipe["faces"] >= ITER  # the astronaut's face in every frame (clip looped)
    assert len(pipe["boxes"]) == ITER and pipe["frame_size"] == [640, 480]
    assert run["peak_rss_mib"] > 0 and run["macs"] > 0
    assert run["int8_peak"]["cores"] == 1 or run["int8_peak"]["macs_per_second"] is None
    batched = run["model_batched"]  # 16 faces per call by default, divided back to a per-face time
    assert batched["batch"] == 16 and batched["per_face_p50_ms"] == pytest.approx(batched["stats"]["p50_ms"] / 16,
                                                                                   abs=1e-4)
    # the best pass (passes of the iterations, in order) stands beside the p50 over all passes
    assert sum(batched["passes"]["iterations"]) == ITER and len(batched["passes"]["p50_ms"]) == min(5, ITER)
    assert batched["per_face_best_pass_ms"] == pytest.approx(min(batched["passes"]["p50_ms"]) / 16, abs=1e-4)
    assert "classifier_bound" not in run  # no MACs / int8-peak target any more: the MAC count is information


def test_compare_merges_files_into_table_and_plot(results, tmp_path, capsys):
    png = tmp_path / "latency.png"
    rc = latency.main(["--compare", str(results["litert"]), str(results["onnx"]), "--plot", str(png)])
    assert rc == 0
    table = capsys.readouterr().out.strip().splitlines()
    assert len(table) == 4 and "edgefer litert int8" in table[2] and "edgefer onnx fp32" in table[3]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_macs_of_tflite_and_onnx_agree(tiny_artifacts):
    tfl = count_macs(tiny_artifacts / "tiny_int8.tflite")
    onx = count_macs(tiny_artifacts / "tiny_fp32.onnx")
    assert tfl > 100_000
    assert abs(tfl - onx) / onx < 0.01


def test_latency_errors_are_clear(tmp_path, capsys):
    assert latency.main(["--backend", "litert", "--model", str(tmp_path / "none.tflite")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    assert latency.main(["--compare", str(bad)]) == 2
    assert "not a latency result" in capsys.readouterr().err
    assert latency.main(["--model", "m.tflite", "--frame-size", "big"]) == 2


def test_bare_call_benchmarks_each_installed_backend(tmp_path):
    """No --backend, no --model: every installed backend with the shipped model, each in its own process."""
    out = tmp_path / "all.json"
    rc = latency.main(["--warmup", "1", "--iterations", "3", "--source", str(tmp_path / "none.mp4"),
                       "--json", str(out)])
    assert rc == 2  # a missing source is reported before anything is measured
    rc = latency.main(["--warmup", "1", "--iterations", "3", "--json", str(out), "--source",
                       str(Path(__file__).resolve().parent)])  # a folder with no images
    assert rc == 2
    rc = latency.main(["--warmup", "1", "--iterations", "3", "--pass-gap", "0", "--json", str(out)])
    assert rc == 0, "needs the shipped models in runtime/models (added by the lead)"
    runs = json.loads(out.read_text())["runs"]
    assert {r["backend"] for r in runs} >= {"litert"}
    assert all(r["model_alone"]["passes"]["gap_s"] == 0 for r in runs)  # options reach each backend's process


def test_peer_not_installed_says_how_to_install(face_clip):
    try:
        import fer  # noqa: F401
    except ImportError:
        session = PeerSession("fer", sys.executable, str(face_clip), "640x480")
        with pytest.raises(RuntimeError, match="separate virtual environment"):
            session.run(2)
        session.close()
    else:
        pytest.skip("fer is installed in this environment; the not-installed message cannot be observed")


def test_accuracy_side_by_side(tiny_artifacts, synthetic_data, tmp_path, capsys):
    out = tmp_path / "acc.json"
    rc = accuracy.main(["--data", str(synthetic_data / "val"), "--model", str(tiny_artifacts / "tiny_int8.tflite"),
                        "--model", str(tiny_artifacts / "tiny_fp32.onnx"), "--json", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    for row in ("tiny_int8.tflite | litert | int8 | face + flip + zoom 0.9 | 84 |",
                "tiny_int8.tflite | litert | int8 | face + flip | 84 |", "tiny_int8.tflite | litert | int8 | face | 84 |",
                "tiny_fp32.onnx | onnx | fp32 | face + flip + zoom 0.9 | 84 |"):
        assert row in table
    evals = json.loads(out.read_text())["evaluations"]
    # Each artifact with the runtime's default views (flip and the tighter view), flip alone, the face alone.
    assert [e["samples"] for e in evals] == [84] * 6
    assert [(e["test_time_flip"], e["test_time_zoom"]) for e in evals] == [(True, 0.9), (True, None), (False, None)] * 2
    assert all(set(e["per_class"]) == set(EMOTIONS) and 0 <= e["macro_f1"] <= 1 for e in evals)
    assert accuracy.main(["--data", str(tmp_path / "missing"), "--model", str(tiny_artifacts / "tiny_fp32.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_expected_table_scales_a_measured_run(results, tmp_path, capsys):
    from benchmarks import expected

    out = tmp_path / "expected.json"
    assert expected.main([str(results["litert"]), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert rows[0]["kind"] == "measured" and len(rows) == 1 + len(expected.TARGETS)
    pi4, pi5 = rows[1], rows[2]
    assert pi4["kind"] == pi5["kind"] == "estimated"
    # A Pi 4 (no int8 dot product, lower clock) is estimated slower than a Pi 5 in every stage.
    assert all(pi4["stages_mean_ms"][s] >= pi5["stages_mean_ms"][s] for s in pi4["stages_mean_ms"])
    assert "| Raspberry Pi 5 | estimated |" in capsys.readouterr().out
    assert expected.main([str(results["onnx"])]) == 2  # no litert run to scale from


def test_expected_table_rewrites_only_the_marked_block(results, tmp_path, capsys):
    from benchmarks import expected

    doc = tmp_path / "README.md"
    doc.write_text(f"# Board\n\nbefore\n{expected.MD_BEGIN}\nold table\n{expected.MD_END}\nafter\n")
    out = tmp_path / "expected.json"
    assert expected.main([str(results["litert"]), "--json", str(out), "--markdown", str(doc)]) == 0
    text = doc.read_text()
    assert "old table" not in text and "| Raspberry Pi 5 | estimated |" in text
    assert text.startswith("# Board\n\nbefore\n") and text.endswith(f"{expected.MD_END}\nafter\n")
    unmarked = tmp_path / "plain.md"
    unmarked.write_text("no markers\n")
    out.unlink()
    assert expected.main([str(results["litert"]), "--json", str(out), "--markdown", str(unmarked)]) == 2
    assert "no expected-table markers" in capsys.readouterr().err
    assert out.exists() and unmarked.read_text() == "no markers\n"  # the JSON is kept, the file untouched


@pytest.mark.parametrize("doc", ["devices/README.md", "devices/expected-performance.md"])
def test_committed_expected_tables_match_expected_json(doc):
    from benchmarks import expected

    root = Path(__file__).resolve().parents[1]
    rows = json.loads((root / "benchmarks" / "results" / "expected.json").read_text())["rows"]
    text = (root / doc).read_text()
    block = text.split(expected.MD_BEGIN, 1)[1].split(expected.MD_END, 1)[0]
    assert block.strip() == expected.markdown(rows), f"{doc}: rerun the command in benchmarks/results/expected.json"


@pytest.mark.parametrize("bad, message", [(["--passes", "0"], "--passes >= 1"),
                                          (["--pass-gap", "-1"], "--pass-gap must be a number of seconds")])
def test_pass_options_are_checked_before_anything_runs(bad, message, capsys):
    with pytest.raises(SystemExit) as exc:
        latency.main(["--backend", "litert", *bad])
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_stills_mode_detects_every_frame_on_its_own(tiny_artifacts, face_clip, tmp_path):
    """--stills: every frame goes through the still-image path (no tracking), as edgefer treats photos."""
    out = tmp_path / "stills.json"
    assert latency.main(["--backend", "litert", "--model", str(tiny_artifacts / "tiny_int8.tflite"), "--source",
                         str(face_clip), "--warmup", "1", "--iterations", "4", "--batch", "1", "--threads", "1",
                         "--pass-gap", "0", "--stills", "--json", str(out)]) == 0
    pipe = json.loads(out.read_text())["runs"][0]["pipeline"]
    assert pipe["stills"] is True and pipe["tracking"] is None and pipe["detection_passes"] is None
    assert pipe["faces"] == 4  # the astronaut in every frame, each found by its own detection
    from benchmarks.compare import table_rows

    (row,) = table_rows([{**json.loads(out.read_text()), "_file": str(out)}])
    assert row["what"].endswith("haar stills")
