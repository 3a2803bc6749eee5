"""VGG16 feature extractor: the 13-conv ImageNet topology, then two fully connected layers.

At 48x48 the conv stack ends in a 1x1x512 map; ``fc1``/``fc2`` (4,096 wide as in
VGG16, narrower for tests) give the features the SVM and the hybrid use.
Layer names follow ``keras.applications.VGG16`` so ImageNet conv weights load.
"""

from __future__ import annotations

from edgefer.runtime.preprocess import InputSpec

_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def build_vgg16(
    spec: InputSpec,
    num_classes: int,
    weights: str | None = None,
    dropout: float = 0.25,
    bn_momentum: float | None = None,
    head: str = "softmax",
    fc_width: int = 4096,
):
    """VGG16 conv base and two FC layers (BatchNorm after each; after each conv too when trained from scratch).

    The features (``fc2``) are ``fc_width`` wide.
    """
    import keras

    from .parts import FEATURES_LAYER, attach_head, resolve_weights

    if spec.height < 32 or spec.width < 32:
        raise ValueError(f"VGG16 needs inputs of at least 32x32 (five 2x2 poolings), got {spec.height}x{spec.width}")
    inputs = keras.Input((spec.height, spec.width, spec.channels), name="face")
    source = resolve_weights(weights)
    momentum = 0.99 if bn_momentum is None else bn_momentum
    # From scratch, 13 plain ReLU convolutions barely train (VGG itself was trained in stages); a
    # BatchNorm after each (VGG16-BN) fixes that. Pretrained conv weights keep the original topology.
    conv_bn = source is None
    x = inputs
    for b, (filters, convs) in enumerate(_BLOCKS, start=1):
        for c in range(1, convs + 1):
            name = f"block{b}_conv{c}"
            x = keras.layers.Conv2D(filters, 3, padding="same", activation=None if conv_bn else "relu", name=name)(x)
            if conv_bn:
                x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
                x = keras.layers.ReLU(name=f"{name}_relu")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for d in (1, 2):
        x = keras.layers.Dense(fc_width, use_bias=False, name=f"fc{d}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"fc{d}_bn")(x)
        x = keras.layers.ReLU(name=FEATURES_LAYER if d == 2 else "fc1_relu")(x)
        if d == 1:
            x = keras.layers.Dropout(2 * dropout, name="fc1_dropout")(x)
    model = attach_head(inputs, x, num_classes, f"vgg16_{spec.height}", dropout, head)
    if source is not None:
        _load_conv_weights(model, spec, source)
    return model


def _load_conv_weights(model, spec: InputSpec, source: str) -> None:
    """Copy the 13 conv layers' weights from ``keras.applications.VGG16`` (ImageNet or a local .h5 file)."""
    import keras

    if spec.channels != 3:
        raise ValueError("pretrained VGG16 weights need 3 input channels")
    ref = keras.applications.VGG16(include_top=False, weights=source,
                                   input_shape=(spec.height, spec.width, spec.channels))
    for layer in ref.layers:
        if layer.name.startswith("block") and "conv" in layer.name:
            model.get_layer(layer.name).set_weights(layer.get_weights())
