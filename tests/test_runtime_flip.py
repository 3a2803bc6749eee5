"""Test-time flip: each face and its mirror image in one batch, their scores averaged."""

from __future__ import annotations

import numpy as np
import pytest

from edgefer.runtime.classifier import EmotionClassifier, installed_defaults


@pytest.fixture(params=["litert", "onnx"])
def plain_and_flipped(request):
    """The default model on one backend, without and with test-time flip."""
    if request.param not in installed_defaults():
        pytest.skip(f"{request.param} is not installed")
    plain = EmotionClassifier(None, request.param)
    flipped = EmotionClassifier(None, request.param, flip=True)
    yield plain, flipped
    plain.close()
    flipped.close()


def test_flip_averages_the_face_and_its_mirror(plain_and_flipped):
    plain, flipped = plain_and_flipped
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    want = (plain.classify(faces).scores + plain.classify(faces[:, :, ::-1]).scores) / 2
    got = flipped.classify(faces).scores
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert not np.allclose(got, plain.classify(faces).scores, atol=1e-3)  # the mirror image counted
    assert flipped.classify(faces[:0]).scores.shape == (0, len(flipped.labels))


def test_one_pass_gives_the_plain_and_the_flip_scores(plain_and_flipped):
    """What the conversion gate and `edgefer calibrate` use: both modes' scores from one pass, each equal to
    the scores its own mode gives, across batches of uneven size."""
    plain, flipped = plain_and_flipped
    faces = np.random.default_rng(1).integers(0, 256, (7, 48, 48), dtype=np.uint8)
    got_plain, got_flipped = plain.predict_dataset_both(faces, batch_size=3)
    np.testing.assert_allclose(got_plain, plain.predict_dataset(faces), atol=1e-5)
    np.testing.assert_allclose(got_flipped, flipped.predict_dataset(faces), atol=1e-5)
    empty = plain.predict_dataset_both(faces[:0])
    assert [s.shape for s in empty] == [(0, len(plain.labels))] * 2
