"""Read a MobileNet v1 that ``edgefer convert`` exported to fp32 ONNX back into Keras.

Users get the shipped model as ``default_fp32.onnx`` / ``default_int8.tflite``, not as the
``cnn.keras`` it was trained as; ``--init-from runtime/models/default_fp32.onnx`` fine-tunes
it on their own faces (or refits its head with ``--epochs 0``) all the same.

The exporter folds every BatchNormalization into its convolution (pointwise and first
convolutions: scaled kernel + bias; depthwise ones: kernel, then ``Mul`` and ``Add``) and
the SVM into the last ``MatMul`` + ``Add``. The import puts each folded kernel back into
its Keras convolution and sets the following BatchNormalization to the identity plus that
bias (mean 0, variance 1 - eps, gamma 1), so the Keras model computes the ONNX graph's
function; :func:`keras_from_onnx` checks that on random faces before returning. The
running statistics of the original training are gone, which is why :func:`freeze_batchnorm`
keeps those layers in inference mode while fine-tuning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.runtime.preprocess import InputSpec

_BN_EPSILON = 1e-3  # keras.applications.MobileNet's BatchNormalization epsilon


def onnx_manifest(path: str | Path) -> dict[str, Any]:
    """The ``<model>.onnx.json`` sidecar ``edgefer convert`` wrote beside the ONNX file."""
    sidecar = Path(str(path) + ".json")
    if not sidecar.is_file():
        raise FileNotFoundError(f"--init-from {path}: its manifest {sidecar} is missing; an ONNX file can be read back "
                                "only with the manifest `edgefer convert` wrote beside it (input size, width, labels)")
    return json.loads(sidecar.read_text())


def _folded_layers(graph) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Every convolution's kernel, per-channel scale and bias in graph order, then the head's weights and bias."""
    from onnx import numpy_helper

    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # constants folded into Constant nodes rather than initializers
        if node.op_type == "Constant":
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)

    def only_user(output: str, op: str):
        nodes = users.get(output, [])
        return nodes[0] if len(nodes) == 1 and nodes[0].op_type == op else None

    def const_input(node) -> np.ndarray:
        found = [consts[name] for name in node.input if name in consts]
        if len(found) != 1:
            raise ValueError(f"ONNX node {node.name} ({node.op_type}) has no single constant input")
        return found[0].astype(np.float32)

    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        kernel = consts[node.input[1]].astype(np.float32)
        out_ch = kernel.shape[0]
        scale = np.ones(out_ch, np.float32)
        bias = (consts[node.input[2]].astype(np.float32).reshape(-1) if len(node.input) > 2
                else np.zeros(out_ch, np.float32))
        output = node.output[0]
        mul = only_user(output, "Mul")  # (conv + b) * s + a  ==  conv * s + (b * s + a)
        if mul is not None:
            scale = const_input(mul).reshape(-1)
            bias = bias * scale
            output = mul.output[0]
        add = only_user(output, "Add")
        if add is not None:
            bias = bias + const_input(add).reshape(-1)
        convs.append({"name": node.name, "kernel": kernel, "scale": scale, "bias": bias, "depthwise": group > 1})
    matmuls = [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    if len(matmuls) != 1:
        raise ValueError(f"expected one MatMul (the folded head), found {len(matmuls)}")
    head_w = const_input(matmuls[0])
    add = only_user(matmuls[0].output[0], "Add")
    head_b = const_input(add).reshape(-1) if add is not None else np.zeros(head_w.shape[1], np.float32)
    return convs, head_w, head_b


def keras_from_onnx(path: str | Path, check: bool = True):
    """A Keras MobileNet v1 (softmax head holding the folded SVM's weights) computing ``path``'s function.

    ``path`` must be an fp32 MobileNet v1 ONNX written by ``edgefer convert`` with its
    manifest beside it. The returned model's head is a softmax over the SVM's scores, so
    its top-1 class is the ONNX model's; ``--epochs 0`` refits heads on its features, and
    fine-tuning starts from it.
    """
    import keras
    import onnx

    from .model import SOFTMAX_LAYER, build_mobilenet

    path = Path(path)
    manifest = onnx_manifest(path)
    arch = manifest.get("architecture", {})
    if arch.get("name") != "mobilenet_v1" or manifest.get("precision", "fp32") != "fp32":
        raise ValueError(f"--init-from {path}: only an fp32 MobileNet v1 ONNX can be read back (this one is "
                         f"{arch.get('name')!r}, {manifest.get('precision')!r}); pass a cnn.keras for other models")
    size = manifest["input"]
    spec = InputSpec(height=int(size["height"]), width=int(size["width"]), channels=int(size["channels"]))
    model = build_mobilenet(spec, len(manifest["labels"]), float(arch.get("alpha", 1.0)), None, head="softmax")
    convs, head_w, head_b = _folded_layers(onnx.load(str(path)).graph)
    keras_convs = [layer for layer in model.layers
                   if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    if len(convs) != len(keras_convs):
        raise ValueError(f"{path} has {len(convs)} convolutions, MobileNet v1 has {len(keras_convs)}")
    for folded, layer in zip(convs, keras_convs):
        kernel = folded["kernel"] * folded["scale"].reshape(-1, 1, 1, 1)
        if folded["depthwise"]:  # ONNX (C, 1, kh, kw) -> Keras (kh, kw, C, 1)
            kernel = kernel.transpose(2, 3, 0, 1)
        else:  # ONNX (out, in, kh, kw) -> Keras (kh, kw, in, out)
            kernel = kernel.transpose(2, 3, 1, 0)
        want = tuple(layer.kernel.shape)
        if kernel.shape != want:
            raise ValueError(f"{path}: convolution {folded['name']} has kernel {kernel.shape}, Keras layer "
                             f"{layer.name} wants {want}")
        layer.set_weights([kernel])
        bn = model.get_layer(f"{layer.name}_bn")
        ch = folded["bias"].shape[0]
        bn.set_weights([np.ones(ch, np.float32), folded["bias"], np.zeros(ch, np.float32),
                        np.full(ch, 1.0 - _BN_EPSILON, np.float32)])
    model.get_layer(SOFTMAX_LAYER).set_weights([head_w, head_b])
    if check:
        _check_same_function(model, path, spec, head_w, head_b)
    return model


def _check_same_function(model, path: Path, spec: InputSpec, head_w: np.ndarray, head_b: np.ndarray) -> None:
    """Both graphs give the same scores on random faces, or the import is refused."""
    import keras
    import onnxruntime as ort

    from .model import FEATURES_LAYER

    rng = np.random.default_rng(0)
    faces = rng.uniform(-1, 1, (8, spec.height, spec.width, spec.channels)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {session.get_inputs()[0].name: faces})[0]
    feats = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output).predict(faces, verbose=0)
    got = feats @ head_w + head_b
    err = float(np.max(np.abs(got - want)))
    if err > 1e-3 * max(1.0, float(np.max(np.abs(want)))):
        raise ValueError(f"--init-from {path}: the Keras model read back differs from the ONNX graph by {err:.4g} "
                         "(not a MobileNet v1 exported by `edgefer convert`?)")


def freeze_batchnorm(model) -> None:
    """Keep every BatchNormalization in inference mode: the imported ones hold no real batch statistics."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
