"""Keras model builders: MobileNet v1 feature extractor with a softmax head."""

from __future__ import annotations

from pathlib import Path

from edgefer.runtime.preprocess import InputSpec

FEATURES_LAYER = "features"
SOFTMAX_LAYER = "softmax_head"
SVM_LAYER = "svm_head"


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


def build_mobilenet(
    spec: InputSpec,
    num_classes: int,
    alpha: float = 1.0,
    weights: str | None = None,
    dropout: float = 0.25,
    bn_momentum: float | None = None,
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
    if bn_momentum is not None:
        for layer in base.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = bn_momentum
    feats = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(base.output)
    x = keras.layers.Dropout(dropout, name="head_dropout")(feats)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=SOFTMAX_LAYER)(x)
    return keras.Model(inputs, outputs, name=f"mobilenet_v1_a{alpha:g}_{spec.height}")


def feature_model(model):
    """The sub-graph from the input to the pooled features."""
    import keras

    return keras.Model(model.input, model.get_layer(FEATURES_LAYER).output, name=f"{model.name}_features")
