"""benchmarks/ops.py: the single-operator cut is exact, the aggregation is right, the CLI writes its JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import ops
from benchmarks.macs import count_macs, tflite_op_macs

pytest.importorskip("ai_edge_litert", reason="per-operator profiling needs ai-edge-litert (the litert extra)")

SHIPPED = Path(__file__).resolve().parents[1] / "runtime" / "models" / "default_int8.tflite"


def test_each_single_operator_model_reproduces_its_operator_in_the_whole_model():
    from ai_edge_litert.interpreter import Interpreter

    whole = Interpreter(model_path=str(SHIPPED), experimental_preserve_all_tensors=True)
    whole.allocate_tensors()
    inp = whole.get_input_details()[0]
    rng = np.random.default_rng(1)
    whole.set_tensor(inp["index"], rng.integers(-128, 128, size=inp["shape"], dtype=np.int8))
    whole.invoke()

    cut = ops.split_operators(SHIPPED)
    assert [name for name, _ in cut] == [name for name, _ in tflite_op_macs(SHIPPED)]
    for name, content in cut:
        single = Interpreter(model_content=content)
        single.allocate_tensors()
        for detail in single.get_input_details():  # the cut keeps the tensor table, so indices match
            single.set_tensor(detail["index"], whole.get_tensor(detail["index"]))
        single.invoke()
        for detail in single.get_output_details():
            np.testing.assert_array_equal(single.get_tensor(detail["index"]), whole.get_tensor(detail["index"]),
                                          err_msg=f"{name} output {detail['index']}")


def test_by_kind_sums_and_shares():
    op_list = [{"op": "CONV_2D", "macs": 300, "per_face_p50_ms": 0.003},
               {"op": "CONV_2D", "macs": 500, "per_face_p50_ms": 0.001},
               {"op": "DEPTHWISE_CONV_2D", "macs": 200, "per_face_p50_ms": 0.004},
               {"op": "PAD", "macs": 0, "per_face_p50_ms": 0.002}]
    kinds = ops.by_kind(op_list, mhz=1000.0, threads=1)
    assert list(kinds) == ["CONV_2D", "DEPTHWISE_CONV_2D", "PAD"]  # most time first
    conv = kinds["CONV_2D"]
    assert conv["count"] == 2 and conv["macs"] == 800 and conv["per_face_ms"] == pytest.approx(0.004)
    assert conv["time_share"] == pytest.approx(0.4) and conv["macs_share"] == pytest.approx(0.8)
    # 800 MACs in 4 us at 1 GHz: 4,000 cycles
    assert conv["macs_per_cycle"] == pytest.approx(0.2)
    assert kinds["PAD"]["macs_per_cycle"] is None


def test_macs_per_cycle_needs_a_clock():
    assert ops.macs_per_cycle(2300, 0.001, 2300.0, 1) == pytest.approx(1.0)
    assert ops.macs_per_cycle(2300, 0.001, None, 1) is None


def test_cli_profiles_the_shipped_model(tmp_path, capsys):
    out = tmp_path / "ops.json"
    assert ops.main(["--model", str(SHIPPED), "--batch", "2", "--iterations", "2", "--warmup", "0",
                     "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["schema"] == ops.SCHEMA and result["batch"] == 2 and "--batch 2" in result["command"]
    assert len(result["ops"]) == len(tflite_op_macs(SHIPPED))
    assert all("error" not in op and op["stats"]["count"] == 2 for op in result["ops"])
    assert sum(op["macs"] for op in result["ops"]) == count_macs(SHIPPED)
    assert sum(k["count"] for k in result["by_kind"].values()) == len(result["ops"])
    assert result["whole_model"]["stats"]["count"] == 2
    assert result["between_ops_ms"] == pytest.approx(
        result["whole_model"]["per_face_p50_ms"] - sum(op["per_face_p50_ms"] for op in result["ops"]), abs=1e-4)
    assert "| CONV_2D |" in capsys.readouterr().out


def test_cli_refuses_a_model_it_cannot_cut(tmp_path, capsys):
    onnx_path = tmp_path / "m.onnx"
    onnx_path.write_bytes(b"not a model")
    assert ops.main(["--model", str(onnx_path)]) == 2
    assert "not a .tflite file" in capsys.readouterr().err


def test_round_robin_spreads_the_timed_calls_over_rounds_in_turn():
    calls: list[tuple[str, int, bool]] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, n: int, record: bool = True) -> None:
            calls.append((self.name, n, record))

    ops.time_round_robin([Fake("a"), Fake("b")], warmup=3, iterations=7, rounds=3)  # type: ignore[list-item]
    assert calls[:2] == [("a", 3, False), ("b", 3, False)]
    assert calls[2:] == [("a", 3, True), ("b", 3, True), ("a", 2, True), ("b", 2, True), ("a", 2, True), ("b", 2, True)]


def test_each_cut_carries_only_its_own_weights():
    sizes = [len(content) for _, content in ops.split_operators(SHIPPED)]
    assert max(sizes) < SHIPPED.stat().st_size / 2  # the largest layer (1024x1024) is about a third of the model
