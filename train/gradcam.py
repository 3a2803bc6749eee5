"""Grad-CAM (Selvaraju et al. 2017): where in the face the CNN looked for its predicted class."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces


def last_conv_layer(model, min_side: int = 3) -> str:
    """Name of the last top-level layer whose output is a feature map of at least ``min_side`` cells a side.

    At 48x48 MobileNet's and VGG16's last maps are 1x1 or 2x2, which would paint
    one flat colour; the last map with some spatial extent localises.
    """
    maps = [layer for layer in model.layers
            if len(getattr(layer.output, "shape", ())) == 4
            and not any(k in type(layer).__name__ for k in ("Input", "ZeroPadding"))]
    if not maps:
        raise ValueError(
            f"model {model.name} has no top-level convolutional feature map for Grad-CAM (a hybrid nests its CNNs; "
            "explain its parts instead)"
        )
    wide = [layer for layer in maps if min(layer.output.shape[1:3]) >= min_side]
    return (wide or maps)[-1].name


def gradcam(model, faces: np.ndarray, spec: InputSpec, layer: str | None = None,
            classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Heat maps in [0, 1] at input resolution, and the class each map explains (default: the prediction)."""
    import keras
    import tensorflow as tf

    layer = layer or last_conv_layer(model)
    grad_model = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    x = tf.convert_to_tensor(preprocess_faces(faces, spec))
    with tf.GradientTape() as tape:
        maps, scores = grad_model(x, training=False)
        chosen = tf.argmax(scores, axis=1) if classes is None else tf.constant(classes, tf.int64)
        picked = tf.gather(scores, chosen, axis=1, batch_dims=1)
    grads = tape.gradient(picked, maps)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1)).numpy()
    out = np.zeros((len(faces), spec.height, spec.width), np.float32)
    for i, cam in enumerate(cams):
        cam = cv2.resize(cam, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        peak = cam.max()
        out[i] = cam / peak if peak > 0 else cam
    return out, np.asarray(chosen)


def save_gradcam(faces: np.ndarray, heat: np.ndarray, predicted: np.ndarray, true: np.ndarray,
                 labels: Sequence[str], png: Path, title: str) -> None:
    """Faces with their Grad-CAM overlaid, captioned true -> predicted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(faces)
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n, 2.3), dpi=110, squeeze=False)
    for i in range(n):
        ax = axes[0, i]
        face = cv2.resize(faces[i], (heat.shape[2], heat.shape[1]), interpolation=cv2.INTER_AREA)
        ax.imshow(face, cmap="gray", vmin=0, vmax=255)
        ax.imshow(heat[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(f"{labels[int(true[i])]}\n→ {labels[int(predicted[i])]}", fontsize=7)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
