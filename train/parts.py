"""What every feature extractor is built from: the layer names, the heads, weights and BatchNorm settings.

:mod:`.model` (MobileNet and the dispatcher), :mod:`.vgg` and :mod:`.cnn` build on these;
keeping them here lets those modules import them without importing each other.
"""

from __future__ import annotations

from pathlib import Path

FEATURES_LAYER = "features"
SOFTMAX_LAYER = "softmax_head"
SVM_LAYER = "svm_head"

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


def feature_model(model):
    """The sub-graph from the input to the pooled features."""
    import keras

    return keras.Model(model.input, model.get_layer(FEATURES_LAYER).output, name=f"{model.name}_features")
