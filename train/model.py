"""Keras model builders: feature extractors with a softmax (or in-network SVM) head.

Every extractor exposes its pooled features as the layer named
:data:`FEATURES_LAYER`, so an SVM can be fitted on them and folded back, and
ends in :func:`attach_head`, so all models share the same two heads.
"""

from __future__ import annotations

from edgefer.runtime.preprocess import InputSpec

from .parts import (FEATURES_LAYER, NETWORK_HEADS, SOFTMAX_LAYER, SVM_LAYER, attach_head, feature_model,
                    resolve_weights, set_bn_momentum)
from .cnn import build_cnn
from .vgg import build_vgg16

__all__ = ["FEATURES_LAYER", "MODELS", "NETWORK_HEADS", "SOFTMAX_LAYER", "SVM_LAYER", "attach_head", "build_mobilenet",
           "build_model", "feature_model", "resolve_weights", "set_bn_momentum"]

#: Extractors :func:`build_model` knows (the hybrid is assembled from trained parts in ``hybrid.py``).
MODELS = ("mobilenet", "vgg16", "cnn2", "cnn4", "cnn5", "cnn12")


def build_mobilenet(
    spec: InputSpec,
    num_classes: int,
    alpha: float = 1.0,
    weights: str | None = None,
    dropout: float = 0.25,
    bn_momentum: float | None = None,
    head: str = "softmax",
):
    """MobileNet v1 (``keras.applications``) with pooled features and a softmax head.

    The pooled 1024*alpha features are exposed as the layer named
    :data:`FEATURES_LAYER` so an SVM can be fitted on them and folded back.
    """
    import keras

    inputs = keras.Input((spec.height, spec.width, spec.channels), name="face")
    base = keras.applications.MobileNet(
        input_tensor=inputs,
        alpha=alpha,
        include_top=False,
        weights=resolve_weights(weights),
        pooling=None,
    )
    set_bn_momentum(base, bn_momentum)
    feats = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(base.output)
    return attach_head(inputs, feats, num_classes, f"mobilenet_v1_a{alpha:g}_{spec.height}", dropout, head)


def build_model(name: str, spec: InputSpec, num_classes: int, alpha: float = 1.0, weights: str | None = None,
                dropout: float = 0.25, bn_momentum: float | None = None, head: str = "softmax",
                fc_width: int = 4096):
    """Build one of :data:`MODELS`; ``alpha`` is MobileNet's width multiplier and the custom CNNs' width."""
    if name == "mobilenet":
        return build_mobilenet(spec, num_classes, alpha, weights, dropout, bn_momentum, head)
    if name == "vgg16":
        return build_vgg16(spec, num_classes, weights, dropout, bn_momentum, head, fc_width)
    if name in ("cnn2", "cnn4", "cnn5", "cnn12"):
        if resolve_weights(weights) is not None:
            raise ValueError(f"{name} has no pretrained weights; use --weights none or --init-from a trained model")
        return build_cnn(name, spec, num_classes, alpha, dropout, bn_momentum, head)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} or hybrid")
