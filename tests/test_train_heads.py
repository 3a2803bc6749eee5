"""Model builders, the RBF SVM head with its random-Fourier-feature fold, the SVM top and Grad-CAM."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.runtime.preprocess import InputSpec
from edgefer.train.rbf import fit_rbf_svm, fold_rbf_svm, rff_agreement, rff_decision_function, rff_weights

SPEC = InputSpec(32, 32, 3)


def _blobs(n: int = 210, dim: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 7
    centres = rng.normal(0, 2.0, (7, dim))
    return centres[labels] + rng.normal(0, 1.0, (n, dim)), labels


def test_rbf_svm_grid_is_recorded_and_rff_approaches_it():
    x, y = _blobs()
    head = fit_rbf_svm(x, y, Cs=[1, 10], gammas=[0.02, 0.1], cv=2)
    assert set(head.cv_accuracy) == {"C=1,gamma=0.02", "C=1,gamma=0.1", "C=10,gamma=0.02", "C=10,gamma=0.1"}
    assert head.C in (1, 10) and head.gamma in (0.02, 0.1)
    assert (head.predict(x) == y).mean() > 0.9
    coarse, fine = rff_agreement(head, x, 64), rff_agreement(head, x, 8192)
    assert fine["top1_agreement"] >= 0.95
    assert fine["mean_abs_score_error"] < coarse["mean_abs_score_error"]


def test_rbf_svm_needs_every_class():
    x, y = _blobs()
    with pytest.raises(ValueError, match="lack class\\(es\\) \\[3\\]"):
        fit_rbf_svm(x[y != 3], y[y != 3], Cs=[1], gammas=[0.1])


def test_rbf_fold_is_dense_cos_dense_and_saves_without_custom_objects(tmp_path):
    import keras

    from edgefer.train.model import SVM_LAYER, build_model, feature_model

    model = build_model("cnn2", SPEC, 7, alpha=0.25)
    faces = np.random.default_rng(0).integers(0, 255, (70, 32, 32), dtype=np.uint8)
    from edgefer.train.data import predict_batches

    feats = predict_batches(feature_model(model), faces, SPEC)
    labels = np.arange(70) % 7
    head = fit_rbf_svm(feats, labels, Cs=[10], gammas=[1.0 / feats.shape[1]])
    folded = fold_rbf_svm(model, head, n_components=512, seed=1)
    assert folded.layers[-1].name == SVM_LAYER
    scores = predict_batches(folded, faces, SPEC)
    expected = rff_decision_function(rff_weights(head, 512, seed=1), feats)
    np.testing.assert_allclose(scores, expected, atol=1e-3 * max(1.0, np.abs(expected).max()))
    folded.save(tmp_path / "m.keras")
    again = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(predict_batches(again, faces, SPEC), scores, atol=1e-5)


@pytest.mark.parametrize("name", ["cnn2", "cnn4", "cnn5", "cnn12", "mobilenet"])
def test_every_extractor_exposes_features_and_both_heads(name):
    from edgefer.train.model import FEATURES_LAYER, SOFTMAX_LAYER, SVM_LAYER, build_model

    soft = build_model(name, SPEC, 7, alpha=0.25)
    assert soft.get_layer(SOFTMAX_LAYER).activation.__name__ == "softmax"
    assert len(soft.get_layer(FEATURES_LAYER).output.shape) == 2
    top = build_model(name, SPEC, 7, alpha=0.25, head="svm-top")
    assert top.get_layer(SVM_LAYER).activation.__name__ == "linear"
    assert top.get_layer(SVM_LAYER).kernel_regularizer is not None


def test_model_choices_are_checked():
    from edgefer.train.model import build_model

    with pytest.raises(ValueError, match="choose one of mobilenet, vgg16"):
        build_model("resnet", SPEC, 7)
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_model("cnn4", SPEC, 7, weights="imagenet")
    with pytest.raises(ValueError, match="unknown in-network head"):
        build_model("cnn2", SPEC, 7, head="hinge")


def test_hybrid_concatenates_mobilenet_and_projected_vgg16_and_folds_an_svm():
    from edgefer.train.data import predict_batches
    from edgefer.train.hybrid import PROJECTION_LAYER, build_hybrid
    from edgefer.train.model import FEATURES_LAYER, build_model, feature_model
    from edgefer.train.svm import fit_linear_svm, fold_svm

    mobilenet = build_model("mobilenet", SPEC, 7, alpha=0.25)
    vgg = build_model("vgg16", SPEC, 7, fc_width=64)
    assert vgg.get_layer(FEATURES_LAYER).output.shape[-1] == 64
    hybrid = build_hybrid(mobilenet, vgg, 7, projection=32)
    assert hybrid.get_layer(PROJECTION_LAYER).output.shape[-1] == 32
    assert hybrid.get_layer(FEATURES_LAYER).output.shape[-1] == 256 + 32
    assert all(not layer.trainable for layer in hybrid.layers if layer.name.endswith("_branch"))
    faces = np.random.default_rng(1).integers(0, 255, (28, 32, 32), dtype=np.uint8)
    feats = predict_batches(feature_model(hybrid), faces, SPEC)
    # Untrained parts give tiny feature spreads (about 1e-4); the fold must still be exact on them.
    head = fit_linear_svm(feats, np.arange(28) % 7, [0.1], min_feature_std=1e-6)
    folded = predict_batches(fold_svm(hybrid, head), faces, SPEC)
    np.testing.assert_allclose(folded, head.decision_function(feats), atol=1e-3 * np.abs(folded).max())


def test_vgg16_rejects_tiny_inputs():
    from edgefer.train.model import build_model

    with pytest.raises(ValueError, match="at least 32x32"):
        build_model("vgg16", InputSpec(24, 24, 3), 7)


def test_gradcam_maps_are_normalised_and_sized_like_the_input():
    from edgefer.train.gradcam import gradcam, last_conv_layer
    from edgefer.train.model import build_model

    model = build_model("cnn5", SPEC, 7, alpha=0.25)
    assert last_conv_layer(model).startswith("block4")
    faces = np.random.default_rng(2).integers(0, 255, (3, 32, 32), dtype=np.uint8)
    heat, classes = gradcam(model, faces, SPEC)
    assert heat.shape == (3, 32, 32) and classes.shape == (3,)
    assert heat.min() >= 0 and heat.max() <= 1


def test_linear_svm_scaling_floor_keeps_near_constant_features_from_dominating_the_fold():
    from edgefer.train.svm import FlooredStandardScaler, fit_linear_svm

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 60)
    informative = rng.normal(labels[:, None], 1.0, (180, 6))
    quiet = 0.5 + rng.normal(0.0, 0.004, (180, 4))  # nearly constant ReLU features, std ~0.004
    features = np.hstack([informative, quiet]).astype(np.float32)

    scaler = FlooredStandardScaler(0.3).fit(features)
    median = np.median(features.std(axis=0))
    assert np.all(scaler.scale_ >= 0.3 * median - 1e-12)
    np.testing.assert_allclose(scaler.scale_[:6], features[:, :6].std(axis=0), rtol=1e-6)

    head = fit_linear_svm(features, labels, Cs=(0.01,), min_feature_std=1e-6)
    kernel, bias = head.dense_weights()
    np.testing.assert_allclose(features @ kernel + bias, head.decision_function(features), rtol=1e-4, atol=1e-4)
    # The quiet features' folded weights stay on the scale of the informative ones.
    assert np.abs(kernel[6:]).max() <= 2 * np.abs(kernel[:6]).max()
