"""Keras model builders: feature extractors with a softmax (or in-network SVM) head.

Every extractor exposes its pooled features as the layer named
:data:`FEATURES_LAYER`, so an SVM can be fitted on them and folded back, and
ends in :func:`attach_head`, so all models share the same two heads.
"""

from __future__ import annotations

from pathlib import Path

from edgefer.runtime.preprocess import InputSpec

FEATURES_LAYER = "features"
SOFTMAX_LAYER = "softmax_head"
SVM_LAYER = "svm_head"

#: Extractors :func:`build_model` knows (the hybrid is assembled from trained parts in ``hybrid.py``).
MODELS = ("mobilenet", "vgg16", "cnn2", "cnn4", "cnn5", "cnn12")
#: Heads trained inside the network: softmax, or a linear SVM top with squared hinge loss (Tang 2013).
NETWORK_HEADS = ("softmax", "svm-top")


def resolve_weights(weights: str | None) -> str | None:
    """``None``/``"none"`` (from scratch), ``"imagenet"`` or a local weights file."""
    if weights is None or weights.lower() == "none":
        return None
    if weights == "imagenet":
        return weights
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {path} does not exist; pass 'none', 'imagenet' or the path of a Keras .h5 weights file"
        )
    return str(path)


def attach_head(inputs, features, num_classes: int, name: str, dropout: float = 0.25, head: str = "softmax",
                svm_l2: float = 1e-4):
    """Dropout then the classifier on ``features``: softmax, or a linear SVM top (raw scores, L2 on its weights)."""
    import keras

    if head not in NETWORK_HEADS:
        raise ValueError(f"unknown in-network head {head!r}; choose one of {', '.join(NETWORK_HEADS)}")
    x = keras.layers.Dropout(dropout, name="head_dropout")(features)
    if head == "softmax":
        outputs = keras.layers.Dense(num_classes, activation="softmax", name=SOFTMAX_LAYER)(x)
    else:
        outputs = keras.layers.Dense(num_classes, activation=None, name=SVM_LAYER,
                                     kernel_regularizer=keras.regularizers.L2(svm_l2))(x)
    return keras.Model(inputs, outputs, name=name)


def set_bn_momentum(model, momentum: float | None) -> None:
    """Set every BatchNormalization layer's moving-average momentum (``None`` keeps Keras' 0.99)."""
    import keras

    if momentum is None:
        return
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


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
        from .vgg import build_vgg16

        return build_vgg16(spec, num_classes, weights, dropout, bn_momentum, head, fc_width)
    if name in ("cnn2", "cnn4", "cnn5", "cnn12"):
        from .cnn import build_cnn

        if resolve_weights(weights) is not None:
            raise ValueError(f"{name} has no pretrained weights; use --weights none or --init-from a trained model")
        return build_cnn(name, spec, num_classes, alpha, dropout, bn_momentum, head)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)} or hybrid")


def feature_model(model):
    """The sub-graph from the input to the pooled features."""
    import keras

    return keras.Model(model.input, model.get_layer(FEATURES_LAYER).output, name=f"{model.name}_features")
