"""The native INT8 engine: packing, buffer sharing, and outputs identical to LiteRT's (XNNPACK) on real models."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from edgefer.runtime.backends import BackendUnavailable, create_backend
from edgefer.runtime.backends.native_build import has_compiler
from edgefer.runtime.backends.native_plan import pack_depthwise, pack_gemm
from edgefer.runtime.classifier import EmotionClassifier
from edgefer.runtime.manifest import Manifest, ModelError

SHIPPED = Path(__file__).resolve().parents[1] / "runtime" / "models" / "default_int8.tflite"

needs_engine = pytest.mark.skipif(
    not has_compiler() or importlib.util.find_spec("ai_edge_litert") is None,
    reason="the native backend needs a C compiler (gcc/clang or $CC) and ai-edge-litert to read .tflite files",
)


def test_pack_gemm_layout():
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (40, 10), dtype=np.int8)  # 40 outputs: two blocks of 32, K padded to 12
    packed, k4 = pack_gemm(w)
    assert k4 == 3
    blocks = packed.reshape(2, k4, 32, 4)
    for n in range(64):
        for k in range(12):
            expected = w[n, k] if n < 40 and k < 10 else 0
            assert blocks[n // 32, k // 4, n % 32, k % 4] == expected


def test_pack_depthwise_layout():
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (3, 3, 20), dtype=np.int8)  # 20 channels: two blocks of 16
    packed = pack_depthwise(w).reshape(2, 3, 2, 16, 4)
    for c in range(32):
        for ky in range(3):
            taps = [int(w[ky, kx, c]) if c < 20 else 0 for kx in range(3)]
            assert packed[c // 16, ky, 0, c % 16].tolist() == [*taps, 0]  # output column x
            assert packed[c // 16, ky, 1, c % 16].tolist() == [0, *taps]  # column x + 1 of a pair


def _reference(backend: str, model: Path, batch: np.ndarray) -> np.ndarray:
    b = create_backend(backend)
    b.load(model, Manifest.load(model), 1)
    try:
        return b.infer(batch)
    finally:
        b.close()


def _faces(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    # The runtime's input range ([-1, 1] after its normalisation) and a little beyond, which must clamp.
    return np.random.default_rng(seed).uniform(-1.1, 1.1, (n, *shape)).astype(np.float32)


@contextlib.contextmanager
def _loaded_native(model: Path, threads: int | None = None, portable: bool = False) -> Iterator[Any]:
    """The native backend with ``model`` loaded (the plain-C build must say it is slow), closed after."""
    native = create_backend("native")
    with pytest.warns(UserWarning, match="plain C loops") if portable else contextlib.nullcontext():
        native.load(model, Manifest.load(model), threads)
    try:
        yield native
    finally:
        native.close()


@needs_engine
@pytest.mark.parametrize("portable", [False, True], ids=["vector", "portable-c"])
def test_shipped_model_matches_litert_exactly(portable, monkeypatch, tmp_path):
    """Same integer arithmetic and rounding as XNNPACK: the scores are identical, not just close."""
    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path))
    if portable:
        monkeypatch.setenv("EDGEFER_NATIVE_PORTABLE", "1")
    with _loaded_native(SHIPPED, 1, portable) as native:
        for n, seed in ((1, 0), (5, 1), (16, 2)) if not portable else ((2, 3),):
            batch = _faces(n, (48, 48, 3), seed)
            np.testing.assert_array_equal(native.infer(batch), _reference("litert", SHIPPED, batch))
        assert native.infer(np.zeros((0, 48, 48, 3), np.float32)).shape == (0, 7)


@needs_engine
def test_tiny_model_matches_litert(tiny_artifacts, monkeypatch, tmp_path):
    """alpha 0.25: 8- and 16-channel layers take the engine's masked-store and scalar depthwise paths."""
    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path))
    model = next(tiny_artifacts.glob("*int8.tflite"))
    batch = _faces(7, (32, 32, 3), 4)
    with _loaded_native(model) as native:
        np.testing.assert_array_equal(native.infer(batch), _reference("litert", model, batch))


@needs_engine
@pytest.mark.parametrize("portable", [False, True], ids=["vector", "portable-c"])
def test_every_kernel_path_matches_litert(portable, tmp_path, monkeypatch):
    """A model built to reach each path of the engine, checked against LiteRT on odd sizes:
    3x3 convolutions with padding on every side and at stride 2 (border patches), a 1x1 one on 6
    channels (implicit GEMM, runs not a multiple of 4), 48 outputs (a masked half block), 5x5 and
    24-channel depthwise (generic loop), 48-channel depthwise (per-pixel loop, packed 32 + 16
    stores), 64-channel 3x3 depthwise at stride 1 on an odd width and at stride 2 (32-channel
    row blocks, pairs and single columns)."""
    tf = pytest.importorskip("tensorflow", reason="building an INT8 .tflite needs TensorFlow")
    from edgefer.runtime.manifest import sha256_of
    from edgefer.runtime.preprocess import InputSpec

    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path))
    if portable:
        monkeypatch.setenv("EDGEFER_NATIVE_PORTABLE", "1")
    layers = tf.keras.layers
    inputs = tf.keras.Input((11, 13, 3))
    x = layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = layers.DepthwiseConv2D(5, padding="same", activation="relu")(x)
    x = layers.Conv2D(24, 1, activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same")(x)
    x = layers.Conv2D(48, 1, activation="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 1, activation="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2D(40, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(7)(x)
    keras_model = tf.keras.Model(inputs, outputs)
    rng = np.random.default_rng(5)
    for w in keras_model.weights:  # non-trivial biases, so the folded zero points matter
        w.assign(rng.normal(0, 0.5, w.shape).astype(np.float32))
    samples = _faces(32, (11, 13, 3), 6)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([samples[i : i + 1]] for i in range(len(samples)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    model = tmp_path / "paths_int8.tflite"
    model.write_bytes(converter.convert())
    Manifest("tflite", "int8", [str(i) for i in range(7)], InputSpec(11, 13, 3), "softmax",
             sha256_of(model)).write(model)

    batch = _faces(9, (11, 13, 3), 7)
    with _loaded_native(model, portable=portable) as native:
        np.testing.assert_array_equal(native.infer(batch), _reference("litert", model, batch))


@needs_engine
def test_classifier_runs_native_and_rejects_it_for_onnx(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path))
    clf = EmotionClassifier(SHIPPED, backend="native")
    try:
        face = np.full((60, 60), 128, np.uint8)
        result = clf.classify([face, face])
        assert result.scores.shape == (2, 7)
        np.testing.assert_array_equal(result.scores[0], result.scores[1])
    finally:
        clf.close()
    onnx = SHIPPED.with_name("default_fp32.onnx")
    with pytest.raises(ModelError, match="cannot run .*use --backend onnx"):
        EmotionClassifier(onnx, backend="native")


@needs_engine
def test_float_model_and_unknown_operator_are_refused_clearly(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="building a float .tflite needs TensorFlow")
    keras = tf.keras
    from edgefer.runtime.backends.native_plan import read_plan

    def tflite(name, *layers):
        inputs = keras.Input((8, 8, 3), batch_size=1)
        x = inputs
        for layer in layers:
            x = layer(x)
        path = tmp_path / name
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(keras.Model(inputs, x)).convert())
        return path

    conv = tflite("conv.tflite", keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(7))
    with pytest.raises(ModelError, match="operator 0 .*full-integer.*--backend litert"):
        read_plan(conv)
    flat = tflite("flat.tflite", keras.layers.Flatten(), keras.layers.Dense(7))
    with pytest.raises(ModelError, match="operator 0 \\(RESHAPE\\): the native backend has no RESHAPE.*--backend litert"):
        read_plan(flat)


@needs_engine
def test_run_ops_needs_a_batch_and_a_valid_range(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path))
    with _loaded_native(SHIPPED, 1) as native:
        with pytest.raises(RuntimeError, match="one infer call first"):
            native.run_ops(0, 1)
        native.infer(_faces(2, (48, 48, 3), 8))
        assert native.op_names[0] == "CONV_2D" and native.op_names[-1] == "FULLY_CONNECTED"
        native.run_ops(0, len(native.op_names))
        with pytest.raises(ValueError, match="outside"):
            native.run_ops(len(native.op_names) - 1, 2)


def test_share_buffers_never_overlaps_live_tensors():
    from edgefer.runtime.backends.native import _share_buffers
    from edgefer.runtime.backends.native_plan import GEMM, Op, Plan, Tensor

    # a chain 0 -> 1 -> 2 -> 3 plus a skip read of tensor 1 by the last op's sibling
    tensors = {i: Tensor(i, (4, 4, 8 * (i + 1)), 1.0, 128) for i in range(5)}
    ops = [Op(GEMM, 0, 1, "a"), Op(GEMM, 1, 2, "b"), Op(GEMM, 2, 3, "c"), Op(GEMM, 1, 4, "d")]
    plan = Plan(ops, tensors, 0, 4)
    views = _share_buffers(plan, 3)
    live = {0: (-1, 0), 1: (0, 3), 2: (1, 2), 3: (2, 2), 4: (3, 4)}

    def shares(a, b):
        return np.shares_memory(views[a], views[b])

    for a in tensors:
        assert views[a].size >= 3 * tensors[a].size
        for b in tensors:
            if a < b and shares(a, b):
                (sa, ea), (sb, eb) = live[a], live[b]
                assert ea < sb or eb < sa, f"tensors {a} and {b} share memory while both live"
    for op in ops:
        assert not shares(op.src, op.dst)


def test_missing_compiler_names_what_to_install(monkeypatch):
    from edgefer.runtime.backends import native_build

    monkeypatch.setenv("CC", "")
    monkeypatch.setenv("PATH", "")
    assert not native_build.has_compiler()
    with pytest.raises(BackendUnavailable, match="C compiler.*gcc"):
        native_build.compiler()
