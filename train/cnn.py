"""The papers' custom CNN baselines, trained from scratch at 48x48.

Depth counts the weight layers before the classifier:

- ``cnn2``: 2 conv layers (32, 64), global average pooled;
- ``cnn5``: 4 conv layers (32 → 256) + 1 dense;
- ``cnn4``: the 4-block CNN, 64 → 128 → 256 → 512, two 3x3 convs per block, each
  with BatchNorm, max pooling and dropout, then dense 256 and 512 (the widely
  used FER2013 baseline);
- ``cnn12``: 10 conv layers (VGG-style 64 → 512) + 2 dense.
"""

from __future__ import annotations

from edgefer.runtime.preprocess import InputSpec

#: (conv blocks as (filters, convs per block), dense widths) of each preset.
CNN_PRESETS: dict[str, tuple[tuple[tuple[int, int], ...], tuple[int, ...]]] = {
    "cnn2": (((32, 1), (64, 1)), ()),
    "cnn5": (((32, 1), (64, 1), (128, 1), (256, 1)), (256,)),
    "cnn4": (((64, 2), (128, 2), (256, 2), (512, 2)), (256, 512)),
    "cnn12": (((64, 2), (128, 2), (256, 3), (512, 3)), (512, 512)),
}


def build_cnn(
    name: str,
    spec: InputSpec,
    num_classes: int,
    width: float = 1.0,
    dropout: float = 0.25,
    bn_momentum: float | None = None,
    head: str = "softmax",
):
    """A preset from :data:`CNN_PRESETS`; ``width`` scales every layer (tests use a quarter)."""
    import keras

    from .parts import FEATURES_LAYER, attach_head

    if name not in CNN_PRESETS:
        raise ValueError(f"unknown CNN {name!r}; choose one of {', '.join(CNN_PRESETS)}")
    blocks, dense = CNN_PRESETS[name]
    momentum = 0.99 if bn_momentum is None else bn_momentum
    inputs = keras.Input((spec.height, spec.width, spec.channels), name="face")
    x = inputs
    for b, (filters, convs) in enumerate(blocks, start=1):
        for c in range(1, convs + 1):
            x = keras.layers.Conv2D(max(4, int(filters * width)), 3, padding="same", use_bias=False,
                                    name=f"block{b}_conv{c}")(x)
            x = keras.layers.BatchNormalization(momentum=momentum, name=f"block{b}_bn{c}")(x)
            x = keras.layers.ReLU(name=f"block{b}_relu{c}")(x)
        # Stop pooling once the map is 3x3 or smaller, so 32x32 inputs work with every preset.
        if x.shape[1] > 3:
            x = keras.layers.MaxPooling2D(2, name=f"block{b}_pool")(x)
        x = keras.layers.Dropout(dropout, name=f"block{b}_dropout")(x)
    if not dense:
        feats = keras.layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
        return attach_head(inputs, feats, num_classes, f"{name}_{spec.height}", dropout, head)
    x = keras.layers.Flatten(name="flatten")(x)
    for d, units in enumerate(dense, start=1):
        last = d == len(dense)
        x = keras.layers.Dense(max(8, int(units * width)), use_bias=False, name=f"fc{d}")(x)
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"fc{d}_bn")(x)
        x = keras.layers.ReLU(name=FEATURES_LAYER if last else f"fc{d}_relu")(x)
        if not last:
            x = keras.layers.Dropout(2 * dropout, name=f"fc{d}_dropout")(x)
    return attach_head(inputs, x, num_classes, f"{name}_{spec.height}", 2 * dropout, head)
