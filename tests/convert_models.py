"""Small Keras models with the graph shapes conversion must handle, trained on generated faces.

- a two-branch hybrid (a nested CNN sub-model + a pooled-pixel branch, concatenated) with a linear SVM folded in;
- a CNN with a random-Fourier-feature RBF SVM head: Dense -> cos -> Dense, built from scikit-learn's
  StandardScaler + RBFSampler + LinearSVC so the Keras head can be checked against scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgefer.runtime.labels import EMOTIONS
from edgefer.runtime.preprocess import InputSpec

SPEC = InputSpec(height=32, width=32, channels=3)


def _train_softmax(model: Any, images: np.ndarray, labels: np.ndarray, epochs: int) -> Any:
    """Fit ``model`` (features -> 7 logits) briefly with softmax cross-entropy."""
    import keras

    from edgefer.runtime.preprocess import preprocess_faces

    keras.utils.set_random_seed(0)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(preprocess_faces(images, SPEC), labels, batch_size=16, epochs=epochs, verbose=0)
    return model


def _cnn_branch() -> Any:
    """A small CNN as a nested sub-model, the way train/hybrid.py embeds its trained parts."""
    import keras

    inputs = keras.Input((SPEC.height, SPEC.width, SPEC.channels), name="branch_face")
    # tanh keeps every feature alive: a near-constant ReLU feature gets a huge folded SVM weight (1 / its std)
    # that no int8 model can resolve, which would make these tests depend on the training draw.
    x = keras.layers.Conv2D(8, 3, strides=2, activation="tanh", name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="tanh", name="conv2")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(x), name="cnn_branch")


def two_branch_model(images: np.ndarray, labels: np.ndarray, epochs: int = 8) -> tuple[Any, Any]:
    """(trained CNN with softmax logits, the same graph with a linear SVM folded in); features = concat."""
    import keras

    from edgefer.train.data import predict_batches
    from edgefer.train.model import FEATURES_LAYER, feature_model
    from edgefer.train.svm import fit_linear_svm, fold_svm

    keras.utils.set_random_seed(0)  # the initial weights too, so every run trains the same models
    inputs = keras.Input((SPEC.height, SPEC.width, SPEC.channels), name="face")
    pixels = keras.layers.AveragePooling2D(4, name="pixel_pool")(inputs)
    pixels = keras.layers.Flatten(name="pixel_flat")(pixels)
    pixels = keras.layers.Dense(16, activation="tanh", name="pixel_dense")(pixels)
    feats = keras.layers.Concatenate(name=FEATURES_LAYER)([_cnn_branch()(inputs), pixels])
    logits = keras.layers.Dense(len(EMOTIONS), name="logits")(feats)
    cnn = _train_softmax(keras.Model(inputs, logits, name="hybrid"), images, labels, epochs)
    head = fit_linear_svm(predict_batches(feature_model(cnn), images, SPEC), labels, [0.1])
    return cnn, fold_svm(cnn, head)


def rbf_head_model(features_of: Any, images: np.ndarray, labels: np.ndarray, components: int = 64,
                   seed: int = 0) -> tuple[Any, Any, Any]:
    """(Keras model CNN -> Dense -> cos -> Dense, the scikit-learn pipeline it equals, feature extractor).

    ``features_of`` is a trained Keras model with a ``features`` layer. The first Dense holds
    the scaler and RBFSampler's random projection, the second ``sqrt(2 / D)`` times the
    LinearSVC weights, so the head's scores are the pipeline's ``decision_function``.
    """
    import keras
    from sklearn.kernel_approximation import RBFSampler
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from edgefer.train.data import predict_batches
    from edgefer.train.model import feature_model

    extractor = feature_model(features_of)
    feats = predict_batches(extractor, images, SPEC)
    pipe = Pipeline([
        ("scale", StandardScaler()),
        ("rff", RBFSampler(gamma=0.5 / feats.shape[1], n_components=components, random_state=seed)),
        ("svm", LinearSVC(C=1.0, dual=False, max_iter=5000)),
    ]).fit(feats, labels)
    scaler, rff, svm = pipe.named_steps["scale"], pipe.named_steps["rff"], pipe.named_steps["svm"]
    w = rff.random_weights_ / scaler.scale_[:, None]
    b = rff.random_offset_ - (scaler.mean_ / scaler.scale_) @ rff.random_weights_
    project = keras.layers.Dense(components, name="rff_projection")
    classify = keras.layers.Dense(len(EMOTIONS), name="svm_head")
    scores = classify(keras.ops.cos(project(extractor.output)))
    project.set_weights([w.astype(np.float32), b.astype(np.float32)])
    classify.set_weights([(np.sqrt(2.0 / components) * svm.coef_.T).astype(np.float32),
                          svm.intercept_.astype(np.float32)])
    return keras.Model(extractor.input, scores, name="cnn_rbf_svm"), pipe, extractor


def save_run(model: Any, out: Path, svm_kind: str, train_faces: int) -> Path:
    """Write ``model.keras`` and the ``meta.json`` `edgefer convert` reads beside it, like `edgefer train` does."""
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "model.keras")
    meta = {
        "labels": list(EMOTIONS), "input": SPEC.to_dict(), "head": "svm",
        "architecture": {"name": model.name, "params": int(model.count_params())},
        "svm": {"kind": svm_kind},
        "training": {"dataset": "generated faces", "train_faces": train_faces},
        "metrics": {},
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out / "model.keras"
