"""The hybrid extractor: trained MobileNet v1 and VGG16, features concatenated, classified by an SVM.

As in the hybrid paper, VGG16's 4,096-wide FC output is projected to 1,024 so
both parts contribute equally: ``[MobileNet 1024 | Dense(1024)(VGG16 4096)]``
is the 2,048-wide :data:`~edgefer.train.model.FEATURES_LAYER` on which the SVM
is fitted and folded. Both parts are trained first on their own (softmax), then
frozen while the projection and a softmax head are trained on top.
"""

from __future__ import annotations

from edgefer.runtime.preprocess import InputSpec

PROJECTION_LAYER = "vgg16_projection"
#: Sub-folders of a hybrid run holding its two trained parts.
PARTS = ("mobilenet", "vgg16")


def build_hybrid(mobilenet, vgg16, num_classes: int, projection: int = 1024, dropout: float = 0.25,
                 head: str = "softmax", trainable_parts: bool = False):
    """Join two trained softmax CNNs (each with a ``features`` layer) into one hybrid model."""
    import keras

    from .model import FEATURES_LAYER, attach_head, feature_model

    shapes = {tuple(m.input.shape[1:]) for m in (mobilenet, vgg16)}
    if len(shapes) != 1:
        raise ValueError(f"the hybrid's parts must share one input shape, got {sorted(shapes)}")
    spec_shape = shapes.pop()
    inputs = keras.Input(spec_shape, name="face")
    parts = []
    for branch_name, part in zip(PARTS, (mobilenet, vgg16)):
        branch = feature_model(part)
        branch.name = f"{branch_name}_branch"
        branch.trainable = trainable_parts
        parts.append(branch(inputs))
    projected = keras.layers.Dense(projection, activation="relu", name=PROJECTION_LAYER)(parts[1])
    feats = keras.layers.Concatenate(name=FEATURES_LAYER)([parts[0], projected])
    return attach_head(inputs, feats, num_classes, f"hybrid_mobilenet_vgg16_{spec_shape[0]}", dropout, head)


def hybrid_input_spec(model) -> InputSpec:
    """The input spec implied by a hybrid (or any) Keras model's input shape."""
    h, w, c = model.input.shape[1:]
    return InputSpec(height=int(h), width=int(w), channels=int(c))
