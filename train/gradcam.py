"""Grad-CAM (Selvaraju et al. 2017): where in the face the CNN looked for its predicted class."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from edgefer.runtime.preprocess import InputSpec, preprocess_faces

from .public_faces import PublicDomainFace


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


class GradCamUnavailable(RuntimeError):
    """Grad-CAM cannot be computed for this model on this Keras backend (the message says why)."""


def _split_at(model, layer: str):
    """``(maps_model, head_model)``: input -> the layer's feature map, and that map -> the model's scores.

    Splitting lets each backend differentiate the head alone with respect to the map it takes,
    without a TensorFlow tape.
    """
    import keras

    maps_model = keras.Model(model.input, model.get_layer(layer).output)
    try:
        head_model = keras.Model(model.get_layer(layer).output, model.output)
    except Exception as exc:  # a branch past the layer needs another input (the hybrid's VGG part, a skip)
        raise GradCamUnavailable(f"the graph after layer {layer!r} of {model.name} is not a single chain: {exc}") \
            from None
    return maps_model, head_model


def _picked_gradients(head_model, maps: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """d(score of the chosen class) / d(feature map), with the active Keras backend's own autodiff."""
    import keras

    backend = keras.backend.backend()
    rows = np.arange(len(chosen))
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(maps)
        with tf.GradientTape() as tape:
            tape.watch(x)
            scores = head_model(x, training=False)
            picked = tf.gather(scores, tf.constant(chosen, tf.int64), axis=1, batch_dims=1)
        return tape.gradient(picked, x).numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(m):
            return jnp.sum(head_model(m, training=False)[rows, chosen])

        return np.asarray(jax.grad(total)(jnp.asarray(maps)))
    if backend == "torch":
        import torch

        x = torch.as_tensor(maps, device=keras.ops.convert_to_tensor(maps[:1]).device).requires_grad_(True)
        head_model(x, training=False)[torch.as_tensor(rows), torch.as_tensor(chosen)].sum().backward()
        return x.grad.detach().cpu().numpy()
    raise GradCamUnavailable(f"Grad-CAM needs gradients, and Keras backend {backend!r} has none edgefer knows "
                             "(tensorflow, jax, torch)")


def gradcam(model, faces: np.ndarray, spec: InputSpec, layer: str | None = None,
            classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Heat maps in [0, 1] at input resolution, and the class each map explains (default: the prediction).

    Works on the TensorFlow, JAX and PyTorch Keras backends; raises :class:`GradCamUnavailable`
    when the model cannot be explained (the hybrid nests its CNNs).
    """
    import keras

    layer = layer or last_conv_layer(model)
    maps_model, head_model = _split_at(model, layer)
    x = preprocess_faces(faces, spec)
    maps = keras.ops.convert_to_numpy(maps_model(x, training=False)).astype(np.float32)
    scores = keras.ops.convert_to_numpy(head_model(maps, training=False))
    chosen = scores.argmax(1) if classes is None else np.asarray(classes, np.int64)
    grads = _picked_gradients(head_model, maps, chosen)
    weights = grads.mean(axis=(1, 2), keepdims=True)
    cams = np.maximum((weights * maps).sum(axis=-1), 0.0)
    out = np.zeros((len(faces), spec.height, spec.width), np.float32)
    for i, cam in enumerate(cams):
        cam = cv2.resize(cam, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
        peak = cam.max()
        out[i] = cam / peak if peak > 0 else cam
    return out, chosen


def class_mean_maps(heat: np.ndarray, predicted: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean heat map of the faces predicted as each class, and how many faces each mean covers."""
    means = np.zeros((num_classes, *heat.shape[1:]), np.float32)
    counts = np.bincount(np.asarray(predicted, np.int64), minlength=num_classes)
    for c in range(num_classes):
        if counts[c]:
            means[c] = heat[predicted == c].mean(axis=0)
    return means, counts


def save_gradcam(mean_heat: np.ndarray, counts: np.ndarray, labels: Sequence[str], png: Path, title: str,
                 public: Sequence[tuple[PublicDomainFace, np.ndarray, int]] = ()) -> None:
    """Where the model looks: per class, the mean Grad-CAM over the faces predicted as it (heat only,
    no face drawn); below, public-domain faces with their own Grad-CAM overlaid.

    Only :class:`~.public_faces.PublicDomainFace` objects are drawn: a dataset face is refused.
    """
    for item in public:
        if not isinstance(item[0], PublicDomainFace):
            raise TypeError("save_gradcam draws only public-domain faces (edgefer.train.public_faces); "
                            "dataset faces may not be published")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(labels)
    rows = 2 if public else 1
    fig, axes = plt.subplots(rows, k, figsize=(1.6 * k, 2.0 * rows + 0.4), dpi=110, squeeze=False)
    for c in range(k):
        ax = axes[0, c]
        ax.imshow(mean_heat[c], cmap="jet", vmin=0, vmax=1)
        ax.set_title(f"{labels[c]}\n({int(counts[c])} faces)", fontsize=7)
        ax.set_axis_off()
    for i in range(k if public else 0):
        ax = axes[1, i]
        ax.set_axis_off()
        if i >= len(public):
            continue
        face, heat, predicted = public[i]
        img = cv2.resize(face.image, (heat.shape[1], heat.shape[0]), interpolation=cv2.INTER_AREA)
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(f"→ {labels[int(predicted)]}", fontsize=7)
        ax.text(0, -0.02, face.credit, transform=ax.transAxes, fontsize=4, va="top", wrap=True)
    fig.suptitle(title + "\nmean Grad-CAM of the faces predicted as each class"
                 + ("; below: public-domain faces" if public else ""), fontsize=8)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
