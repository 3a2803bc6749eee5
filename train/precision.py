"""Mixed precision for training: the layers compute in bfloat16, the weights stay float32.

On CPUs with bfloat16 instructions (``avx512_bf16``, ``amx_bf16``) and on GPUs this trains the
convolution-heavy networks faster: a VGG16 step at 48 px took 0.98 s instead of 1.44 s on this
project's 2-core AVX-512 BF16 machine, augmentation included
(``benchmarks/results/x86-2core-train-step-precision-vgg16.json``). MobileNet's depthwise
convolutions do not gain there: 0.53 s instead of 0.48 s at 96 px (``...-mobilenet.json``). The
output layer always computes in float32 (the loss sees float32 scores), and a run's saved models are
set back to float32 when it ends, so conversion, the SVM fit and the runtime never see a bfloat16
layer. float16 is left out: it needs
loss scaling, which bfloat16 (float32's exponent range) does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

#: What ``--precision`` takes.
PRECISIONS = ("float32", "mixed_bfloat16")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ``ValueError`` listing them."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return precision


def all_layers(model: Any) -> Iterator[Any]:
    """Every layer of ``model``, those of nested models (the hybrid's parts) included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # a nested model
            yield from all_layers(layer)


def use_precision(model: Any, precision: str) -> None:
    """Set every layer of ``model`` to compute in ``precision``, the output layer in float32 always.

    The weights are float32 under either policy, so a trained model is set back to float32 without
    touching a weight. Call it before the first training step: the step is traced in the dtypes the
    layers have then."""
    check_precision(precision)
    last = model.layers[-1]
    for layer in all_layers(model):
        layer.dtype_policy = "float32" if layer is last else precision


def cpu_bf16_note(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """What to tell a user who asks for bfloat16 on a CPU without bfloat16 instructions (it is emulated
    there, and slower than float32); None when the CPU has them or cannot be read (not Linux)."""
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return None
    if flags & {"avx512_bf16", "amx_bf16", "bf16"}:  # x86 AVX-512 BF16 / AMX, Arm's BF16 extension
        return None
    return ("this CPU has no bfloat16 instructions (no avx512_bf16, amx_bf16 or bf16 in /proc/cpuinfo): "
            "--precision mixed_bfloat16 is emulated here and slower than float32 when training runs on it; "
            "pass --precision float32 (a GPU, where training runs on one, is not affected)")


def precision_of(model: Any) -> str:
    """``mixed_bfloat16`` if any layer computes in bfloat16, else ``float32``."""
    return "mixed_bfloat16" if any(layer.dtype_policy.compute_dtype == "bfloat16" for layer in all_layers(model)) \
        else "float32"
